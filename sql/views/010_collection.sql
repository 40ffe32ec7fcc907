-- collection: every instance of every published batch, the current state of the collection.
-- One row per training example, with the version that made it visible.
DROP VIEW IF EXISTS collection CASCADE;
CREATE VIEW collection AS
SELECT
    i.id          AS instance_id,
    b.version,
    b.published_at,
    i.instruction,
    i.input,
    i.output,
    i.license,
    i.license_class,
    i.website,
    i.source,
    d.dataset_id,
    c.config_name,
    i.task_id,
    i.batch_id
FROM instance i
JOIN batch b          ON b.id = i.batch_id AND b.status = 'published'
JOIN task t           ON t.id = i.task_id
JOIN dataset_config c ON c.id = t.config_id
JOIN hub_dataset d    ON d.id = c.hub_dataset_id;

COMMENT ON VIEW collection IS
    'Published instances (version N of the collection = rows with version <= N).';
