-- collection_at(N): version N of the collection, i.e. the instances of every published batch
-- with version <= N, less the sources retracted from version N or before (the same columns as
-- `collection`).
--   SELECT source, count(*) FROM collection_at(3) GROUP BY source;
-- A SQL function over the `published_instance` view, so it runs with the caller's rights:
-- whoever may read the views (the reader role) may call it.
CREATE OR REPLACE FUNCTION collection_at(n integer)
RETURNS SETOF collection
LANGUAGE sql STABLE
AS $$
    SELECT * FROM published_instance
    WHERE version <= n AND (retracted_from IS NULL OR retracted_from > n)
$$;

COMMENT ON FUNCTION collection_at(integer) IS
    'Version N of the collection: instances of published batches with version <= N, less '
    'sources retracted from N or before.';
