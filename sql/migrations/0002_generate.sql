-- Task generation (issue 5): per-run budget accounting and claim bookkeeping for the LLM ledger.
-- depends: 0001_core
--
--   llm_call.run_key       the run that claimed (and pays for) the call; a run's spend is the sum
--                          of its rows' cost_usd, plus reserved_usd while a row is in flight.
--   llm_call.reserved_usd  the most the call can cost (prompt estimate + max output tokens),
--                          held against the run's budget while the call is in flight.
--   llm_call.claim_token   random id of one claim: a worker finishes or fails only its own claim,
--                          and tells its own live claims from a dead predecessor's with the same pid.
--   llm_call.finish_reason the endpoint's finish reason ("stop", "length", ...).
--   llm_call.notes         non-fatal reason codes (response_truncated).
--   generation.run_key, generation.prompt_version: which run and prompt version produced the row.

ALTER TABLE llm_call ADD COLUMN run_key text;
ALTER TABLE llm_call ADD COLUMN reserved_usd numeric(14, 8) NOT NULL DEFAULT 0
    CHECK (reserved_usd >= 0);
ALTER TABLE llm_call ADD COLUMN claim_token text;
ALTER TABLE llm_call ADD COLUMN finish_reason text;
ALTER TABLE llm_call ADD COLUMN notes text[] NOT NULL DEFAULT '{}';
CREATE INDEX llm_call_run_key_idx ON llm_call (run_key);

ALTER TABLE generation ADD COLUMN run_key text;
ALTER TABLE generation ADD COLUMN prompt_version text;
CREATE INDEX generation_config_idx ON generation (config_id);
CREATE INDEX generation_llm_call_idx ON generation (llm_call_id);
