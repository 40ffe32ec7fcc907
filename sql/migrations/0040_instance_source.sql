-- Names (issue 11): `instance.taskname` is `instance.source`.
-- depends: 0004_select
--
--   source: the dataset id, plus `-<config>` when the dataset has several configs: where an
--       instance comes from. The original Dynosaur called it `taskname` although it names a
--       dataset (config), not a task; the exports still write the key `taskname`, the
--       original's JSON field, so files stay compatible with its tools.
--   Views selecting the column (collection, hence collection_at and selected_instance) are
--   re-created from sql/views by the same upgrade.

ALTER TABLE instance RENAME COLUMN taskname TO source;
COMMENT ON COLUMN instance.source IS
    'Dataset id, plus -<config> when the dataset has several configs (exported as "taskname").';
