-- outcome_by_reason: how many datasets, configs, generations, LLM calls and tasks carry each
-- reason code, per status: every row with a reason (skipped, deferred, failed, rejected), with
-- the code's stage and description. Deferred rows wait for a later run; the others are final.
DROP VIEW IF EXISTS outcome_by_reason CASCADE;
CREATE VIEW outcome_by_reason AS
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
    UNION ALL
    SELECT 'requested_dataset', status, reason FROM requested_dataset
)
SELECT t.entity, t.status, t.reason, r.stage, r.description, count(*) AS n
FROM tagged t
JOIN reason r ON r.code = t.reason
GROUP BY t.entity, t.status, t.reason, r.stage, r.description;

COMMENT ON VIEW outcome_by_reason IS
    'Counts of skipped, deferred, failed and rejected rows per entity, status and reason code.';

-- rejection_by_reason: the final outcomes of outcome_by_reason (skipped, failed, rejected):
-- what the pipeline dropped for good, without the rows that wait for a later run.
DROP VIEW IF EXISTS rejection_by_reason CASCADE;
CREATE VIEW rejection_by_reason AS
SELECT entity, status, reason, stage, description, n
FROM outcome_by_reason
WHERE status IN ('skipped', 'failed', 'rejected');

COMMENT ON VIEW rejection_by_reason IS
    'Counts of skipped, failed and rejected rows (final outcomes) per entity and reason code.';
