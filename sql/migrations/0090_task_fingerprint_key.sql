-- depends: 0049_task_problem
-- Exact-duplicate lookups by a compact key: the first 64 bits of a task's fingerprint (a SHA-256
-- in hex), kept by Postgres itself, and indexed for valid tasks only. A batch's lookup probes an
-- 8-byte key per task in an index a quarter of the size of the hex text one, so its cost stays
-- flat as the store grows (issue 15); curate verifies the whole fingerprint of the few matches
-- (dynosaur/store/tasks.py: stored_fingerprints). A fingerprint that is not hex (none curate
-- writes) has no key.
ALTER TABLE task ADD COLUMN fingerprint_key bigint GENERATED ALWAYS AS (
    CASE WHEN fingerprint ~ '^[0-9a-f]{16}'
        THEN ('x' || substr(fingerprint, 1, 16))::bit(64)::bigint
    END
) STORED;
CREATE INDEX task_fingerprint_key_valid_idx ON task (fingerprint_key) WHERE status = 'valid';
