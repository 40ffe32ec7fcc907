-- growth: how the collection grew, one row per published version (oldest first): what the
-- version added and the running totals of the collection up to it.
DROP VIEW IF EXISTS growth CASCADE;
CREATE VIEW growth AS
SELECT
    s.version,
    s.published_at,
    s.window_start,
    s.window_end,
    s.datasets                                          AS new_datasets,
    s.tasks_valid                                       AS new_tasks,
    s.instances                                         AS new_instances,
    s.cost_usd,
    sum(s.datasets)    OVER w                           AS total_datasets,
    sum(s.tasks_valid) OVER w                           AS total_tasks,
    sum(s.instances)   OVER w                           AS total_instances,
    sum(s.cost_usd)    OVER w                           AS total_cost_usd
FROM batch_summary s
WHERE s.status = 'published'
WINDOW w AS (ORDER BY s.version ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

COMMENT ON VIEW growth IS
    'Per published version: what it added and the collection''s running totals.';

-- cost: what the collection cost, per finished batch (published or empty) and in total so far:
-- LLM spend per valid task and per instance.
DROP VIEW IF EXISTS cost CASCADE;
CREATE VIEW cost AS
SELECT
    s.batch_id,
    s.version,
    s.status,
    s.published_at,
    s.llm_calls,
    s.prompt_tokens,
    s.completion_tokens,
    s.cost_usd,
    s.tasks_valid,
    s.instances,
    s.usd_per_valid_task,
    s.usd_per_instance,
    sum(s.cost_usd) OVER w AS total_cost_usd,
    (sum(s.cost_usd) OVER w / nullif(sum(s.tasks_valid) OVER w, 0))::numeric(14, 8)
        AS total_usd_per_valid_task,
    (sum(s.cost_usd) OVER w / nullif(sum(s.instances) OVER w, 0))::numeric(14, 8)
        AS total_usd_per_instance
FROM batch_summary s
WHERE s.status IN ('published', 'empty')
WINDOW w AS (ORDER BY s.published_at NULLS LAST, s.batch_id
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

COMMENT ON VIEW cost IS
    'LLM spend per finished batch, per valid task and per instance, with running totals.';
