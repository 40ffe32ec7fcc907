-- retracted_source: one row per retracted source dataset: why, when it was detected, the
-- version from which its instances are withdrawn, and how many published instances that is.
--   SELECT reason, count(*) FROM retracted_source GROUP BY reason;
DROP VIEW IF EXISTS retracted_source CASCADE;
CREATE VIEW retracted_source AS
SELECT
    r.dataset_id,
    r.revision,
    r.reason,
    r.note,
    r.detected_at,
    r.from_version,
    count(p.instance_id) AS instances
FROM retraction r
LEFT JOIN published_instance p ON p.dataset_id = r.dataset_id
GROUP BY r.id;

COMMENT ON VIEW retracted_source IS
    'Retracted source datasets: reason, detection time, first version without them, instances.';
