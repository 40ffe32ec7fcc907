-- rejection: one row per skipped, deferred, failed or rejected thing, named by its dataset, so
-- "why was dataset X left out" is one query. Entities: hub_dataset (skip/defer/fail rules),
-- dataset_config (config-level skips), generation (LLM failures), task (filters and instance
-- construction; only tasks of finished batches, nothing of a run still building or failed).
DROP VIEW IF EXISTS rejection CASCADE;
CREATE VIEW rejection AS
WITH tagged AS (
    SELECT 'hub_dataset'::text AS entity, d.id AS entity_id, d.id AS hub_dataset_id,
           NULL::text AS config_name, NULL::bigint AS task_id, NULL::text AS instruction,
           d.status, d.reason, d.message, d.updated_at AS at
    FROM hub_dataset d WHERE d.reason IS NOT NULL
    UNION ALL
    SELECT 'dataset_config', c.id, c.hub_dataset_id, c.config_name, NULL, NULL,
           c.status, c.reason, c.message, c.updated_at
    FROM dataset_config c WHERE c.reason IS NOT NULL
    UNION ALL
    SELECT 'generation', g.id, c.hub_dataset_id, c.config_name, NULL, NULL,
           g.status, g.reason, g.message, g.updated_at
    FROM generation g JOIN dataset_config c ON c.id = g.config_id
    WHERE g.reason IS NOT NULL
    UNION ALL
    SELECT 'task', t.id, c.hub_dataset_id, c.config_name, t.id, t.instruction,
           t.status, t.reason, t.message, t.curated_at
    FROM task t
    JOIN dataset_config c ON c.id = t.config_id
    JOIN batch b ON b.id = t.batch_id AND b.status IN ('published', 'empty')
    WHERE t.status = 'rejected'
)
SELECT
    x.entity,
    x.entity_id,
    d.dataset_id,
    d.sha,
    x.config_name,
    x.task_id,
    x.instruction,
    x.status,
    x.reason,
    r.stage,
    r.description,
    x.message,
    x.at
FROM tagged x
JOIN hub_dataset d ON d.id = x.hub_dataset_id
JOIN reason r      ON r.code = x.reason;

COMMENT ON VIEW rejection IS
    'Every skipped, deferred, failed or rejected row with its dataset, reason code and message.';
