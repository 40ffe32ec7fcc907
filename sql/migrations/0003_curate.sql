-- Curation (issue 6): the near-duplicate index, non-fatal notes on tasks, lookup indexes.
-- depends: 0001_core
--
--   task_lsh: MinHash LSH band keys of every valid task (dynosaur/curate/dedup.py). A task is a
--       near-duplicate candidate of another when they share a band key; the key hashes in the
--       task's scope (dataset, config, fields), so probing a batch's keys costs index lookups in
--       proportion to the batch, whatever the size of the store. Derived data: rows of a failed
--       batch are deleted with it, and the table can be rebuilt from the valid tasks.

CREATE TABLE task_lsh (
    task_id   bigint NOT NULL REFERENCES task (id),
    band      smallint NOT NULL CHECK (band >= 0),
    band_key  bigint NOT NULL,
    PRIMARY KEY (task_id, band)
);
CREATE INDEX task_lsh_key_idx ON task_lsh (band_key) INCLUDE (task_id);

-- Non-fatal reason codes of a task (value_truncated, text_cleaned), like hub_dataset.notes.
ALTER TABLE task ADD COLUMN notes text[] NOT NULL DEFAULT '{}';

-- Curate reads the proposed tasks of the configs it claimed; publish checks none is left.
CREATE INDEX task_proposed_config_idx ON task (config_id) WHERE status = 'proposed';
