-- depends: 0048_instance_license_class
-- What the parser could not read in a proposal (a reason code: unparseable, multiple_output_fields),
-- so that curate rejects it with that reason rather than a guess from the missing parts.
ALTER TABLE task ADD COLUMN problem text REFERENCES reason (code);
