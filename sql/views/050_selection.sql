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
    coalesce(m.instances, 0)  AS instances_selected,
    coalesce(m.tasks, 0)      AS tasks_selected,
    coalesce(n.instances, 0)  AS instances,
    s.created_at
FROM selection s
LEFT JOIN (
    SELECT selection_id,
           count(instance_id) AS instances,
           count(task_id)     AS tasks
    FROM selection_member GROUP BY selection_id
) m ON m.selection_id = s.id
LEFT JOIN (
    SELECT s2.id AS selection_id, count(*) AS instances
    FROM selection s2 JOIN selected_instance si ON si.selection_name = s2.name
    GROUP BY s2.id
) n ON n.selection_id = s.id;

COMMENT ON VIEW selection_summary IS
    'Stored selections: method, source version, parameters, models, seed and sizes.';
