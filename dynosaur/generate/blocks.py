"""How a dataset is shown inside a task-generation prompt, and how to read it back.

Every demonstration and the target config are rendered as one *dataset block*, fenced by
``<dataset>`` tags so that the model reads card text and row values as data, never as
instructions (the system message says so)::

    <dataset>
    name: squad
    config: plain_text
    description: A reading-comprehension set of questions on Wikipedia articles ...
    fields: ["id", "title", "context", "question", "answers"]
    example 1: {"id": "1", "title": "...", ...}
    </dataset>
    tasks: [{"instruction": "...", "input_fields": ["context", "question"], "output_field": ...}]

The target block ends right after ``tasks:``: the model writes the list. The format is plain
enough for any LLM and strict enough that :func:`parse_last_block` can recover the target's name,
config, fields and examples (the LLM emulator relies on it to answer). Data can never close the
fence or open a block of its own: a ``<dataset>`` or ``</dataset>`` tag inside a text is written
with a look-alike bracket, inside JSON with the ``\\u003c`` escape (which decodes back to the same
value).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

OPEN = "<dataset>"
CLOSE = "</dataset>"
TASKS_MARKER = "tasks:"

_TAG = re.compile(r"<(/?\s*dataset)", re.IGNORECASE)


@dataclass(frozen=True)
class DatasetBlock:
    """The parts of a dataset block."""

    name: str
    config: str | None
    fields: list[str]
    examples: list[dict[str, Any]] = field(default_factory=list)
    description: str | None = None


def one_line(text: str) -> str:
    """``text`` on one line, whitespace folded, with no tag that could open or close a block."""
    return _TAG.sub("\u2039\\1", " ".join(text.split()))


def as_json(value: Any) -> str:
    """``value`` as JSON on one line, with no tag that could open or close a block."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return _TAG.sub("\\\\u003c\\1", text)


def render_block(block: DatasetBlock, tasks: list[dict[str, Any]] | None = None) -> str:
    """Render a block; with ``tasks`` (a demonstration) the answer follows ``tasks:``."""
    lines = [OPEN, f"name: {one_line(block.name)}"]
    if block.config:
        lines.append(f"config: {one_line(block.config)}")
    if block.description:
        lines.append(f"description: {one_line(block.description)}")
    lines.append(f"fields: {as_json(block.fields)}")
    for i, row in enumerate(block.examples, start=1):
        lines.append(f"example {i}: {as_json(row)}")
    lines.append(CLOSE)
    lines.append(TASKS_MARKER if tasks is None else f"{TASKS_MARKER} {as_json(tasks)}")
    return "\n".join(lines)


def parse_last_block(prompt: str) -> DatasetBlock | None:
    """The last dataset block in ``prompt`` (the target), or None if there is none."""
    start = prompt.rfind(OPEN)
    if start < 0:
        return None
    body = prompt[start + len(OPEN) :]
    end = body.find(CLOSE)
    if end >= 0:
        body = body[:end]
    values: dict[str, str] = {}
    examples: list[dict[str, Any]] = []
    for raw in body.split("\n"):  # not splitlines(): JSON keeps U+0085, U+2028 raw
        key, sep, value = raw.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key.startswith("example "):
            try:
                row = json.loads(value)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                examples.append(row)
        elif key in ("name", "config", "description", "fields"):
            values[key] = value
    if "name" not in values:
        return None
    try:
        fields = json.loads(values.get("fields", "[]"))
    except json.JSONDecodeError:
        fields = []
    return DatasetBlock(
        name=values["name"],
        config=values.get("config") or None,
        fields=[str(f) for f in fields] if isinstance(fields, list) else [],
        examples=examples,
        description=values.get("description"),
    )
