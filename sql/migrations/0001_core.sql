-- Schema v1: the data path of one growth run.
--
--   hub_dataset -> dataset_config -> generation -> llm_call (the ledger)
--                                 -> task -> instance
--   batch: one growth run; publishing it makes it visible as a version.
--
-- Every row that can be skipped, deferred, rejected or fail carries `status` plus `reason`
-- (a short machine-readable code listed in the `reason` table) and a human `message`.
-- Published rows are append-only: later runs add rows, they never rewrite published ones.

-- Bookkeeping of `dynosaur db upgrade` beyond migrations (fingerprint of the views' definitions).
CREATE TABLE schema_meta (
    key    text PRIMARY KEY,
    value  text NOT NULL
);

CREATE TABLE reason (
    code        text PRIMARY KEY,
    stage       text NOT NULL,
    description text NOT NULL
);

CREATE TABLE batch (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_key       text NOT NULL UNIQUE,          -- idempotency key of the run that builds it
    dag_run_id    text,                          -- Airflow run id, when Airflow built it
    window_start  timestamptz,
    window_end    timestamptz,
    status        text NOT NULL DEFAULT 'building'
                  CHECK (status IN ('building', 'published', 'failed', 'empty')),
    version       integer UNIQUE CHECK (version > 0),
    reason        text REFERENCES reason (code),
    message       text,
    figures       jsonb NOT NULL DEFAULT '{}'::jsonb,
    cost_usd      numeric(14, 6) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    CHECK ((status = 'published') = (version IS NOT NULL)),
    CHECK ((status = 'published') = (published_at IS NOT NULL)),
    CHECK (window_start IS NULL OR window_end IS NULL OR window_start < window_end)
);

CREATE TABLE hub_dataset (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id       text NOT NULL CHECK (dataset_id <> ''),   -- Hub repo id, e.g. "org/name"
    sha              text NOT NULL CHECK (sha <> ''),          -- revision
    created_at       timestamptz,                              -- on the Hub
    last_modified    timestamptz,                              -- on the Hub
    discovered_via   text NOT NULL CHECK (discovered_via IN ('created', 'modified', 'explicit')),
    discovered_at    timestamptz NOT NULL DEFAULT now(),
    hub_url          text NOT NULL,
    gated            boolean NOT NULL DEFAULT false,
    private          boolean NOT NULL DEFAULT false,
    card_data        jsonb,                                    -- card YAML as read
    pretty_name      text,
    licenses         text[] NOT NULL DEFAULT '{}',
    languages        text[] NOT NULL DEFAULT '{}',
    multilinguality  text[] NOT NULL DEFAULT '{}',
    task_categories  text[] NOT NULL DEFAULT '{}',
    task_ids         text[] NOT NULL DEFAULT '{}',
    summary          text,                                     -- cleaned card sections
    supported_tasks  text,
    data_fields      text,
    status           text NOT NULL DEFAULT 'discovered'
                     CHECK (status IN ('discovered', 'collected', 'skipped', 'deferred', 'failed')),
    reason           text REFERENCES reason (code),
    message          text,
    notes            text[] NOT NULL DEFAULT '{}',             -- non-fatal reason codes
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    collected_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_id, sha),
    CHECK (status IN ('discovered', 'collected') OR reason IS NOT NULL)
);
CREATE INDEX hub_dataset_status_idx ON hub_dataset (status);
CREATE INDEX hub_dataset_created_idx ON hub_dataset (created_at);

CREATE TABLE dataset_config (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hub_dataset_id  bigint NOT NULL REFERENCES hub_dataset (id),
    config_name     text NOT NULL,
    splits          jsonb NOT NULL DEFAULT '{}'::jsonb,        -- split name -> number of rows
    features        jsonb,                                     -- `datasets` features serialisation
    fields          jsonb NOT NULL DEFAULT '[]'::jsonb,        -- flattened fields: name, type, labels
    sample_split    text,
    sample_rows     jsonb NOT NULL DEFAULT '[]'::jsonb,        -- <= 100 rows, ClassLabel as names
    status          text NOT NULL DEFAULT 'collected'
                    CHECK (status IN ('collected', 'skipped', 'deferred', 'generated', 'failed',
                                      'curated')),
    reason          text REFERENCES reason (code),
    message         text,
    notes           text[] NOT NULL DEFAULT '{}',
    batch_id        bigint REFERENCES batch (id),              -- the batch that curated it
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (hub_dataset_id, config_name),
    CHECK (status NOT IN ('skipped', 'deferred', 'failed') OR reason IS NOT NULL),
    CHECK ((status = 'curated') = (batch_id IS NOT NULL))
);
CREATE INDEX dataset_config_status_idx ON dataset_config (status);
CREATE INDEX dataset_config_batch_idx ON dataset_config (batch_id);

