"""What the LLM is shown: prompt tokens of our two prompts beside the original Dynosaur's format.

One run, side by side, on the same real configs: every dataset of the original's reference tasks
(``../shared/reference/dynosaur-tasks.jsonl``) is grown from the shared Hub snapshot through the
whole pipeline (Hub emulator, LLM emulator replaying the reference tasks, curate), with the
prompt kinds chosen as in production (aware when the card has a summary, else unaware). Then:

1. **Per request, both kinds on every config that reached generation**: our two prompts as
   :class:`~dynosaur.generate.prompts.PromptBook` builds them, beside the original's prompt for
   the same config and kind, rebuilt from ``../shared/docs/mission.md``: a short system message,
   then for each demonstration and the target: dataset name, config, the card summary (aware
   prompt only) and the tags, the data fields, two example rows as JSON in the stored key order,
   each metadata text (summary, each row) cut to 1,000 characters, then the tasks
   (``output_field`` a one-item list, as the original wrote); the same demonstration datasets
   and tasks as ours, so only the format differs.
2. **Per valid task and per valid instance, per kind**: the prompts actually sent in the run (read
   from the ledger), over the tasks and instances curate kept from their answers. The emulator
   answers from the reference whatever the format, so the original's figures use the same
   counts (its prompt for the same requests).

Tokens are counted with ``cl100k_base`` (gpt-3.5-turbo's encoding, the original's model) from
the ``bpe-openai`` package, plus OpenAI's chat framing (3 per message, 3 to prime the reply).
(``dynosaur.generate.cost`` counts gpt-3.5-turbo with ``o200k_base``: the package does not map
that model name.)

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/prompt_tokens.py [--shared ../shared]

The URL names a server (its maintenance database); a database is created and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bpe_openai
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.generate.cost import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE
from dynosaur.generate.demonstrations import load_demonstrations
from dynosaur.generate.prompts import PromptBook, PromptKind
from dynosaur.model import ConfigMetadata
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import Settings
from dynosaur.store import upgrade
from dynosaur.store.datasets import load_config_metadata
from dynosaur.store.engine import sqlalchemy_url

ENCODING = "cl100k_base"
LARGEST_PROMPT_CAP = 2_048  # the largest prompt we send, in cl100k tokens
_ENCODER = bpe_openai.get_encoding(ENCODING)


def tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Prompt tokens of a chat request, framing included."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE + len(_ENCODER.encode_ordinary(str(message["content"])))
    return total


# --- the original's prompt, rebuilt from the mission ----------------------------------------

_ORIGINAL_SYSTEM = (
    "You are given the metadata of a dataset: its name, description, data fields and two "
    "examples. Propose up to three tasks that can be built from this dataset. Each task has an "
    "instruction, the input fields and one output field; the output field must not be an input "
    "field, and every field must be one of the data fields. Answer in JSON."
)


def _cut(text: str, limit: int = 1_000) -> str:
    return text if len(text) <= limit else text[:limit]


def _distinct_rows(rows: Sequence[Mapping[str, Any]], n: int = 2) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        key = json.dumps(row, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(row)
        if len(out) == n:
            break
    return out


def original_block(
    meta: ConfigMetadata, kind: PromptKind, tasks: Sequence[Mapping[str, Any]] | None = None
) -> str:
    """One dataset as the original showed it (tasks after it for a demonstration)."""
    lines = [f"Dataset name: {meta.dataset_id}"]
    if meta.config_name:
        lines.append(f"Configuration: {meta.config_name}")
    if kind is PromptKind.DESCRIPTION_AWARE and meta.summary:
        lines.append(f"Description: {_cut(' '.join(meta.summary.split()))}")
    tags = [*meta.task_categories, *meta.task_ids]
    if tags:
        lines.append(f"Tags: {', '.join(tags)}")
    lines.append(f"Data fields: {json.dumps([f.name for f in meta.fields], ensure_ascii=False)}")
    for i, row in enumerate(_distinct_rows(meta.sample_rows), start=1):
        lines.append(f"Example {i}: {_cut(json.dumps(row, ensure_ascii=False, default=str))}")
    if tasks is None:
        lines.append("Tasks:")
    else:
        written = [{**t, "output_field": [t["output_field"]]} for t in tasks]
        lines.append(f"Tasks: {json.dumps(written, ensure_ascii=False)}")
    return "\n".join(lines)


class OriginalPrompts:
    """The original's two prompts over our demonstration datasets and tasks."""

    def __init__(self) -> None:
        demos = load_demonstrations()
        self.demos = {
            kind: "\n\n".join(original_block(d.metadata, kind, d.tasks) for d in demos[kind])
            for kind in PromptKind
        }

    def messages(self, meta: ConfigMetadata, kind: PromptKind) -> list[dict[str, str]]:
        user = f"{self.demos[kind]}\n\n{original_block(meta, kind)}"
        return [
            {"role": "system", "content": _ORIGINAL_SYSTEM},
            {"role": "user", "content": user},
        ]


# --- the run ------------------------------------------------------------------------------


