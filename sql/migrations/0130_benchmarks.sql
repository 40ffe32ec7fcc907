-- depends: 0120_retraction
-- Benchmark decontamination. An indexed evaluation split: one row per (dataset, config, split)
-- at one revision; its rows' normalised text becomes word 13-grams, kept as 64-bit hashes.
CREATE TABLE benchmark (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id  text NOT NULL CHECK (dataset_id <> ''),   -- Hub repo id as listed in settings
    config_name text NOT NULL,
    split       text NOT NULL,
    sha         text NOT NULL,                           -- the revision whose rows were indexed
    n_rows      integer NOT NULL CHECK (n_rows >= 0),
    n_ngrams    integer NOT NULL CHECK (n_ngrams >= 0),
    indexed_at  timestamptz NOT NULL DEFAULT now(),
    checked_at  timestamptz,          -- when the published collection was re-checked against it
    UNIQUE (dataset_id, config_name, split, sha)
);

-- One row per distinct n-gram hash of a benchmark; the primary key is the lookup index.
CREATE TABLE benchmark_ngram (
    hash         bigint NOT NULL,
    benchmark_id integer NOT NULL REFERENCES benchmark (id) ON DELETE CASCADE,
    PRIMARY KEY (hash, benchmark_id)
);

-- Instances curate dropped because their input or output shares a 13-gram with a benchmark:
-- which task row, which side, which benchmark.
--   SELECT reason, count(*) FROM benchmark_match GROUP BY reason;
CREATE TABLE benchmark_match (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id     bigint NOT NULL REFERENCES batch (id) ON DELETE CASCADE,
    task_id      bigint NOT NULL REFERENCES task (id) ON DELETE CASCADE,
    row_index    integer NOT NULL,
    side         text NOT NULL CHECK (side IN ('input', 'output')),
    benchmark_id integer NOT NULL REFERENCES benchmark (id) ON DELETE CASCADE,
    reason       text NOT NULL DEFAULT 'benchmark_overlap' REFERENCES reason (code),
    UNIQUE (task_id, row_index)
);
