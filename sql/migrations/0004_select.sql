-- Selection (issue 8): cached embeddings, cached perplexity traces, stored selections.
-- depends: 0001_core
--
--   instance_embedding / task_embedding: one vector per (model, item), computed once and reused by
--       every later selection, so a selection over version N+1 embeds only what is new.
--       Vectors are little-endian float32 bytes (numpy's native layout): loading 200K x 384 is one
--       np.frombuffer, where real[] costs a Python float per component.
--   scoring_run / perplexity_trace: a learning-percentage scoring run (scorer trained on a pool)
--       and each instance's perplexity before training and after every epoch, so subsets of
--       several sizes reuse one (expensive) run.
--   selection / selection_member: a named, reproducible subset of version N of the collection.

CREATE TABLE instance_embedding (
    model        text NOT NULL,
    instance_id  bigint NOT NULL REFERENCES instance (id) ON DELETE CASCADE,
    vector       bytea NOT NULL CHECK (octet_length(vector) > 0 AND octet_length(vector) % 4 = 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, instance_id)
);

CREATE TABLE task_embedding (
    model       text NOT NULL,
    task_id     bigint NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    vector      bytea NOT NULL CHECK (octet_length(vector) > 0 AND octet_length(vector) % 4 = 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, task_id)
);

CREATE TABLE scoring_run (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          text NOT NULL UNIQUE,             -- hash of scorer, pool and training parameters
    scorer       text NOT NULL,
    version      integer NOT NULL CHECK (version > 0),
    parameters   jsonb NOT NULL DEFAULT '{}'::jsonb,
    device       text NOT NULL,
    instances    integer NOT NULL CHECK (instances >= 0),
    seconds      double precision,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE perplexity_trace (
    scoring_run_id  bigint NOT NULL REFERENCES scoring_run (id) ON DELETE CASCADE,
    instance_id     bigint NOT NULL REFERENCES instance (id) ON DELETE CASCADE,
    perplexities    real[] NOT NULL CHECK (cardinality(perplexities) >= 2),  -- P0, P1 .. Pn
    PRIMARY KEY (scoring_run_id, instance_id)
);

CREATE TABLE selection (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    method       text NOT NULL
                 CHECK (method IN ('coreset', 'learning_percentage', 'random_per_cluster',
                                   'replay_instruction', 'replay_random', 'replay_data')),
    parameters   jsonb NOT NULL DEFAULT '{}'::jsonb,
    version      integer NOT NULL CHECK (version > 0),   -- source: version N of the collection
    models       jsonb NOT NULL DEFAULT '{}'::jsonb,     -- {"embedding": ..., "scorer": ...}
    seed         bigint NOT NULL,
    inputs_hash  text NOT NULL,                          -- same name + same hash = no-op
    pool_size    integer NOT NULL CHECK (pool_size >= 0),
    figures      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A member is an instance or (for task-level selections such as replay) a task. `role` says why
-- it is in: 'selected' by the method, 'current' = the new batch's own tasks in a replay set,
-- 'replay' = an earlier task chosen for replay.
CREATE TABLE selection_member (
    selection_id  bigint NOT NULL REFERENCES selection (id) ON DELETE CASCADE,
    instance_id   bigint REFERENCES instance (id) ON DELETE CASCADE,
    task_id       bigint REFERENCES task (id) ON DELETE CASCADE,
    role          text NOT NULL DEFAULT 'selected' CHECK (role IN ('selected', 'current', 'replay')),
    rank          integer CHECK (rank > 0),
    score         double precision,
    CHECK ((instance_id IS NULL) <> (task_id IS NULL)),
    UNIQUE (selection_id, instance_id),
    UNIQUE (selection_id, task_id)
);
CREATE INDEX selection_member_instance_idx ON selection_member (instance_id);
CREATE INDEX selection_member_task_idx ON selection_member (task_id);
