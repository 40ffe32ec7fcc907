"""Benchmark decontamination: keep the evaluation sets people test on out of the collection.

The benchmarks are a setting (``DYNOSAUR_BENCHMARKS``: ``DATASET[:CONFIG[:SPLIT]]``, default the
common instruction-tuning ones). :func:`index` fetches each listed split's rows once per Hub
revision through the Dataset Viewer (``/splits``, then ``/rows`` pages) and stores the word
13-grams of every text value, normalised (lowercase, punctuation to spaces, whitespace
collapsed), as 64-bit hashes (:mod:`dynosaur.store.benchmarks`). A revision already indexed is
not fetched again.

Three checks use the index:

- collect skips a source dataset that is itself a listed benchmark (``benchmark_source``;
  :func:`is_benchmark`, which also knows the ids the Hub renamed them to);
- curate drops an instance whose input or output shares a 13-gram with a benchmark row
  (``benchmark_overlap``: :func:`screen`, one index lookup per chunk of configs); the dropped row
  and the benchmark it matched are kept in ``benchmark_match``; a task left without instances
  is rejected with that reason, a task that keeps some carries it as a note;
- :func:`recheck`: a benchmark indexed after instances were published re-checks the current
  collection once, and retracts each source dataset with a matching instance from the next
  version on (``dynosaur.store.retractions.record``, reason ``benchmark_overlap``). Retraction is
  per dataset because a source that carries benchmark rows verbatim is contaminated as a whole
  (its other rows come from the same copy), and because the collection, ``collection_at(N)``,
  exports and selections already honour dataset retractions.

Texts shorter than 13 words have no 13-gram: a benchmark row that short can not be matched
(the usual trade-off of n-gram decontamination, e.g. GPT-3's).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine

from dynosaur.errors import HubRequestError
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store import benchmarks as bench_store
from dynosaur.store import retractions

log = logging.getLogger(__name__)

N = 13
MAX_ROWS_PER_SPLIT = 50_000
PAGE = 100  # the viewer's largest /rows page
EVAL_SPLITS = ("test", "validation")

# Benchmarks the Hub moved from a canonical id to an organisation: either spelling is the same
# dataset for benchmark_source.
ALIASES: dict[str, str] = {
    "hendrycks_test": "cais/mmlu",
    "gsm8k": "openai/gsm8k",
    "hellaswag": "Rowan/hellaswag",
    "ai2_arc": "allenai/ai2_arc",
    "truthful_qa": "truthfulqa/truthful_qa",
    "mbpp": "google-research-datasets/mbpp",
    "winogrande": "allenai/winogrande",
    "piqa": "ybisk/piqa",
    "boolq": "google/boolq",
    "openai_humaneval": "openai/openai_humaneval",
}

_NON_WORD = re.compile(r"[^\w\s]+|_")


# --- n-grams --------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """``text`` normalised into words: lowercase, punctuation as spaces, whitespace collapsed."""
    return _NON_WORD.sub(" ", text.lower()).split()


def _hash(gram: str) -> int:
    return int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), signed=True)


def ngram_hashes(text: str, n: int = N) -> set[int]:
    """The 64-bit hashes of the word ``n``-grams of ``text`` (none when it has fewer words)."""
    tokens = words(text)
    return {_hash(" ".join(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


def row_texts(value: Any) -> Iterator[str]:
    """Every string in a row (lists and dicts walked): each one is n-grammed on its own."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from row_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from row_texts(item)


# --- the setting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSpec:
    """One entry of ``DYNOSAUR_BENCHMARKS``: a dataset, and optionally a config and a split."""

    dataset_id: str
    config: str | None = None
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> BenchmarkSpec:
        parts = [p.strip() for p in text.strip().split(":")]
        if not parts[0] or len(parts) > 3:
            raise ValueError(f"not DATASET[:CONFIG[:SPLIT]]: {text!r}")
        parts += [""] * (3 - len(parts))
        return cls(parts[0], parts[1] or None, parts[2] or None)

    def picks(self, config: str, split: str, splits_of_config: Sequence[str]) -> bool:
        """Whether ``config``/``split`` of the dataset is part of this benchmark."""
        if self.config is not None and config != self.config:
            return False
        if self.split is not None:
            return split == self.split
        wanted = [s for s in EVAL_SPLITS if s in splits_of_config]
        return split in wanted if wanted else split == splits_of_config[0]


