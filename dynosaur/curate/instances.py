"""Instance construction (mission step 4): a valid task applied to each sample row of its config.

Pure functions, no I/O. The rules, as the mission states them:

* input: the single input field's value as it is; several fields become ``field is 'value'. ``
  each; a list field whose name contains "choice" becomes ``A. 'x', B. 'y'.``, and so does such
  a field holding a dict of parallel lists (``{"text": [...], "label": [...]}``: the given
  letters are kept) (other lists: ``'x', 'y'``; dicts: JSON);
* output: scalars only; a task whose output field holds lists or dicts is rejected
  (``non_scalar_output``); ClassLabel values are their names;
* input and output are cut at 2,000 characters; NUL bytes, other control characters and invalid
  text (lone surrogates) are removed; rows with an empty input or output are skipped, and
  identical (input, output) pairs are kept once;
* classification: when the output takes at most 10 distinct values over the rows, the task is
  kept only if the majority value is at most 70% of the rows (two values) or 50% (one value, or
  three and more); when every label is at most 15 characters the instruction gets
  `` Answers must be one of <labels>.`` (judged on every sample row with an output, before
  de-duplication; samples under 10 rows: see :func:`classify`);
* a task that yields no instance is rejected (``no_instances``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dynosaur.curate.dedup import strip_label_suffix
from dynosaur.curate.filters import Rejection
from dynosaur.model import FieldInfo
from dynosaur.reasons import Reason

MAX_CHARS = 2000
MAX_CLASSES = 10
MAX_LABEL_CHARS = 15
BINARY_MAJORITY = 0.7
MULTICLASS_MAJORITY = 0.5
# Fewer sample rows (with an output) than this say nothing about an output's label distribution.
MIN_LABEL_ROWS = 10

# Postgres text cannot hold NUL; other C0 controls (but tab, newline, carriage return) are noise.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Instance(NamedTuple):
    """One training example of a task (the task's instruction is shared by all of them)."""

    row_index: int
    input: str
    output: str


@dataclass(frozen=True)
class Construction:
    """What building a task's instances gave: the instances, or the reason there are none."""

    instruction: str
    labels: tuple[str, ...] | None = None
    instances: tuple[Instance, ...] = ()
    rejection: Rejection | None = None
    notes: frozenset[str] = field(default_factory=frozenset)


def clean_text(text: str) -> str:
    """``text`` without NUL bytes, control characters (tab/newline kept) or lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from bad JSON escapes) cannot be stored
        text = text.encode("utf-8", "ignore").decode("utf-8")
    return _CONTROL.sub("", text)


class _NonScalar(Exception):
    """An output value is a list or dict."""


def _labels_of(info: FieldInfo | None) -> tuple[str, ...] | None:
    if info is not None and info.labels and "class_label" in info.type:
        return info.labels
    return None


def scalar_text(value: Any, labels: Sequence[str] | None = None) -> str | None:
    """Text of a scalar value (ClassLabel ints become names); None when missing or not a scalar."""
    if value.__class__ is str:  # the common case first
        return value.strip()
    if value is None or isinstance(value, list | dict | tuple):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if labels is not None:  # -1 is the "no label" of unlabeled splits
            return labels[value] if 0 <= value < len(labels) else None
        return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else str(value)
    return str(value).strip()


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def render_value(name: str, value: Any, info: FieldInfo | None = None) -> tuple[str, bool] | None:
    """Text of one input value and whether it is a scalar (quoted when fields are combined).

    Lists of scalars: ``A. 'x', B. 'y'`` when the field name contains "choice", else
    ``'x', 'y'``; a "choice" dict of parallel lists: its options lettered
    (:func:`dict_options`); anything else nested is JSON. None when the value is missing or empty.
    """
    if value.__class__ is str:
        text = value.strip()
        return (text, True) if text else None
    labels = _labels_of(info)
    if isinstance(value, list | tuple):
        if not value:
            return None
        items = [scalar_text(item, labels) for item in value]
        if any(item is None for item in items):
            return _json(value), False
        if "choice" in name.casefold():
            return ", ".join(f"{_letter(i)}. '{item}'" for i, item in enumerate(items)), False
        return ", ".join(f"'{item}'" for item in items), False
    if isinstance(value, dict):
        if not value:
            return None
        options = dict_options(value, labels) if "choice" in name.casefold() else None
        if options is not None:
            return options, False
        return _json(value), False
    scalar = scalar_text(value, labels)
    return (scalar, True) if scalar else None


# Keys of a dict-of-lists choices value (``{"text": [...], "label": [...]}``, the shape of
# CommonsenseQA, ARC, OpenBookQA): which list holds the options and which their letters.
_OPTION_KEYS = ("text", "texts", "choice", "choices", "option", "options", "answer", "answers")
_LETTER_KEYS = ("label", "labels", "letter", "letters", "key", "keys")
_MAX_LETTER_CHARS = 5  # given letters longer than this are not letters ("A", "1", "(a)")


def dict_options(value: Mapping[str, Any], labels: Sequence[str] | None = None) -> str | None:
    """``A. 'x', B. 'y'`` for a dict of parallel lists whose options list is known by its key
    (the given letters are used when the dict has them and they are short), else None."""
    lists = {str(k).casefold(): v for k, v in value.items() if isinstance(v, list)}
    key = next((k for k in _OPTION_KEYS if k in lists), None)
    if key is None or not lists[key]:
        return None
    items = [scalar_text(item, labels) for item in lists[key]]
    if any(item is None for item in items):
        return None
    letters = [_letter(i) for i in range(len(items))]
    given_key = next((k for k in _LETTER_KEYS if k in lists), None)
    if given_key is not None:
        given = [scalar_text(item) for item in lists[given_key]]
        if (
            len(given) == len(items)
            and all(g and len(g) <= _MAX_LETTER_CHARS for g in given)
            and len(set(given)) == len(given)
        ):
            letters = [str(g) for g in given]
    return ", ".join(f"{letter}. '{item}'" for letter, item in zip(letters, items, strict=True))


def render_input(
    input_fields: Sequence[str], row: Mapping[str, Any], fields: Mapping[str, FieldInfo]
) -> str | None:
    """The instance input for one row, or None when an input value is missing or empty."""
    parts: list[str] = []
    single = len(input_fields) == 1
    for name in input_fields:
        rendered = render_value(name, row.get(name), fields.get(name))
        if rendered is None:
            return None
        text, is_scalar = rendered
        if single:
            return text + "." if "choice" in name.casefold() and not is_scalar else text
        parts.append(f"{name} is '{text}'. " if is_scalar else f"{name} is {text}. ")
    return "".join(parts).rstrip() or None


def render_output(value: Any, info: FieldInfo | None) -> str | None:
    """The instance output for one row (None when missing); lists and dicts raise ``_NonScalar``."""
    if isinstance(value, list | dict | tuple):
        raise _NonScalar
    return scalar_text(value, _labels_of(info)) or None


def label_suffix(labels: Sequence[str]) -> str:
    """`` Answers must be one of a, b.`` (the original's wording)."""
    return f" Answers must be one of {', '.join(labels)}."


def with_label_suffix(instruction: str, labels: Sequence[str]) -> str:
    """The instruction ending with the label-space sentence."""
    base = instruction.rstrip()
    if base and base[-1] not in ".?!":
        base += "."
    return base + label_suffix(labels)


def _cut(text: str, notes: set[str]) -> str:
    cleaned = clean_text(text)
    if len(cleaned) != len(text):  # cleaning only ever removes characters
        notes.add(Reason.TEXT_CLEANED.value)
    if len(cleaned) > MAX_CHARS:
        notes.add(Reason.VALUE_TRUNCATED.value)
        cleaned = cleaned[:MAX_CHARS]
    return cleaned.strip()


def classify(
    outputs: Sequence[str], info: FieldInfo | None
) -> tuple[tuple[str, ...] | None, Rejection | None]:
    """Label space of a classification output (None if not one) or why it is too imbalanced.

    ``outputs``: the output of every sample row that has one (the original judged the rows, not
    the de-duplicated instances). The mission's rule: at most 10 distinct outputs make a
    classification task, kept only if its majority value is at most 70% of the rows (two values)
    or 50% (one value, or three and more). A sample of fewer than :data:`MIN_LABEL_ROWS` rows
    says nothing about a distribution (one row always has one distinct value): only a ClassLabel
    output, whose label space the features state, is then classification, and balance is not
    judged.
    """
    counts = Counter(outputs)
    if not counts:
        return None, None
    names = _labels_of(info)
    known = names if names and len(names) <= MAX_CLASSES and set(counts) <= set(names) else None
    enough = len(outputs) >= MIN_LABEL_ROWS
    if not (enough and len(counts) <= MAX_CLASSES) and known is None:
        return None, None
    if enough:
        label, top = counts.most_common(1)[0]
        share = top / len(outputs)
        limit = BINARY_MAJORITY if len(counts) == 2 else MULTICLASS_MAJORITY
        if share > limit:
            return None, Rejection(
                Reason.IMBALANCED_LABELS,
                f"{len(counts)} distinct output(s); {label!r} is {share:.0%} of {len(outputs)} "
                f"rows (limit {limit:.0%})",
            )
    if known is not None:
        return tuple(known), None  # the full label space, in class order
    return tuple(counts), None  # observed values, in order of first appearance


def build_instances(
    instruction: str,
    input_fields: Sequence[str],
    output_field: str,
    fields: Mapping[str, FieldInfo],
    rows: Sequence[Any],
) -> Construction:
    """Build the instances of one valid task over its config's sample rows. Never raises."""
    notes: set[str] = set()
    base = _cut(strip_label_suffix(instruction), set()) if instruction else ""
    out_info = fields.get(output_field)
    if out_info is not None and not out_info.is_scalar:
        return Construction(
            base,
            rejection=Rejection(
                Reason.NON_SCALAR_OUTPUT, f"{output_field!r} is of type {out_info.type}"
            ),
        )
    built: list[Instance] = []
    outputs: list[str] = []  # every row's output: classification is judged on the sample rows
    seen: set[tuple[str, str]] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            continue
        try:
            output = render_output(row.get(output_field), out_info)
        except _NonScalar:
            return Construction(
                base,
                rejection=Rejection(
                    Reason.NON_SCALAR_OUTPUT,
                    f"{output_field!r} holds a list or dict in row {index}",
                ),
            )
        if output is None:
            continue
        outputs.append(_cut(output, set()))
        text = render_input(input_fields, row, fields)
        if text is None:
            continue
        pair = (_cut(text, notes), _cut(output, notes))
        if pair[0] and pair[1] and pair not in seen:
            seen.add(pair)
            built.append(Instance(index, *pair))
    if not built:
        return Construction(
            base,
            rejection=Rejection(
                Reason.NO_INSTANCES,
                f"none of {len(rows)} sample row(s) gave a non-empty input and output",
            ),
        )
    labels, rejection = classify(outputs, out_info)
    if rejection is not None:
        return Construction(base, rejection=rejection)
    final = base
    if labels is not None and all(len(label) <= MAX_LABEL_CHARS for label in labels):
        final = with_label_suffix(base, labels)
    return Construction(final, labels, tuple(built), None, frozenset(notes))
