-- What each growth run cost: LLM calls, tokens and dollars per finished batch, per valid task
-- and per instance, with running totals.
SELECT
    version,
    status,
    published_at,
    llm_calls,
    prompt_tokens,
    completion_tokens,
    cost_usd,
    tasks_valid,
    instances,
    usd_per_valid_task,
    usd_per_instance,
    total_cost_usd,
    total_usd_per_instance
FROM cost
ORDER BY published_at NULLS LAST, batch_id;
