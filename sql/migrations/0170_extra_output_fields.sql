-- depends: 0140_batch_unreachable
-- A task that names several output fields keeps the first as its output field (the original's
-- instance builder read only the first); the others are kept here so that curate checks them
-- too (each must exist and none may be an input, as the original's filter did) and so that SQL
-- can count such tasks: task.problem = 'multiple_output_fields' with status 'valid' means kept
-- under the multiple_output_fields = first setting.
ALTER TABLE task ADD COLUMN extra_output_fields text[];
