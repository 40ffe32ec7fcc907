"""The instance repository: loading a batch's instances with ``COPY``.

An instance row is self-contained, as exported: the task's final instruction, the input and
output, and the source dataset's license, Hub page and name. ``source`` is the dataset id, plus
``-<config>`` when the dataset has several configs (the original Dynosaur's ``taskname``, which is
still the key the exports write).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from dynosaur.store.copy import copy_lines, escape

INSTANCE_COLUMNS = (
    "task_id",
    "batch_id",
    "row_index",
    "instruction",
    "input",
    "output",
    "license",
    "license_class",
    "website",
    "source",
)


@dataclass(frozen=True)
class TaskInstances:
    """The instances of one valid task: what they share, and (row index, input, output) each."""

    task_id: int
    instruction: str
    license: str
    license_class: str
    website: str
    source: str
    rows: Sequence[tuple[int, str, str]]


def instance_lines(batch_id: int, tasks: Iterable[TaskInstances]) -> Iterator[str]:
    """COPY text lines of the instances of ``tasks``; what a task's instances share is escaped
    once."""
    for task in tasks:
        head = f"{task.task_id}\t{batch_id}\t"
        mid = f"\t{escape(task.instruction)}\t"
        tail = (
            f"\t{escape(task.license)}\t{task.license_class}\t{escape(task.website)}"
            f"\t{escape(task.source)}\n"
        )
        for row_index, input_, output in task.rows:
            yield f"{head}{row_index}{mid}{escape(input_)}\t{escape(output)}{tail}"


def copy_instances(conn: Connection, batch_id: int, tasks: Iterable[TaskInstances]) -> int:
    """Load the instances of ``tasks`` into batch ``batch_id`` in ``conn``'s transaction; returns
    the number of rows."""
    return copy_lines(conn, "instance", INSTANCE_COLUMNS, instance_lines(batch_id, tasks))
