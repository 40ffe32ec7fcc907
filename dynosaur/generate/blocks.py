"""How a dataset is shown inside a task-generation prompt, and how to read it back.

Every demonstration and the target config are rendered as one *dataset block*::

    ### Dataset
    name: squad
    config: plain_text
    description: A reading-comprehension set of questions on Wikipedia articles ...
    fields: ["id", "title", "context", "question", "answers"]
    example 1: {"id": "1", "title": "...", ...}
    example 2: {...}
    ### Tasks
    [{"instruction": "...", "input_fields": ["context", "question"], "output_field": "answers"}]

The target block ends right after ``### Tasks``: the model writes the list. The format is plain
enough for any LLM and strict enough that :func:`parse_last_block` can recover the target's name,
config, fields and examples (the LLM emulator relies on it to answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DATASET_MARKER = "### Dataset"
TASKS_MARKER = "### Tasks"


@dataclass(frozen=True)
class DatasetBlock:
    """The parts of a dataset block."""

    name: str
    config: str | None
    fields: list[str]
    examples: list[dict[str, Any]] = field(default_factory=list)
    description: str | None = None


def _one_line(text: str) -> str:
    # Markers inside data must not open a block of their own.
    return " ".join(text.split()).replace("###", "# # #")


def _json(value: Any) -> str:
    # Inside JSON strings "#" can be written as an escape that decodes back to the same text.
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("###", "\\u0023\\u0023\\u0023")


def render_block(block: DatasetBlock, tasks: list[dict[str, Any]] | None = None) -> str:
    """Render a block; with ``tasks`` (a demonstration) the answer follows ``### Tasks``."""
    lines = [DATASET_MARKER, f"name: {_one_line(block.name)}"]
    if block.config:
        lines.append(f"config: {_one_line(block.config)}")
    if block.description:
        lines.append(f"description: {_one_line(block.description)}")
    lines.append(f"fields: {_json(block.fields)}")
    for i, row in enumerate(block.examples, start=1):
        lines.append(f"example {i}: {_json(row)}")
    lines.append(TASKS_MARKER)
    if tasks is not None:
        lines.append(_json(tasks))
    return "\n".join(lines)


def parse_last_block(prompt: str) -> DatasetBlock | None:
    """The last dataset block in ``prompt`` (the target), or None if there is none."""
    start = prompt.rfind(DATASET_MARKER)
    if start < 0:
        return None
    body = prompt[start + len(DATASET_MARKER) :]
    end = body.find(TASKS_MARKER)
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
