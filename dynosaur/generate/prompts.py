"""The two task-generation prompts (description-aware and -unaware), from named demonstrations.

A prompt is two chat messages: a system message that states the job and the exact answer format,
and a user message with the demonstrations (dataset blocks followed by their tasks) and the target
block, which ends at ``### Tasks`` for the model to continue. Every block, demonstration or target,
goes through :func:`config_block`, so truncation is the same everywhere: each metadata text cut to
1,000 characters, two example rows, long values cut.

The prompt version is a hash of everything but the target (templates, answer format,
demonstrations): it changes exactly when a change could change the answers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from dynosaur.generate.blocks import DatasetBlock, render_block
from dynosaur.generate.demonstrations import Demonstration, load_demonstrations
from dynosaur.model import ConfigMetadata

MAX_TEXT_CHARS = 1_000  # each metadata text (the card summary), as in the original
EXAMPLE_ROWS = 2
MAX_VALUE_CHARS = 300  # one string value inside an example row
MAX_LIST_ITEMS = 10  # items kept of a list value inside an example row
ELLIPSIS = "…"


class PromptKind(StrEnum):
    """Which prompt: with the card's description, or from field names and examples only."""

    DESCRIPTION_AWARE = "description_aware"
    DESCRIPTION_UNAWARE = "description_unaware"


def prompt_kinds_for(metadata: ConfigMetadata, mode: str = "auto") -> list[PromptKind]:
    """The prompts a config gets: aware when its card has a summary, else unaware; ``both`` adds
    the unaware prompt to configs that have a summary."""
    if not metadata.has_description:
        return [PromptKind.DESCRIPTION_UNAWARE]
    if mode == "both":
        return [PromptKind.DESCRIPTION_AWARE, PromptKind.DESCRIPTION_UNAWARE]
    return [PromptKind.DESCRIPTION_AWARE]


_ROLE = "You turn datasets into instruction-following tasks."

_TASK_DEFINITION = (
    "Propose up to {n} tasks that a model could learn from the rows of this dataset. "
    "A task has:\n"
    '- "instruction": what to do, written so that it can be followed given only the values of '
    "the input fields;\n"
    '- "input_fields": the fields whose values are given to the model (one or more);\n'
    '- "output_field": the one field whose value is the correct answer.\n\n'
    'Rules: use field names exactly as they appear after "fields:"; the output field is never '
    "one of the input fields; every task asks for something different; do not propose more "
    "than {n} tasks."
)

_SEES = {
    PromptKind.DESCRIPTION_AWARE: (
        "You are shown a dataset: its name, a description, its field names and two example "
        "rows. Use the description to understand what the fields mean."
    ),
    PromptKind.DESCRIPTION_UNAWARE: (
        "You are shown a dataset: its name, its field names and two example rows. Infer what "
        "the fields mean from their names and values."
    ),
}

_FORMAT_LIST = (
    "Answer with a JSON list and nothing else (no prose, no code fence), exactly in this form:\n"
    '[{"instruction": "...", "input_fields": ["...", "..."], "output_field": "..."}]\n'
    "output_field is one field name (a string); input_fields is a list of field names."
)
_FORMAT_OBJECT = (
    "Answer with a JSON object and nothing else, exactly in this form:\n"
    '{"tasks": [{"instruction": "...", "input_fields": ["...", "..."], "output_field": "..."}]}\n'
    "output_field is one field name (a string); input_fields is a list of field names."
)

_USER = "Examples:\n\n{demonstrations}\n\nNow the dataset to propose tasks for:\n\n{target}"


def system_message(kind: PromptKind, tasks_per_config: int, structured: bool) -> str:
    """The system message: the job, the rules, and the answer format."""
    task_definition = _TASK_DEFINITION.format(n=tasks_per_config)
    answer_format = _FORMAT_OBJECT if structured else _FORMAT_LIST
    return f"{_ROLE}\n\n{_SEES[kind]}\n\n{task_definition}\n\n{answer_format}"


def cut_text(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    """``text`` with runs of whitespace folded, cut at ``limit`` characters (at a word end)."""
    if text is None:
        return None
    folded = " ".join(text.split())
    if len(folded) <= limit:
        return folded or None
    cut = folded[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + ELLIPSIS


def shorten_value(value: Any) -> Any:
    """A row value cut for display: long strings end in an ellipsis, long lists keep their head."""
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + ELLIPSIS
    if isinstance(value, list):
        return [shorten_value(item) for item in value[:MAX_LIST_ITEMS]]
    if isinstance(value, dict):
        return {key: shorten_value(item) for key, item in value.items()}
    return value


def example_rows(rows: Sequence[Mapping[str, Any]], n: int = EXAMPLE_ROWS) -> list[dict[str, Any]]:
    """The first ``n`` distinct rows, values shortened (the same rule for every dataset)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        key = json.dumps(row, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        out.append({name: shorten_value(value) for name, value in row.items()})
        if len(out) == n:
            break
    return out


def config_block(metadata: ConfigMetadata, kind: PromptKind) -> DatasetBlock:
    """How one config is shown in a prompt of ``kind``."""
    description = cut_text(metadata.summary) if kind is PromptKind.DESCRIPTION_AWARE else None
    return DatasetBlock(
        name=metadata.dataset_id,
        config=metadata.config_name or None,
        fields=[f.name for f in metadata.fields],
        examples=example_rows(metadata.sample_rows),
        description=description,
    )


@dataclass(frozen=True)
class Prompt:
    """The messages of one generation request, its kind and its prompt version."""

    kind: PromptKind
    messages: tuple[dict[str, str], ...]
    version: str


class PromptBook:
    """The two prompts' fixed parts (templates and rendered demonstrations), built once per run."""

    def __init__(
        self,
        demonstrations: Mapping[PromptKind, Sequence[Demonstration]],
        *,
        tasks_per_config: int = 3,
        structured: bool = False,
    ) -> None:
        self.tasks_per_config = tasks_per_config
        self.structured = structured
        self._system: dict[PromptKind, str] = {}
        self._demos: dict[PromptKind, str] = {}
        self.versions: dict[PromptKind, str] = {}
        for kind in PromptKind:
            demos = demonstrations.get(kind) or ()
            if not demos:
                raise ValueError(f"no demonstrations for the {kind} prompt")
            self._system[kind] = system_message(kind, tasks_per_config, structured)
            self._demos[kind] = "\n\n".join(
                render_block(config_block(d.metadata, kind), list(d.tasks)) for d in demos
            )
            frame = json.dumps([self._system[kind], _USER, self._demos[kind]], ensure_ascii=False)
            self.versions[kind] = f"{kind}:" + hashlib.sha256(frame.encode()).hexdigest()[:16]

    @classmethod
    def load(
        cls,
        *,
        tasks_per_config: int = 3,
        structured: bool = False,
        demonstrations_file: Path | None = None,
        snapshot_dir: Path | None = None,
    ) -> PromptBook:
        """The book for the packaged demonstrations (or the given files)."""
        demos = load_demonstrations(demonstrations_file, snapshot_dir)
        return cls(demos, tasks_per_config=tasks_per_config, structured=structured)

    def prompt(self, metadata: ConfigMetadata, kind: PromptKind) -> Prompt:
        """The request messages for one config and prompt kind."""
        target = render_block(config_block(metadata, kind))
        user = _USER.format(demonstrations=self._demos[kind], target=target)
        messages = (
            {"role": "system", "content": self._system[kind]},
            {"role": "user", "content": user},
        )
        return Prompt(kind=kind, messages=messages, version=self.versions[kind])
