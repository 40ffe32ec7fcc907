"""Validity filters for proposed tasks: pure functions, one reason code each, in mission order.

1. ``unparseable``: no instruction could be read from the proposal.
2. ``empty_output_field``: the task names no output field; ``multiple_output_fields``: it names
   several and the ``multiple_output_fields`` setting is ``reject`` (by default, ``first``, the
   first is the output, as the original's instance builder did, and the task goes on);
3. ``unknown_field``: an input or output field is not a field of the config's rows.
4. ``input_is_output``: an output field is also an input field.
5. content checks that need the config's sample rows, given by the caller (curate passes
   ``suspicious_content``, :mod:`dynosaur.curate.suspicious`, then ``answer_in_input``,
   :mod:`dynosaur.curate.leakage`);
6. ``duplicate_instruction``: another task of the same config (the original's "dataset", its
   ``task_name``) already has the same normalised instruction; the first one is kept.

The store-wide checks (identical task, near-duplicate) need the store: :mod:`dynosaur.curate.step`
runs them with the lookups of :mod:`dynosaur.store.tasks`; their pure parts are in
:mod:`dynosaur.curate.dedup`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dynosaur.curate.dedup import normalize_instruction
from dynosaur.model import Task
from dynosaur.reasons import Reason


@dataclass(frozen=True)
class Rejection:
    """Why a task was rejected: a reason code and a human message naming the culprit."""

    reason: Reason
    message: str


def normalise_fields(task: Task) -> Task:
    """The task with its field names stripped and each input field named once, in order."""
    inputs = (
        tuple(dict.fromkeys(name.strip() for name in task.input_fields))
        if task.input_fields is not None
        else None
    )
    output = task.output_field.strip() if task.output_field is not None else None
    extra = tuple(name.strip() for name in task.extra_output_fields)
    return replace(task, input_fields=inputs, output_field=output, extra_output_fields=extra)


def check_parseable(task: Task) -> Rejection | None:
    """Reject a proposal without a readable instruction."""
    if task.problem == Reason.UNPARSEABLE:
        return Rejection(Reason.UNPARSEABLE, "a field list of the proposal is not a list of names")
    if task.instruction is None or not task.instruction.strip():
        return Rejection(Reason.UNPARSEABLE, "no instruction could be read from the proposal")
    return None


MultipleOutputs = Literal["first", "reject"]


def check_output_field(task: Task, multiple: MultipleOutputs = "first") -> Rejection | None:
    """Reject a task that names no output field, or several when ``multiple`` is ``reject``."""
    if task.problem == Reason.MULTIPLE_OUTPUT_FIELDS and multiple == "reject":
        names = ", ".join(map(repr, task.output_fields))
        return Rejection(
            Reason.MULTIPLE_OUTPUT_FIELDS, f"the task names several output fields ({names})"
        )
    if task.output_field is None or not task.output_field.strip():
        return Rejection(Reason.EMPTY_OUTPUT_FIELD, "the task names no output field")
    return None


def check_fields_exist(task: Task, field_names: Collection[str]) -> Rejection | None:
    """Reject a task naming a field that the config's rows do not have."""
    unknown = [name for name in task.fields if name not in field_names]
    if unknown:
        known = ", ".join(sorted(field_names)) or "none"
        return Rejection(
            Reason.UNKNOWN_FIELD,
            f"unknown field(s) {', '.join(map(repr, unknown))}; the rows have: {known}",
        )
    return None


def check_input_is_output(task: Task) -> Rejection | None:
    """Reject a task one of whose output fields is also one of its input fields."""
    both = [name for name in task.output_fields if name in (task.input_fields or ())]
    if both:
        return Rejection(
            Reason.INPUT_IS_OUTPUT, f"{both[0]!r} is both an input and an output field"
        )
    return None


def task_filters(
    multiple: MultipleOutputs = "first",
) -> tuple[Callable[[Task, Collection[str]], Rejection | None], ...]:
    """The per-task filters in the order they are applied (the duplicate check comes after)."""
    return (
        lambda task, _: check_parseable(task),
        lambda task, _: check_output_field(task, multiple),  # or multiple_output_fields
        check_fields_exist,
        lambda task, _: check_input_is_output(task),
    )


def filter_config_tasks(
    tasks: Sequence[Task],
    field_names: Collection[str],
    content_checks: Sequence[Callable[[Task], Rejection | None]] = (),
    multiple_output_fields: MultipleOutputs = "first",
) -> dict[int, Rejection]:
    """Apply the validity filters to the tasks of one config; returns ``task id -> rejection``.

    ``content_checks`` run, in order, on the tasks that passed the field filters and before the
    duplicate-instruction check (a rejected task never takes an instruction's place).

    Tasks are taken in the given order (generation, then position in the LLM's answer): of two
    tasks with the same normalised instruction the first that passed the earlier filters is kept.
    """
    filters = task_filters(multiple_output_fields)
    rejected: dict[int, Rejection] = {}
    kept_by_instruction: dict[str, int] = {}
    for task in tasks:
        if task.id is None:
            raise ValueError("filter_config_tasks decides stored tasks: every task needs its id")
        rejection = next(
            (r for check in filters if (r := check(task, field_names)) is not None), None
        )
        if rejection is None:
            rejection = next(
                (r for check in content_checks if (r := check(task)) is not None), None
            )
        if rejection is None:
            assert task.instruction is not None  # check_parseable passed
            key = normalize_instruction(task.instruction)
            first = kept_by_instruction.setdefault(key, task.id)
            if first != task.id:
                rejection = Rejection(
                    Reason.DUPLICATE_INSTRUCTION,
                    f"same instruction as task {first} of the same config",
                )
        if rejection is not None:
            rejected[task.id] = rejection
    return rejected
