-- batch_summary: one row per batch (growth run) with its figures, building and failed included:
-- datasets, configs, tasks valid/rejected (and rejections by reason), instances, LLM calls,
-- tokens and cost, cost per valid task and per instance.
DROP VIEW IF EXISTS batch_summary CASCADE;
CREATE VIEW batch_summary AS
SELECT
    b.id AS batch_id,
    b.version,
    b.status,
    b.reason,
    b.message,
    b.run_key,
    b.dag_run_id,
    b.window_start,
    b.window_end,
    b.created_at,
    b.published_at,
    coalesce(c.datasets, 0)          AS datasets,
    coalesce(c.configs, 0)           AS configs,
    coalesce(t.tasks_valid, 0)       AS tasks_valid,
    coalesce(t.tasks_rejected, 0)    AS tasks_rejected,
    coalesce(r.rejected_by_reason, '{}'::jsonb) AS rejected_by_reason,
    coalesce(i.instances, 0)         AS instances,
    coalesce(k.llm_calls, 0)         AS llm_calls,
    coalesce(k.prompt_tokens, 0)     AS prompt_tokens,
    coalesce(k.completion_tokens, 0) AS completion_tokens,
    coalesce(g.cost_usd, 0)::numeric(14, 6) AS cost_usd,
    (g.cost_usd / nullif(t.tasks_valid, 0))::numeric(14, 8) AS usd_per_valid_task,
    (g.cost_usd / nullif(i.instances, 0))::numeric(14, 8)   AS usd_per_instance
FROM batch b
LEFT JOIN (
    SELECT batch_id, count(DISTINCT hub_dataset_id) AS datasets, count(*) AS configs
    FROM dataset_config WHERE batch_id IS NOT NULL GROUP BY batch_id
) c ON c.batch_id = b.id
LEFT JOIN (
    SELECT batch_id,
           count(*) FILTER (WHERE status = 'valid')    AS tasks_valid,
           count(*) FILTER (WHERE status = 'rejected') AS tasks_rejected
    FROM task WHERE batch_id IS NOT NULL GROUP BY batch_id
) t ON t.batch_id = b.id
LEFT JOIN (
    SELECT batch_id, jsonb_object_agg(reason, n) AS rejected_by_reason
    FROM (
        SELECT batch_id, reason, count(*) AS n FROM task
        WHERE batch_id IS NOT NULL AND status = 'rejected' GROUP BY batch_id, reason
    ) x GROUP BY batch_id
) r ON r.batch_id = b.id
LEFT JOIN (
    SELECT batch_id, count(*) AS instances FROM instance GROUP BY batch_id
) i ON i.batch_id = b.id
LEFT JOIN (
    -- What the config's prompts cost; a config belongs to the batch that curated it.
    SELECT c.batch_id, sum(g.cost_usd) AS cost_usd
    FROM generation g JOIN dataset_config c ON c.id = g.config_id
    WHERE c.batch_id IS NOT NULL
    GROUP BY c.batch_id
) g ON g.batch_id = b.id
LEFT JOIN (
    -- Tokens, counted once per distinct LLM call (a call can serve several generations).
    SELECT x.batch_id,
           count(*)                AS llm_calls,
           sum(l.prompt_tokens)     AS prompt_tokens,
           sum(l.completion_tokens) AS completion_tokens
    FROM (
        SELECT DISTINCT c.batch_id, g.llm_call_id
        FROM generation g JOIN dataset_config c ON c.id = g.config_id
        WHERE c.batch_id IS NOT NULL AND g.llm_call_id IS NOT NULL
    ) x
    JOIN llm_call l ON l.id = x.llm_call_id
    GROUP BY x.batch_id
) k ON k.batch_id = b.id;

COMMENT ON VIEW batch_summary IS
    'Figures per growth run: datasets, configs, tasks, rejections, instances, tokens and cost.';