@contextmanager
def fresh_database(server_url: str) -> Iterator[Engine]:
    """A new migrated database on the server, dropped afterwards."""
    admin = sa.create_engine(
        sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    name = f"dynosaur_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sqlalchemy_url(server_url).set(database=name)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


_REQUESTS = sa.text(
    """
    SELECT g.id, g.config_id, g.prompt_kind, l.messages,
           (SELECT count(*) FROM task t WHERE t.generation_id = g.id AND t.status = 'valid')
               AS valid_tasks,
           (SELECT count(*) FROM instance i JOIN task t ON t.id = i.task_id
             WHERE t.generation_id = g.id AND t.status = 'valid') AS valid_instances
    FROM generation g JOIN llm_call l ON l.id = g.llm_call_id
    WHERE l.status = 'succeeded'
    """
)


def measure(
    engine: Engine, settings: Settings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(both kinds per config: our tokens and the original's; one row per request sent: kind,
    our tokens, the original's, the valid tasks and instances it yielded)."""
    original = OriginalPrompts()
    book = PromptBook.load(
        tasks_per_config=settings.tasks_per_config, structured=settings.llm_structured_output
    )
    with engine.connect() as conn:
        rows = conn.execute(_REQUESTS).all()
    metadata = {r.config_id: load_config_metadata(engine, r.config_id) for r in rows}
    per_config = [
        {
            "kind": kind,
            "ours": tokens(book.prompt(meta, kind).messages),
            "original": tokens(original.messages(meta, kind)),
            "config": f"{meta.dataset_id}/{meta.config_name}",
        }
        for meta in metadata.values()
        for kind in PromptKind
    ]
    sent = []
    for r in rows:
        kind = PromptKind(r.prompt_kind)
        meta = metadata[r.config_id]
        sent.append(
            {
                "kind": kind,
                "ours": tokens(r.messages),
                "original": tokens(original.messages(meta, kind)),
                "valid_tasks": r.valid_tasks,
                "valid_instances": r.valid_instances,
                "config": f"{meta.dataset_id}/{meta.config_name}",
            }
        )
    return per_config, sent


def per_request_table(rows: list[dict[str, Any]]) -> str:
    """Table 1: tokens per request of both kinds on the same configs."""
    lines = [
        "| prompt | configs | format | median / request | mean / request | largest |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for kind in PromptKind:
        sample = [r for r in rows if r["kind"] is kind]
        for fmt in ("ours", "original"):
            counts = [r[fmt] for r in sample]
            lines.append(
                f"| {kind.value} | {len(sample)} | {fmt} | {statistics.median(counts):,.0f} "
                f"| {sum(counts) / len(counts):,.0f} | {max(counts):,} |"
            )
    return "\n".join(lines)


def yield_table(rows: list[dict[str, Any]]) -> str:
    """Table 2: tokens per valid task and per valid instance, per kind, over the run."""
    lines = [
        "| prompt | requests | valid tasks | valid instances | format | per request "
        "| per valid task | per valid instance |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for kind in PromptKind:
        sample = [r for r in rows if r["kind"] is kind]
        if not sample:
            continue
        tasks = sum(r["valid_tasks"] for r in sample)
        instances = sum(r["valid_instances"] for r in sample)
        for fmt in ("ours", "original"):
            total = sum(r[fmt] for r in sample)
            per_task = f"{total / tasks:,.0f}" if tasks else "-"
            per_instance = f"{total / instances:,.1f}" if instances else "-"
            lines.append(
                f"| {kind.value} | {len(sample)} | {tasks} | {instances} | {fmt} "
                f"| {total / len(sample):,.0f} | {per_task} | {per_instance} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parents[1]
    parser.add_argument("--shared", type=Path, default=here.parent / "shared")
    args = parser.parse_args(argv)
    server = os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
    if not server:
        print("set DYNOSAUR_BENCH_DATABASE_URL to a Postgres server URL", file=sys.stderr)
        return 2
    snapshot = args.shared / "hub-snapshot"
    reference = args.shared / "reference" / "dynosaur-tasks.jsonl"
    ids = sorted({json.loads(line)["dataset"] for line in reference.read_text().splitlines()})
    with (
        fresh_database(server) as engine,
        tempfile.TemporaryDirectory() as data_dir,
        HubEmulator(snapshot, now=datetime(2023, 1, 1, tzinfo=UTC)) as hub,
        LLMEmulator(reference=reference) as llm,
    ):
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            data_dir=Path(data_dir),
            hub_endpoint=hub.url,
            viewer_url=hub.url,
            llm_base_url=llm.base_url,
            llm_api_key=SecretStr("sk-bench"),
            hub_token=None,
            budget_usd=None,
            prompt_kinds="auto",
            languages=[],  # every language: the reference was made before language filtering
        )
        grow(settings, engine, request_for(ids=ids))
        per_config, sent = measure(engine, settings)
    configs = len({r["config"] for r in per_config})
    print(f"{configs} configs of the shared snapshot reached generation; tokens: {ENCODING}")
    print("\nPer request, both prompt kinds on every config:\n")
    print(per_request_table(per_config))
    print("\nPer valid task and instance, prompts as sent in the run (kind chosen per config):\n")
    print(yield_table(sent))
    largest = max(per_config, key=lambda r: r["ours"])
    ours_median = statistics.median(r["ours"] for r in per_config)
    original_median = statistics.median(r["original"] for r in per_config)
    print(
        f"\nmedian per request, both kinds: ours {ours_median:,.0f}, original "
        f"{original_median:,.0f} (ratio {ours_median / original_median:.2f})"
    )
    print(
        f"largest prompt: ours {largest['ours']:,} tokens ({largest['config']}, "
        f"{largest['kind'].value}), cap {LARGEST_PROMPT_CAP:,}: "
        f"{'ok' if largest['ours'] <= LARGEST_PROMPT_CAP else 'OVER'}; original's largest "
        f"{max(r['original'] for r in per_config):,}"
    )
    ok = ours_median <= original_median and largest["ours"] <= LARGEST_PROMPT_CAP
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
