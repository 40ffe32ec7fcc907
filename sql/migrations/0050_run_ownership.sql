-- depends: 0049_task_problem
-- Never lose a day (issue 12): which run owns which work, and whether that run is still alive.
--
--   batch.heartbeat_at   refreshed by the process that builds the batch (every lease/3 seconds);
--                        a `building` batch whose heartbeat is older than the lease has no live
--                        process: the next run of its key adopts it, any other run releases it.
--   batch.holder         host:pid of that process (shown by `dynosaur status`).
--   batch.adopted        retryable leftovers of other runs this run took over (its summary).
--   hub_dataset.batch_id the run that owns the dataset's work (discovered in its window or for
--                        its ids, or adopted later as retryable leftovers). Runs in parallel
--                        (a backfill) each take only their own datasets.
--   requested_dataset    explicit dataset ids a run could not take (invalid, unknown), as rows
--                        with a reason, so they show in rejection_by_reason.
--   publish_lock         one row, locked FOR UPDATE by publishers: only the writer role can
--                        take it (the read-only role has no privilege on the table).

ALTER TABLE batch ADD COLUMN heartbeat_at timestamptz;
ALTER TABLE batch ADD COLUMN holder text;
ALTER TABLE batch ADD COLUMN adopted jsonb NOT NULL DEFAULT '{}'::jsonb;  -- leftovers it took over

ALTER TABLE hub_dataset ADD COLUMN batch_id bigint REFERENCES batch (id);
CREATE INDEX hub_dataset_batch_idx ON hub_dataset (batch_id);

CREATE TABLE requested_dataset (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    bigint NOT NULL REFERENCES batch (id),
    dataset_id  text NOT NULL,
    status      text NOT NULL DEFAULT 'rejected' CHECK (status IN ('rejected')),
    reason      text NOT NULL REFERENCES reason (code),
    message     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (batch_id, dataset_id)
);

CREATE TABLE publish_lock (
    id  integer PRIMARY KEY CHECK (id = 1)
);
INSERT INTO publish_lock (id) VALUES (1);
