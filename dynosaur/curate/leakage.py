"""Answer leakage: the output of a task already written, whole, in one of its inputs.

A task whose output value equals the whole value of one of its input fields teaches nothing (a
dialogue-act task whose input carries a ``Label`` column with the same names as the output's
``Dialogue_Act``). Values are compared after normalising Unicode (NFKC), case and spaces, with
ClassLabel integers read as their names. Only *whole* values count: an answer that is a span of a
longer input (extractive QA, the answer inside its passage) is not a leak.

* :func:`check_task` rejects a task (``answer_in_input``) when its sample rows leak in more than a
  share of the rows that have an output (``Settings.answer_in_input_share``, "most rows"), even
  when the shared value is one constant (two flags both False: the input still gives the answer);
* :func:`leaking_rows` names the rows that leak, so that curate drops those instances one by one
  from a task that is otherwise kept.

Pure functions, no I/O.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from dynosaur.curate.filters import Rejection
from dynosaur.curate.instances import scalar_text
from dynosaur.model import FieldInfo, Task
from dynosaur.reasons import Reason

# Default share of sample rows (with an output) that must leak for the whole task to be rejected.
DEFAULT_SHARE = 0.5


def normalise_value(text: str) -> str:
    """Case-, space- and Unicode-form-insensitive form of a value."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _may_fold_to(text: str, target: str) -> bool:
    """False when ``text`` is too long to normalise to ``target``: NFKC composes at most three
    characters into one, casefolding never shortens, and only whitespace is dropped; so a value
    whose non-space characters are over three times the target's length cannot equal it. Saves
    normalising long passages against short answers (most of the work otherwise)."""
    spaces = text.count(" ") + text.count("\n") + text.count("\t") + text.count("\r")
    return len(text) - spaces <= 3 * len(target)


def _labels(info: FieldInfo | None) -> Sequence[str] | None:
    if info is not None and info.labels and "class_label" in info.type:
        return info.labels
    return None


def _value(
    row: Mapping[str, Any],
    name: str,
    fields: Mapping[str, FieldInfo],
    target: str | None = None,
) -> str | None:
    """Normalised whole value of a scalar field in a row (None when missing, empty or nested,
    or, given a ``target``, when it is too long to equal it)."""
    text = scalar_text(row.get(name), _labels(fields.get(name)))
    if not text or (target is not None and not _may_fold_to(text, target)):
        return None
    return normalise_value(text) or None


def row_leak(
    row: Any, input_fields: Sequence[str], output_field: str, fields: Mapping[str, FieldInfo]
) -> tuple[str, str] | None:
    """(input field, normalised value) when the field's whole value equals the row's output."""
    if not isinstance(row, Mapping):
        return None
    output = _value(row, output_field, fields)
    if output is None:
        return None
    for name in input_fields:
        if name != output_field and _value(row, name, fields, output) == output:
            return name, output
    return None


def _leaks(
    rows: Sequence[Any],
    input_fields: Sequence[str],
    output_field: str,
    fields: Mapping[str, FieldInfo],
) -> dict[int, tuple[str, str]]:
    leaks: dict[int, tuple[str, str]] = {}
    for index, row in enumerate(rows):
        found = row_leak(row, input_fields, output_field, fields)
        if found is not None:
            leaks[index] = found
    return leaks


def leaking_rows(
    rows: Sequence[Any],
    input_fields: Sequence[str],
    output_field: str,
    fields: Mapping[str, FieldInfo],
) -> dict[int, str]:
    """Row index -> the input field that holds the row's output, for every leaking row."""
    return {i: name for i, (name, _) in _leaks(rows, input_fields, output_field, fields).items()}


def _rows_with_output(
    rows: Sequence[Any], output_field: str, fields: Mapping[str, FieldInfo]
) -> int:
    return sum(
        1
        for row in rows
        if isinstance(row, Mapping) and _value(row, output_field, fields) is not None
    )


def check_task(
    task: Task,
    fields: Mapping[str, FieldInfo],
    rows: Sequence[Any],
    share: float = DEFAULT_SHARE,
) -> Rejection | None:
    """Reject a task whose output equals a whole input value in more than ``share`` of the sample
    rows that have an output (``answer_in_input``)."""
    if task.output_field is None or not task.input_fields:
        return None
    leaks = _leaks(rows, task.input_fields, task.output_field, fields)
    if not leaks:
        return None
    total = _rows_with_output(rows, task.output_field, fields)
    if total == 0 or len(leaks) / total <= share:
        return None
    name, count = Counter(name for name, _ in leaks.values()).most_common(1)[0]
    return Rejection(
        Reason.ANSWER_IN_INPUT,
        f"the output {task.output_field!r} equals the whole value of input {name!r} in "
        f"{count} of {total} sample rows (limit {share:.0%})",
    )
