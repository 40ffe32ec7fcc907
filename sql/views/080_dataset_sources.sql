-- dataset_sources: per dataset revision, its license and description and where each came from
-- (the card's YAML header, its Licensing section, dataset_infos.json), with the license class
-- that decided whether it entered the collection.
DROP VIEW IF EXISTS dataset_sources CASCADE;
CREATE VIEW dataset_sources AS
SELECT d.dataset_id, d.sha, d.status, d.reason,
       d.licenses, d.license_class, d.license_source,
       d.summary IS NOT NULL AS has_description, d.description_source,
       d.languages AS card_languages
FROM hub_dataset d;

COMMENT ON VIEW dataset_sources IS
    'Each dataset''s license, license class and description with where each came from.';

-- config_languages: each configuration's languages, how they were found (card, translation
-- features, config name, identifier on the sample rows) and what collect did with it.
DROP VIEW IF EXISTS config_languages CASCADE;
CREATE VIEW config_languages AS
SELECT d.dataset_id, c.config_name, c.language, c.language_source, c.status, c.reason
FROM dataset_config c
JOIN hub_dataset d ON d.id = c.hub_dataset_id;

COMMENT ON VIEW config_languages IS
    'Each configuration''s languages, their source and the config''s collect outcome.';
