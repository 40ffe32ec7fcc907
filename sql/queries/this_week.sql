-- What came in this week: per dataset config, the tasks and instances published in the last
-- seven days, newest first.
SELECT
    dataset_id,
    config_name,
    version,
    min(published_at)        AS published_at,
    count(DISTINCT task_id)  AS tasks,
    count(*)                 AS instances
FROM collection
WHERE published_at >= now() - interval '7 days'
GROUP BY dataset_id, config_name, version
ORDER BY published_at DESC, instances DESC, dataset_id, config_name;
