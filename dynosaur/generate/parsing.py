"""Reading task proposals out of an LLM answer, whatever shape the model chose to write them in.

Accepted, in the order tried: a JSON list of task objects; a ``{"tasks": [...]}`` wrapper (what
structured output returns); Python-literal dicts (single quotes, ``True``/``None``: what the
original Dynosaur prompt produced); any of these inside fenced code; slightly broken JSON
(trailing commas, missing quotes: repaired by ``json_repair``); one object per line. An answer cut
at the token limit keeps its complete objects and is marked truncated. ``output_field`` written
as ``["name"]`` (the original's format) is read as ``"name"``.

Field parts of the wrong shape carry one reason each (:attr:`Task.problem`, for curate):

- several distinct output field names (``["a", "b"]``): ``multiple_output_fields``; the first
  is read as the output field and the others are kept as :attr:`Task.extra_output_fields`
  (the original built the output from the first; curate keeps or rejects such a task as the
  ``multiple_output_fields`` setting says);
- a field list holding anything but names (``["a", 3]``, ``[["a"]]``), or a field part that is
  neither a name nor a list (a number, an object): ``unparseable``;
- a string where the input list belongs is read as *one* field name, never split:
  ``"context"`` is ``("context",)`` and ``"a, b"`` is ``("a, b",)``. Real column names hold
  commas and spaces (``"Sentence 1, cleaned"``), so splitting could quietly pick other columns;
  unless the rows have a column of that very name, curate rejects the task ``unknown_field``,
  which names the defect.

Pure functions: no I/O, no settings.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

import json_repair

from dynosaur.model import Task
from dynosaur.reasons import Reason

TASK_KEYS = ("instruction", "input_fields", "output_field")

# Key spellings models use for the three task keys (after lower-casing, spaces -> underscores).
_KEY_ALIASES = {
    "instruction": "instruction",
    "instructions": "instruction",
    "task": "instruction",
    "input_fields": "input_fields",
    "input_field": "input_fields",
    "inputs": "input_fields",
    "input": "input_fields",
    "output_field": "output_field",
    "output_fields": "output_field",
    "output": "output_field",
}
_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ParsedAnswer:
    """Every proposal found in an answer, and whether the answer was cut short."""

    tasks: tuple[Task, ...]
    truncated: bool = False
    dropped: int = 0  # proposals beyond the per-config limit
    notes: tuple[str, ...] = field(default_factory=tuple)


def parse_answer(
    text: str | None, *, finish_reason: str | None = None, limit: int | None = None
) -> ParsedAnswer:
    """Parse an LLM answer into proposals (at most ``limit``; the rest are counted as dropped)."""
    text = (text or "").strip()
    body = _unfence(text)
    objects, unclosed = _task_objects(body)
    truncated = finish_reason == "length" or unclosed
    tasks = _listed_tasks(body) or [_to_task(raw, obj) for raw, obj in objects]
    dropped = 0
    if limit is not None and len(tasks) > limit:
        dropped = len(tasks) - limit
        tasks = tasks[:limit]
    return ParsedAnswer(tasks=tuple(tasks), truncated=truncated, dropped=dropped)


def _listed_tasks(text: str) -> list[Task] | None:
    """The items of a well-formed list of proposals (bare, or in a ``{"tasks": [...]}``
    wrapper) when some item is not a task object, e.g. a sentence where an object belongs:
    each such item is kept as an unreadable proposal (curate rejects it ``unparseable``)
    instead of vanishing. None when every item is a task (the object scan keeps their text) or
    none is (an answer without a task: the generation records that)."""
    value = _decode(text)
    if isinstance(value, dict):
        inner = [v for k, v in value.items() if _norm_key(k) == "tasks"]
        value = inner[0] if inner else None
    if not isinstance(value, list):
        return None
    readable = sum(1 for item in value if _is_task(item))
    if readable in (0, len(value)):
        return None
    tasks = []
    for item in value:
        if _is_task(item):
            tasks.append(_to_task(json.dumps(item, ensure_ascii=False), item))
        else:
            raw = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            tasks.append(Task(instruction=None, input_fields=None, output_field=None,
                              raw=raw.strip()))  # fmt: skip
    return tasks


def _unfence(text: str) -> str:
    """The contents of fenced code blocks (an unclosed fence runs to the end), else the text."""
    if "```" not in text:
        return text
    blocks = [m.group(1) for m in _FENCE.finditer(text) if "{" in m.group(1)]
    return "\n".join(blocks) if blocks else text


def _task_objects(text: str) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """Task dicts in ``text``, each with its source text, and whether an object was left open.

    Every top-level ``{...}`` is decoded on its own; one that is not a task (a wrapper such as
    ``{"tasks": [...]}``, or text too broken to decode) is searched inside, so each task keeps
    the exact text the model wrote for it and a cut-off answer keeps its complete tasks.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    unclosed = False
    for start, end in _brace_spans(text):
        if end is None:  # cut short: keep whatever complete objects it holds
            inner, _ = _task_objects(text[start + 1 :])
            out.extend(inner)
            unclosed = True
            continue
        span = text[start:end]
        value = _decode(span)
        if _is_task(value):
            out.append((span, value))
            continue
        inner, inner_unclosed = _task_objects(span[1:-1])
        out.extend(inner)
        unclosed = unclosed or inner_unclosed
    return out, unclosed


