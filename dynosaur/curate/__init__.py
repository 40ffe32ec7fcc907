"""Curation: validity filters, instance construction, de-duplication, and the curate step.

Mission steps 3 and 4. The pure parts (:mod:`.filters`, :mod:`.instances`, :mod:`.dedup`) know
nothing of the store; :mod:`.step` decides every proposed task of a batch and hands the reads and
writes to :mod:`dynosaur.store.tasks` and :mod:`dynosaur.store.instances`.
"""

from dynosaur.curate.filters import Rejection, filter_config_tasks
from dynosaur.curate.instances import Construction, Instance, build_instances, clean_text
from dynosaur.curate.step import curate

__all__ = [
    "Construction",
    "Instance",
    "Rejection",
    "build_instances",
    "clean_text",
    "curate",
    "filter_config_tasks",
]
