"""The growth run, used alike by ``dynosaur grow`` and the growth DAG: the request (window, ids,
run key; :mod:`.request`), the steps in order (:mod:`.run`) and where the collection stands
(:mod:`.status`)."""

from dynosaur.pipeline.request import RunRequest, request_for, request_from_trigger, run_key_for
from dynosaur.pipeline.run import (
    RunStart,
    begin_run,
    collect_step,
    curate_step,
    discover_step,
    end_run,
    generate_queue_step,
    generate_step,
    grow,
    manual_batch,
    publish_step,
    run_settings,
)
from dynosaur.pipeline.status import Status, status

__all__ = [
    "RunRequest",
    "RunStart",
    "Status",
    "begin_run",
    "collect_step",
    "curate_step",
    "discover_step",
    "end_run",
    "generate_queue_step",
    "generate_step",
    "grow",
    "manual_batch",
    "publish_step",
    "request_for",
    "request_from_trigger",
    "run_key_for",
    "run_settings",
    "status",
]
