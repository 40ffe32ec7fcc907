-- Why was dataset :dataset_id left out (in part or whole)? Every skip, deferral, failure and
-- rejection recorded for it: the dataset, its configs, its LLM generations and its tasks.
--   psql: \set dataset_id '''org/name'''     then  \i sql/queries/why_dataset_rejected.sql
SELECT
    entity,
    sha,
    config_name,
    task_id,
    instruction,
    status,
    reason,
    description,
    message,
    at
FROM rejection
WHERE dataset_id = :dataset_id
ORDER BY
    array_position(ARRAY['hub_dataset', 'dataset_config', 'generation', 'task'], entity),
    config_name NULLS FIRST,
    task_id;