def specs(settings: Settings) -> list[BenchmarkSpec]:
    """The benchmarks the settings list."""
    return [BenchmarkSpec.parse(item) for item in settings.benchmarks if item.strip()]


def _names(dataset_id: str) -> set[str]:
    names = {dataset_id.lower()}
    for old, new in ALIASES.items():
        if dataset_id.lower() in (old.lower(), new.lower()):
            names |= {old.lower(), new.lower()}
    return names


def is_benchmark(settings: Settings, dataset_id: str) -> bool:
    """Whether ``dataset_id`` (or the id the Hub moved it to or from) is a listed benchmark."""
    listed = {name for spec in specs(settings) for name in _names(spec.dataset_id)}
    return bool(_names(dataset_id) & listed)


# --- indexing -------------------------------------------------------------------------------


@dataclass
class IndexResult:
    """What one :func:`index` call did, per split ``dataset:config:split``."""

    indexed: dict[str, int] = field(default_factory=dict)  # new: n-grams stored
    unchanged: list[str] = field(default_factory=list)  # this revision was already indexed
    failed: dict[str, str] = field(default_factory=dict)  # dataset -> why (not found, ...)
    retracted: dict[str, str] = field(default_factory=dict)  # source -> benchmark it matched

    def to_json(self) -> dict[str, object]:
        return {
            "indexed": self.indexed,
            "unchanged": len(self.unchanged),
            "failed": self.failed,
            "retracted": self.retracted,
        }


def index(
    settings: Settings,
    engine: Engine,
    only: Sequence[BenchmarkSpec] | None = None,
    *,
    recheck_collection: bool = True,
) -> IndexResult:
    """Index the listed benchmarks (``only``: these instead) whose current revision is not
    indexed yet; then (``recheck_collection``) re-check the published collection against each
    new one and retract the sources that match."""
    result = asyncio.run(
        _index_all(settings, engine, only if only is not None else specs(settings))
    )
    if recheck_collection:
        result.retracted = recheck(engine)
    return result


async def _index_all(
    settings: Settings, engine: Engine, wanted: Sequence[BenchmarkSpec]
) -> IndexResult:
    from dynosaur.hub.client import HubClient

    result = IndexResult()
    async with HubClient(settings) as client:
        for spec in wanted:
            try:
                await _index_one(client, engine, spec, result)
            except HubRequestError as exc:
                result.failed[spec.dataset_id] = exc.reason
                # Absent from this Hub (e.g. the emulator's own snapshot): said once, quietly.
                level = logging.INFO if exc.reason == Reason.NOT_FOUND else logging.WARNING
                log.log(level, "benchmark %s not indexed: %s", spec.dataset_id, exc.reason)
    return result


async def _index_one(client: Any, engine: Engine, spec: BenchmarkSpec, result: IndexResult) -> None:
    info = await client.dataset_info(spec.dataset_id)
    answer = await client.viewer("splits", spec.dataset_id)
    by_config: dict[str, list[str]] = {}
    for item in answer.get("splits") or []:
        by_config.setdefault(str(item.get("config")), []).append(str(item.get("split")))
    for config, splits in by_config.items():
        for split in splits:
            if not spec.picks(config, split, splits):
                continue
            name = f"{spec.dataset_id}:{config}:{split}"
            if bench_store.find(engine, spec.dataset_id, config, split, info.sha) is not None:
                result.unchanged.append(name)
                continue
            n_rows, hashes = await _split_hashes(client, spec.dataset_id, config, split)
            _, created = bench_store.store_index(
                engine, spec.dataset_id, config, split, info.sha, n_rows, hashes
            )
            if created:
                result.indexed[name] = len(hashes)
            else:
                result.unchanged.append(name)


async def _split_hashes(
    client: Any, dataset_id: str, config: str, split: str
) -> tuple[int, set[int]]:
    hashes: set[int] = set()
    offset, total = 0, None
    while offset < MAX_ROWS_PER_SPLIT and (total is None or offset < total):
        page = await client.viewer(
            "rows", dataset_id, config=config, split=split, offset=offset, length=PAGE
        )
        rows = page.get("rows") or []
        total = int(page.get("num_rows_total") or 0)
        for item in rows:
            for text in row_texts(item.get("row")):
                hashes |= ngram_hashes(text)
        if not rows:
            break
        offset += len(rows)
    return min(offset, total or offset), hashes


# --- curate ---------------------------------------------------------------------------------


