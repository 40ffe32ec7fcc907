-- depends: 0049_task_problem
-- Retraction: a source dataset whose instances are withdrawn from every version from
-- `from_version` on (deleted, made private or gated on the Hub, relicensed to a class the
-- collection does not take, or retracted by hand). Earlier versions keep them: version N is
-- what was published as N, less what was retracted from N or before.
CREATE TABLE retraction (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id    text NOT NULL UNIQUE CHECK (dataset_id <> ''),  -- Hub repo id, as hub_dataset
    revision      text,                                           -- the sha last seen, if known
    reason        text NOT NULL REFERENCES reason (code),
    note          text,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    from_version  integer NOT NULL CHECK (from_version > 0)
);

-- When each source of the collection was last rechecked on the Hub (the sweep takes the
-- oldest first), and what it found.
CREATE TABLE source_check (
    dataset_id  text PRIMARY KEY,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL    -- 'ok', a retraction reason, or 'unreachable'
);
