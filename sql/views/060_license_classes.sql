-- license_classes: published instances per license class per version (the batch that added
-- them), with the class's share of that version's new instances. Version N of the collection
-- holds the rows of every version <= N:
--   SELECT license_class, sum(instances) FROM license_classes WHERE version <= 3 GROUP BY 1;
DROP VIEW IF EXISTS license_classes CASCADE;
CREATE VIEW license_classes AS
SELECT
    b.version,
    i.license_class,
    count(*) AS instances,
    round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY b.version), 1) AS percent
FROM instance i
JOIN batch b ON b.id = i.batch_id AND b.status = 'published'
GROUP BY b.version, i.license_class;

COMMENT ON VIEW license_classes IS
    'Published instances per license class per version (rows the version added).';
