-- How the collection grew: per published version, what it added and the running totals.
SELECT
    version,
    published_at,
    new_datasets,
    new_tasks,
    new_instances,
    total_datasets,
    total_tasks,
    total_instances,
    total_cost_usd
FROM growth
ORDER BY version;