class _Candidate(Protocol):
    id: int


class _Built(Protocol):
    @property
    def instances(self) -> Sequence[Any]: ...


C = TypeVar("C", bound=_Candidate)
B = TypeVar("B", bound=_Built)


def screen(
    conn: Connection, batch_id: int, built: list[tuple[C, B]], decisions: dict[int, Any]
) -> list[tuple[C, B]]:
    """Drop the instances of ``built`` (valid tasks with their constructions) whose input or
    output shares a 13-gram with an indexed benchmark; record them in ``benchmark_match``. A
    task left with no instance is rejected (``benchmark_overlap``, naming the benchmark) and
    leaves the list; one that keeps some gets the reason as a note. In ``conn``'s transaction."""
    if not built or not bench_store.has_index(conn):
        return built
    grams: dict[tuple[int, int, str], set[int]] = {}
    for cand, construction in built:
        for inst in construction.instances:
            grams[(cand.id, inst.row_index, "input")] = ngram_hashes(inst.input)
            grams[(cand.id, inst.row_index, "output")] = ngram_hashes(inst.output)
    found = bench_store.matching(conn, sorted(set().union(*grams.values())))
    if not found:
        return built
    hit: dict[tuple[int, int], bench_store.Match] = {}
    for (task_id, row_index, side), hashes in grams.items():
        common = hashes & found.keys()
        if common and (task_id, row_index) not in hit:
            bench = min(found[h] for h in common)
            hit[(task_id, row_index)] = bench_store.Match(task_id, row_index, side, bench)
    bench_store.record_matches(conn, batch_id, list(hit.values()))
    names = bench_store.names(conn, (m.benchmark_id for m in hit.values()))
    kept: list[tuple[C, B]] = []
    for cand, construction in built:
        own = [
            hit[(cand.id, i.row_index)]
            for i in construction.instances
            if (cand.id, i.row_index) in hit
        ]
        if not own:
            kept.append((cand, construction))
            continue
        shown = ", ".join(sorted({names[m.benchmark_id] for m in own}))
        left = tuple(i for i in construction.instances if (cand.id, i.row_index) not in hit)
        decision = decisions[cand.id]
        if not left:
            decisions[cand.id] = type(decision)(
                "rejected",
                Reason.BENCHMARK_OVERLAP.value,
                f"every instance shares a 13-word span with a benchmark: {shown}"[:1000],
                fingerprint=getattr(decision, "fingerprint", None),
            )
            continue
        decision.notes = sorted({*decision.notes, Reason.BENCHMARK_OVERLAP.value})
        kept.append((cand, replace(construction, instances=left)))  # type: ignore[type-var]
    return kept


# --- the published collection ---------------------------------------------------------------


def recheck(engine: Engine, *, page: int = 5000) -> dict[str, str]:
    """Re-check the current collection once against every benchmark indexed since the last
    re-check; retract each source dataset with a matching instance from the next version on.
    Returns source dataset -> the benchmark it matched (for those retracted now)."""
    new = bench_store.unchecked(engine)
    if not new:
        return {}
    ids = {b.id for b in new}
    names = {b.id: b.name for b in new}
    matched: dict[str, tuple[int, str]] = {}
    after = 0
    while rows := bench_store.published_texts(engine, after, page):
        after = rows[-1][0]
        grams = {
            (instance_id, dataset_id): ngram_hashes(input_) | ngram_hashes(output)
            for instance_id, dataset_id, input_, output in rows
            if dataset_id not in matched
        }
        if not grams:
            continue
        with engine.connect() as conn:
            found = bench_store.matching(conn, sorted(set().union(*grams.values())), ids)
        for (instance_id, dataset_id), hashes in grams.items():
            common = hashes & found.keys()
            if common and dataset_id not in matched:
                matched[dataset_id] = (instance_id, names[min(found[h] for h in common)])
    retracted: dict[str, str] = {}
    for dataset_id, (instance_id, bench) in sorted(matched.items()):
        done = retractions.record(
            engine,
            dataset_id,
            Reason.BENCHMARK_OVERLAP,
            note=f"instance {instance_id} shares a 13-word span with {bench}",
        )
        if done is not None:
            log.warning(
                "retracted %s from version %s on: matches %s", dataset_id, done.from_version, bench
            )
            retracted[dataset_id] = bench
    bench_store.mark_checked(engine, sorted(ids))
    return retracted
