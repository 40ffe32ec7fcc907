"""The LLM emulator's answer policy for task-generation prompts: pure functions, no I/O but
reading the reference file.

- **replay**: the tasks the original Dynosaur recorded for the same dataset/config (the reference
  JSONL of ``../shared/reference``), without their label-space suffix (the pipeline adds it);
- **derive**: plausible tasks built deterministically from the fields and examples shown in the
  prompt, seeded by the block's content, with a share of them made invalid in one of four ways.

Invalid kinds (``INVALID_KINDS``): ``unknown_field`` (a field the data does not have),
``output_in_inputs`` (the output field is also an input), ``empty_output`` (output_field ""),
``unparseable`` (the task is a sentence, not an object).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynosaur.generate.blocks import DatasetBlock

INVALID_KINDS = ("unknown_field", "output_in_inputs", "empty_output", "unparseable")
DEFAULT_TASKS = 3

_LABEL_SUFFIX = re.compile(r"\s*Answers must be one of\b.*$", re.DOTALL)
# "up to 3 tasks", also with a few words between ("up to 3 different instruction-tuning tasks").
_UP_TO = re.compile(
    r"\bup to (\d+|one|two|three|four|five|six|seven|eight|nine|ten)(?:\s+[\w-]+){0,3}?\s+tasks?\b",
    re.IGNORECASE,
)
_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_ID_NAME = re.compile(r"(^|_)(id|idx|uid|guid|index)$|^id_|Id$", re.IGNORECASE)
_LABEL_NAME = re.compile(
    r"label|class|category|categories|sentiment|topic|intent|stance|verdict|polarity|rating|"
    r"score|emotion|correct|gold|relation|genre|type|domain|is_|has_",
    re.IGNORECASE,
)
_SHORT_TARGET = re.compile(r"title|headline|summary|highlights|abstract|question|target|tldr", re.I)
_UNKNOWN_NAMES = ("text", "passage", "sentence", "context", "document", "label", "question")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "classify": (
        "Read the {inputs} and decide which {out} applies.",
        "Given the {inputs}, predict the {out}.",
        "Determine the {out} of the following {inputs}.",
        "What is the {out}? Base your answer on the {inputs}.",
    ),
    "from_label": (
        "Write {a_out} that fits the given {inputs}.",
        "Compose {a_out} matching the {inputs} below.",
        "Produce {a_out} consistent with the {inputs}.",
    ),
    "condense": (
        "Write {a_out} for the {inputs}.",
        "Give a short {out} that captures the {inputs}.",
        "Read the {inputs} and provide its {out}.",
    ),
    "free": ("Write {a_out} like the ones in this dataset.",),
    "generic": (
        "Given the {inputs}, write the {out}.",
        "Use the {inputs} to produce the {out}.",
        "From the {inputs}, generate the corresponding {out}.",
    ),
}


@dataclass(frozen=True)
class EmulatedAnswer:
    """What the emulator answers a prompt with: the task items (dicts, or strings for
    unparseable ones), the policy that made them and the invalid kinds injected (in task order).
    Not a task: the pipeline's task is :class:`dynosaur.model.Task`."""

    tasks: list[Any]
    policy: str
    invalid: list[str] = field(default_factory=list)


def strip_label_suffix(instruction: str) -> str:
    """An instruction without its trailing ``Answers must be one of ...`` sentence."""
    return _LABEL_SUFFIX.sub("", instruction).strip()


def load_reference(path: Path) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    """Recorded tasks by (dataset, config), as task dicts with a string output_field."""
    by_key: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            raw = json.loads(line)
            output = raw.get("output_field")
            if isinstance(output, list):
                output = output[0] if output else ""
            by_key[(str(raw["dataset"]), raw.get("config") or None)].append(
                {
                    "instruction": strip_label_suffix(str(raw.get("instruction", ""))),
                    "input_fields": [str(f) for f in raw.get("input_fields") or []],
                    "output_field": str(output or ""),
                }
            )
    return dict(by_key)


def requested_tasks(text: str, default: int = DEFAULT_TASKS) -> int:
    """N from the last ``up to N tasks`` in the prompt, else the default."""
    matches = _UP_TO.findall(text)
    if not matches:
        return default
    word = matches[-1].lower()
    number = int(word) if word.isdigit() else _NUMBERS[word]
    return max(1, min(number, 20))


def replay(
    block: DatasetBlock,
    reference: dict[tuple[str, str | None], list[dict[str, Any]]],
    limit: int,
) -> list[dict[str, Any]] | None:
    """The recorded tasks for the block's dataset/config, or None when there are none."""
    tasks = reference.get((block.name, block.config))
    if tasks is None and block.config is not None:
        tasks = reference.get((block.name, None))
    if not tasks:
        return None
    return [dict(t) for t in tasks[:limit]]


def _words(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.split(r"[_\-\s.]+", spaced)).strip().lower() or name


