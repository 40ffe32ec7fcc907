-- depends: 0130_benchmarks
-- batch.unreachable: the service (hub, llm) the run's discovery could not reach on its latest
-- try, NULL once it could (issue 12). Work deferred by collect and generate is recorded on the
-- datasets and configs themselves; a failed discovery stores nothing else, so this column is
-- how the growth DAG's teardown (mark_failed) knows to record `service_unavailable` naming it.
ALTER TABLE batch ADD COLUMN unreachable text CHECK (unreachable IN ('hub', 'llm'));
