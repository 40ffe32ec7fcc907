-- published_instance: every instance of every published batch, with the version that made it
-- visible and the version from which its source is retracted (NULL: never retracted).
-- collection: the current state of the collection, i.e. version N (the newest) less what was
-- retracted from N or before. One row per training example.
DROP VIEW IF EXISTS published_instance CASCADE;
DROP VIEW IF EXISTS collection CASCADE;
CREATE VIEW published_instance AS
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
    i.batch_id,
    r.from_version AS retracted_from
FROM instance i
JOIN batch b           ON b.id = i.batch_id AND b.status = 'published'
JOIN task t            ON t.id = i.task_id
JOIN dataset_config c  ON c.id = t.config_id
JOIN hub_dataset d     ON d.id = c.hub_dataset_id
LEFT JOIN retraction r ON r.dataset_id = d.dataset_id;

COMMENT ON VIEW published_instance IS
    'Every published instance with its version and the version its source is retracted from.';

CREATE VIEW collection AS
SELECT *
FROM published_instance p
WHERE p.retracted_from IS NULL
   OR p.retracted_from > (SELECT max(version) FROM batch WHERE status = 'published');

COMMENT ON VIEW collection IS
    'The newest version of the collection: published instances less retracted sources '
    '(version N of the collection = collection_at(N)).';
