-- depends: 0049_task_problem
-- Where a dataset's license and description came from, and each config's language.
--   license_source      card (YAML header) | card_text (the Licensing section) | dataset_infos
--                       (dataset_infos.json); NULL when none names a license
--   license_class       the class of those licenses (dynosaur/licenses.py), decided at collect
--   description_source  card (a summary section) | dataset_infos (its description); NULL: none
--   language            ISO 639-1 codes (or 'code') of a config; empty when not known
--   language_source     card_config | translation | config_name | card | detected (identifier)
ALTER TABLE hub_dataset
    ADD COLUMN license_source text
        CHECK (license_source IN ('card', 'card_text', 'dataset_infos')),
    ADD COLUMN license_class text
        CHECK (license_class IN ('permissive', 'share-alike', 'non-commercial',
                                 'no-derivatives', 'unknown')),
    ADD COLUMN description_source text
        CHECK (description_source IN ('card', 'dataset_infos'));

ALTER TABLE dataset_config
    ADD COLUMN language text[] NOT NULL DEFAULT '{}',
    ADD COLUMN language_source text
        CHECK (language_source IN ('card_config', 'translation', 'config_name', 'card',
                                   'detected'));