def _a(name: str) -> str:
    """The field's words with an indefinite article (none for a plural)."""
    words = _words(name)
    if words.endswith("s") and not words.endswith("ss"):
        return words
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _join(names: list[str]) -> str:
    words = [_words(n) for n in names]
    if len(words) <= 1:
        return "".join(words) or "input"
    return ", ".join(words[:-1]) + " and " + words[-1]


def _profile(block: DatasetBlock) -> dict[str, str]:
    """Kind of each field from the examples: id, list, dict, number, long, short."""
    kinds: dict[str, str] = {}
    for name in block.fields:
        values = [ex.get(name) for ex in block.examples if ex.get(name) is not None]
        if _ID_NAME.search(name):
            kinds[name] = "id"
        elif any(isinstance(v, list) for v in values):
            kinds[name] = "list"
        elif any(isinstance(v, dict) for v in values):
            kinds[name] = "dict"
        elif values and all(isinstance(v, int | float | bool) for v in values):
            kinds[name] = "number"
        elif values and max(len(str(v).split()) for v in values) >= 8:
            kinds[name] = "long"
        else:
            kinds[name] = "short"
    return kinds


def _max_words(block: DatasetBlock, name: str) -> int:
    return max((len(str(ex.get(name, "")).split()) for ex in block.examples), default=0)


def _candidates(block: DatasetBlock) -> list[tuple[str, list[str], str]]:
    """(template family, input fields, output field) in order of preference."""
    kinds = _profile(block)
    usable = [f for f in block.fields if kinds[f] != "id"]
    scalar = [f for f in usable if kinds[f] in ("number", "short", "long")]
    longs = [f for f in usable if kinds[f] == "long"]
    labels = [
        f
        for f in scalar
        if kinds[f] == "number"
        or (
            kinds[f] == "short"
            and (
                _LABEL_NAME.search(f) or (_max_words(block, f) <= 3 and not _SHORT_TARGET.search(f))
            )
        )
    ]
    shorts = [f for f in scalar if kinds[f] == "short" and _SHORT_TARGET.search(f)]
    out: list[tuple[str, list[str], str]] = []

    def add(family: str, inputs: list[str], output: str) -> None:
        key = (sorted(inputs), output)
        if output and all((sorted(i), o) != key for _, i, o in out):
            out.append((family, inputs, output))

    for label in labels:
        inputs = [f for f in usable if f != label and kinds[f] != "number"][:3]
        if inputs:
            add("classify", inputs, label)
    for target in shorts:
        for source in longs:
            if source != target:
                add("condense", [source], target)
    for label in labels:
        for text in longs:
            add("from_label", [label], text)
    for output in sorted(scalar, key=lambda f: kinds[f] != "long"):
        inputs = [f for f in usable if f != output][:3]
        if inputs:
            add("generic", inputs, output)
    if not out and usable:  # a one-field dataset: nothing to condition on
        add("free", [], usable[0])
    return out


def _seed(block: DatasetBlock, seed: int) -> random.Random:
    content = json.dumps(
        [seed, block.name, block.config, block.fields, block.examples, block.description],
        sort_keys=True,
        default=str,
    )
    return random.Random(int(hashlib.sha256(content.encode()).hexdigest()[:16], 16))


def _invalidate(task: dict[str, Any], kind: str, fields: Iterable[str]) -> Any:
    known = set(fields)
    if kind == "unknown_field":
        unknown = next((n for n in _UNKNOWN_NAMES if n not in known), "field_x")
        if task["input_fields"]:
            task["input_fields"] = [unknown, *task["input_fields"][1:]]
        else:
            task["output_field"] = unknown
        return task
    if kind == "output_in_inputs":
        if task["output_field"] not in task["input_fields"]:
            task["input_fields"] = [*task["input_fields"], task["output_field"]]
        return task
    if kind == "empty_output":
        task["output_field"] = ""
        return task
    # unparseable: a sentence where an object belongs
    inputs = ", ".join(task["input_fields"]) or "nothing"
    return f"{task['instruction']} (inputs: {inputs}; output: {task['output_field']})"


def derive(block: DatasetBlock, limit: int, invalid_share: float, seed: int = 0) -> EmulatedAnswer:
    """Up to ``limit`` tasks made from the block's fields, the same for the same block."""
    rng = _seed(block, seed)
    candidates = _candidates(block)
    first, rest = candidates[:1], candidates[1:]
    rng.shuffle(rest)
    tasks: list[Any] = []
    invalid: list[str] = []
    for family, inputs, output in (first + rest)[:limit]:
        template = rng.choice(_TEMPLATES[family])
        task: dict[str, Any] = {
            "instruction": template.format(
                inputs=_join(inputs), out=_words(output), a_out=_a(output)
            ),
            "input_fields": list(inputs),
            "output_field": output,
        }
        if invalid_share > 0 and rng.random() < invalid_share:
            kind = rng.choice(INVALID_KINDS)
            invalid.append(kind)
            tasks.append(_invalidate(task, kind, block.fields))
        else:
            tasks.append(task)
    return EmulatedAnswer(tasks, "derive", invalid)
