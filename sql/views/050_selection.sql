-- selected_instance: the instances of every stored selection, as they were published (columns of
-- `published_instance`: a member whose source was retracted after the selection was made shows
-- `retracted_from`), plus the selection's name and each member's rank and score. Task-level
-- members (replay sets) list every instance of the task with the task's rank and score.
DROP VIEW IF EXISTS selected_instance CASCADE;
CREATE VIEW selected_instance AS
WITH member_instance AS (
    SELECT m.selection_id, m.instance_id, m.rank, m.score
    FROM selection_member m
    WHERE m.instance_id IS NOT NULL
    UNION ALL
    SELECT m.selection_id, i.id, m.rank, m.score
    FROM selection_member m
    JOIN instance i ON i.task_id = m.task_id
    WHERE m.task_id IS NOT NULL
)
SELECT
    c.*,  -- every column of `published_instance` (retracted_from included)
    s.name AS selection_name,
    mi.rank,
    mi.score
FROM member_instance mi
JOIN selection s  ON s.id = mi.selection_id
JOIN published_instance c ON c.instance_id = mi.instance_id;

COMMENT ON VIEW selected_instance IS
    'Instances of each stored selection (selection_name), with the member''s rank and score.';

-- selection_summary: one row per stored selection with what it was made from and its size.
-- The sizes are stored with the selection when it is saved: reading one row costs the same
-- whatever the number of selections (no aggregate over selection_member).
DROP VIEW IF EXISTS selection_summary CASCADE;
CREATE VIEW selection_summary AS
SELECT
    s.name AS selection_name,
    s.method,
    s.version,
    s.parameters,
    s.models,
    s.seed,
    s.pool_size,
    s.instances_selected,
    s.tasks_selected,
    s.instances,
    s.created_at
FROM selection s;

COMMENT ON VIEW selection_summary IS
    'Stored selections: method, source version, parameters, models, seed and sizes.';
