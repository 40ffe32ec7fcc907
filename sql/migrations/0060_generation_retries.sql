-- depends: 0049_task_problem
-- Transient vs permanent LLM failures (issue 12), unusable answers not reused.
--
--   generation.attempts          runs whose calls for this prompt failed transiently (endpoint
--                                unreachable, timeouts, 5xx, 429 after the in-run retries); at
--                                DYNOSAUR_LLM_MAX_DEFERRALS the generation fails with its reason.
--   generation.next_attempt_at   when a deferred generation is due again (NULL: at once).
--   generation.unusable_answers  answers received (and paid) that could not be used: not JSON, or
--                                cut short. The next request adds the attempt number to what is
--                                hashed (and a repair note to the messages), so it is a distinct
--                                ledger row; at DYNOSAUR_LLM_MAX_UNUSABLE the generation fails.
ALTER TABLE generation ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE generation ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE generation ADD COLUMN unusable_answers integer NOT NULL DEFAULT 0
    CHECK (unusable_answers >= 0);
