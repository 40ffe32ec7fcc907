-- One name per concept (issue 11): "waiting for a later run" is status `deferred` everywhere, and
-- the ledger's failure code is `reason`, like every other table's.
-- depends: 0002_generate
--
--   llm_call.error -> llm_call.reason  (its foreign key to `reason` and its CHECK follow the
--       rename).
--   generation.status gains `deferred`: a prompt left for a later run (budget reached, API key
--       rejected), with its reason. `pending` now only means "planned by a run, not answered yet".
--   dataset_config.status `deferred` (already allowed, with a reason) is what a config waiting for
--       generation becomes; it was `collected` with reason budget_exhausted or llm_auth_error.
--       The generate queue takes `collected` and `deferred` configs.

ALTER TABLE llm_call RENAME COLUMN error TO reason;

ALTER TABLE generation DROP CONSTRAINT generation_status_check;
ALTER TABLE generation ADD CONSTRAINT generation_status_check
    CHECK (status IN ('pending', 'deferred', 'succeeded', 'failed'));
ALTER TABLE generation ADD CONSTRAINT generation_deferred_reason_check
    CHECK (status <> 'deferred' OR reason IS NOT NULL);

UPDATE generation SET status = 'deferred'
WHERE status = 'pending' AND reason IN ('budget_exhausted', 'llm_auth_error');

UPDATE dataset_config SET status = 'deferred'
WHERE status = 'collected' AND reason IN ('budget_exhausted', 'llm_auth_error');