-- The LLM call ledger: one row per distinct request (model + messages + parameters + prompt
-- version). A succeeded row is the cache that makes re-runs free.
CREATE TABLE llm_call (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_hash       text NOT NULL UNIQUE,
    model              text NOT NULL,
    parameters         jsonb NOT NULL DEFAULT '{}'::jsonb,
    prompt_version     text NOT NULL,
    messages           jsonb NOT NULL,
    response           text,
    prompt_tokens      integer CHECK (prompt_tokens >= 0),
    completion_tokens  integer CHECK (completion_tokens >= 0),
    cost_usd           numeric(14, 8) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    latency_ms         integer CHECK (latency_ms >= 0),
    attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    status             text NOT NULL DEFAULT 'in_flight'
                       CHECK (status IN ('in_flight', 'succeeded', 'failed')),
    error              text REFERENCES reason (code),
    message            text,
    claimed_by         text,                                  -- host:pid of the caller
    claimed_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    CHECK (status <> 'succeeded' OR response IS NOT NULL),
    CHECK (status <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX llm_call_status_idx ON llm_call (status);

-- One prompt sent (or to be sent) for one config.
CREATE TABLE generation (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    config_id     bigint NOT NULL REFERENCES dataset_config (id),
    prompt_kind   text NOT NULL CHECK (prompt_kind IN ('description_aware', 'description_unaware')),
    request_hash  text NOT NULL,
    llm_call_id   bigint REFERENCES llm_call (id),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'succeeded', 'failed')),
    reason        text REFERENCES reason (code),
    message       text,
    cost_usd      numeric(14, 8) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (config_id, prompt_kind),
    CHECK (status <> 'failed' OR reason IS NOT NULL),
    CHECK (status <> 'succeeded' OR llm_call_id IS NOT NULL)
);
CREATE INDEX generation_status_idx ON generation (status);

-- A task proposed by the LLM: instruction + input fields + one output field.
CREATE TABLE task (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    config_id       bigint NOT NULL REFERENCES dataset_config (id),
    generation_id   bigint NOT NULL REFERENCES generation (id),
    position        smallint NOT NULL CHECK (position >= 0),  -- order in the LLM's answer
    raw             text,                                     -- the proposal as the LLM wrote it
    instruction     text,
    input_fields    text[],
    output_field    text,
    status          text NOT NULL DEFAULT 'proposed'
                    CHECK (status IN ('proposed', 'valid', 'rejected')),
    reason          text REFERENCES reason (code),
    message         text,
    labels          text[],                                   -- label space, for classification
    instance_instruction text,                                -- instruction given to instances
    fingerprint     text,                                     -- normalised identity for de-dup
    batch_id        bigint REFERENCES batch (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    curated_at      timestamptz,
    UNIQUE (generation_id, position),
    CHECK (status <> 'rejected' OR reason IS NOT NULL),
    CHECK (status <> 'valid' OR (instruction IS NOT NULL AND output_field IS NOT NULL
                                 AND batch_id IS NOT NULL))
);
CREATE INDEX task_config_idx ON task (config_id);
CREATE INDEX task_batch_idx ON task (batch_id);
CREATE INDEX task_status_idx ON task (status);
-- At most one valid task per fingerprint in the whole store.
CREATE UNIQUE INDEX task_fingerprint_valid_key ON task (fingerprint) WHERE status = 'valid';

-- One training example: a valid task applied to one sample row. Self-contained, as exported.
CREATE TABLE instance (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id      bigint NOT NULL REFERENCES task (id),
    batch_id     bigint NOT NULL REFERENCES batch (id),
    row_index    integer NOT NULL CHECK (row_index >= 0),
    instruction  text NOT NULL,
    input        text NOT NULL,
    output       text NOT NULL CHECK (output <> ''),
    license      text NOT NULL,
    website      text NOT NULL,
    taskname     text NOT NULL,
    UNIQUE (task_id, row_index)
);
CREATE INDEX instance_batch_idx ON instance (batch_id);