def _brace_spans(text: str) -> list[tuple[int, int | None]]:
    """Top-level ``{...}`` spans, quote-aware; the end is None for a span never closed."""
    spans: list[tuple[int, int | None]] = []
    depth, start, quote, escaped = 0, 0, "", False
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote or char == "\n":  # a newline ends a broken string too
                quote = ""
        elif char in "\"'" and depth > 0:
            # An apostrophe between two letters is a word ("passage's"), not a quote.
            if char == "'" and 0 < i < len(text) - 1 and text[i - 1].isalnum():
                continue
            quote = char
        elif char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
    if depth > 0:
        spans.append((start, None))
    return spans


def _decode(text: str) -> Any:
    """JSON, else a Python literal, else repaired JSON (only for complete-looking text)."""
    text = text.strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    closing = "]" if text[0] == "[" else "}"
    if not text.endswith(closing):
        return None  # repairing a cut-off text would invent its missing end
    try:
        repaired = json_repair.loads(text)
    except Exception:  # json_repair raises assorted errors on hostile input
        return None
    return repaired if isinstance(repaired, list | dict) and repaired else None


def _norm_key(key: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _is_task(value: object) -> bool:
    return isinstance(value, dict) and any(_norm_key(k) in _KEY_ALIASES for k in value)


def _to_task(raw: str, obj: dict[str, Any]) -> Task:
    """Read the three parts; a part of the wrong shape is None so that curate rejects it."""
    parts: dict[str, Any] = {}
    for key, value in obj.items():
        name = _KEY_ALIASES.get(_norm_key(key))
        if name and name not in parts:
            parts[name] = value
    instruction = parts.get("instruction")
    instruction = instruction.strip() if isinstance(instruction, str) else None
    inputs, output = parts.get("input_fields"), parts.get("output_field")
    outputs = _output_names(output)
    return Task(
        raw=raw.strip(),
        instruction=instruction or None,
        input_fields=_field_list(inputs),
        output_field=outputs[0] if outputs else None,
        problem=_problem(inputs, output),
        extra_output_fields=outputs[1:],
    )


def _problem(inputs: Any, output: Any) -> str | None:
    """The reason code for field parts of a wrong shape (see the module docstring)."""
    for part in (inputs, output):
        if part is None or isinstance(part, str):
            continue
        if not isinstance(part, list | tuple) or not all(isinstance(v, str) for v in part):
            return Reason.UNPARSEABLE.value
    if isinstance(output, list | tuple) and len(_names(output)) > 1:
        return Reason.MULTIPLE_OUTPUT_FIELDS.value
    return None


def _names(values: list[Any] | tuple[Any, ...]) -> tuple[str, ...]:
    """The distinct non-blank names of a list of strings, stripped, in order."""
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))


def _field_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip()) or None
    return None


def _output_names(value: Any) -> tuple[str, ...]:
    """The distinct output field names written (a name, or a list of names), in order; none
    for a part of another shape."""
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return _names(value)
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    return ()


def answer_schema(max_tasks: int) -> dict[str, Any]:
    """The structured-output response format: an object wrapping the list of tasks."""
    task = {
        "type": "object",
        "properties": {
            "instruction": {"type": "string"},
            "input_fields": {"type": "array", "items": {"type": "string"}},
            "output_field": {"type": "string"},
        },
        "required": list(TASK_KEYS),
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "tasks",
            "description": f"Up to {max_tasks} tasks for the dataset.",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"tasks": {"type": "array", "items": task}},
                "required": ["tasks"],
                "additionalProperties": False,
            },
        },
    }
