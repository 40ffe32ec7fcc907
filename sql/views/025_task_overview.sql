-- task_overview: every curated task of a finished batch (published or empty), valid or rejected,
-- with its source dataset's metadata (task categories, licenses, languages) and its instances.
DROP VIEW IF EXISTS task_overview CASCADE;
CREATE VIEW task_overview AS
SELECT
    t.id                                          AS task_id,
    b.version,
    b.id                                          AS batch_id,
    b.published_at,
    t.status,
    t.reason,
    t.message,
    coalesce(t.instance_instruction, t.instruction) AS instruction,
    t.instruction                                 AS proposed_instruction,
    t.input_fields,
    t.output_field,
    t.labels,
    t.notes,
    g.prompt_kind,
    d.dataset_id,
    c.config_name,
    d.task_categories,
    d.task_ids,
    d.licenses,
    d.languages,
    d.hub_url,
    (SELECT count(*) FROM instance i WHERE i.task_id = t.id) AS instances
FROM task t
JOIN batch b          ON b.id = t.batch_id AND b.status IN ('published', 'empty')
JOIN generation g     ON g.id = t.generation_id
JOIN dataset_config c ON c.id = t.config_id
JOIN hub_dataset d    ON d.id = c.hub_dataset_id;

COMMENT ON VIEW task_overview IS
    'Curated tasks of published and empty batches, with dataset metadata and instance counts.';
