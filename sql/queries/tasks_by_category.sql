-- Valid tasks of version :version by the source dataset's task category (card metadata), with
-- their instances. A dataset with several categories counts under each; none = '(none)'.
--   psql: \set version 3     then  \i sql/queries/tasks_by_category.sql
SELECT
    coalesce(category, '(none)')  AS task_category,
    count(DISTINCT t.dataset_id)  AS datasets,
    count(*)                      AS tasks,
    sum(t.instances)              AS instances
FROM task_overview t
CROSS JOIN LATERAL unnest(
    CASE WHEN cardinality(t.task_categories) > 0 THEN t.task_categories ELSE ARRAY[NULL] END
) AS category
WHERE t.status = 'valid' AND t.version <= :version
GROUP BY 1
ORDER BY tasks DESC, task_category;
