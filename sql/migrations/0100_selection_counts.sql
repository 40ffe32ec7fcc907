-- depends: 0049_task_problem
-- Stored selection sizes (issue 15): a selection's counts are written once, when it is stored,
-- so reading or listing selections touches the `selection` rows only (by index), never an
-- aggregate over every selection's members. Existing selections are counted here once.

ALTER TABLE selection
    ADD COLUMN instances_selected integer NOT NULL DEFAULT 0 CHECK (instances_selected >= 0),
    ADD COLUMN tasks_selected     integer NOT NULL DEFAULT 0 CHECK (tasks_selected >= 0),
    ADD COLUMN instances          integer NOT NULL DEFAULT 0 CHECK (instances >= 0);

UPDATE selection s SET
    instances_selected = m.instances,
    tasks_selected     = m.tasks,
    instances          = m.instances + m.task_instances
FROM (
    SELECT m.selection_id,
           count(m.instance_id) AS instances,
           count(m.task_id)     AS tasks,
           coalesce(sum((SELECT count(*) FROM instance i WHERE i.task_id = m.task_id)), 0)
               AS task_instances
    FROM selection_member m GROUP BY m.selection_id
) m
WHERE m.selection_id = s.id;

-- A selection's task members, by selection (the instance members already have the leading
-- column of UNIQUE (selection_id, instance_id)).
CREATE INDEX IF NOT EXISTS selection_member_selection_task_idx
    ON selection_member (selection_id, task_id) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS selection_created_idx ON selection (created_at DESC, id DESC);
