-- rejection_by_reason: how many datasets, configs, generations, LLM calls and tasks carry each
-- reason code (skips, deferrals, failures, rejections), with the code's description.
DROP VIEW IF EXISTS rejection_by_reason CASCADE;
CREATE VIEW rejection_by_reason AS
WITH tagged AS (
    SELECT 'hub_dataset'::text AS entity, status, reason FROM hub_dataset WHERE reason IS NOT NULL
    UNION ALL
    SELECT 'dataset_config', status, reason FROM dataset_config WHERE reason IS NOT NULL
    UNION ALL
    SELECT 'generation', status, reason FROM generation WHERE reason IS NOT NULL
    UNION ALL
    SELECT 'llm_call', status, reason FROM llm_call WHERE reason IS NOT NULL
    UNION ALL
    SELECT 'task', status, reason FROM task WHERE reason IS NOT NULL
)
SELECT t.entity, t.status, t.reason, r.stage, r.description, count(*) AS n
FROM tagged t
JOIN reason r ON r.code = t.reason
GROUP BY t.entity, t.status, t.reason, r.stage, r.description;

COMMENT ON VIEW rejection_by_reason IS
    'Counts of skipped, deferred, failed and rejected rows per entity and reason code.';
