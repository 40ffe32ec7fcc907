-- depends: 0040_instance_source
-- Every instance keeps its source's license class (dynosaur/licenses.py: permissive, share-alike,
-- non-commercial, no-derivatives, unknown), so exports and SQL can ask for a class. Rows curated
-- before this column existed say 'unknown' until re-curated: their class was never decided.
ALTER TABLE instance ADD COLUMN license_class text NOT NULL DEFAULT 'unknown'
    CHECK (license_class IN ('permissive', 'share-alike', 'non-commercial', 'no-derivatives',
                             'unknown'));
ALTER TABLE instance ALTER COLUMN license_class DROP DEFAULT;
