-- Licenses in version :version of the collection: instances, tasks and datasets per license
-- (the license text every instance carries: the source dataset's licenses, comma-joined).
--   psql: \set version 3     then  \i sql/queries/licenses_in_version.sql
SELECT
    license,
    count(DISTINCT dataset_id)  AS datasets,
    count(DISTINCT task_id)     AS tasks,
    count(*)                    AS instances
FROM collection_at(:version)
GROUP BY license
ORDER BY instances DESC, license;
