"""Benchmark decontamination against the Hub emulator over the project's own snapshot: a listed
benchmark split is indexed once per revision; curate drops instances copied from its rows (or
keeping a 13-word span of one), naming the benchmark, and keeps unrelated ones; a listed
benchmark is never collected as a source; indexing a benchmark after publication retracts the
sources that match it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur import decontam
from dynosaur.cli.main import app
from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.model import FieldInfo
from dynosaur.pipeline import grow, request_for
from dynosaur.settings import DEFAULT_BENCHMARKS, Settings
from tests.conftest import SHARED_SNAPSHOT
from tests.curate.factory import StoreFactory, cli_environment, live_settings

BENCH = "dynosaur-fixtures/mathqa-like"
BENCH_TEST = f"{BENCH}:default:test"

COPIED = {  # row 2 of the benchmark's test split, verbatim
    "question": "a tank is filled by one pipe in 6 hours and by another in 3 hours . how long do "
    "both pipes take together ?",
    "answer": "together they fill 1 / 6 + 1 / 3 = 1 / 2 of the tank per hour , so they need 2 "
    "hours . answer : a",
}
PARAPHRASED_OUTPUT = {  # keeps "6 of the 36 outcomes give 7 : ( 1,6 ) ... ( 6,1 )" of row 1
    "question": "Two fair dice get rolled; what are the chances that they show seven in total?",
    "answer": "Count them: 6 of the 36 outcomes give 7 (1,6) (2,5) (3,4) (4,3) (5,2) (6,1), "
    "which makes it one chance in six.",
}
PARAPHRASED_INPUT = {  # keeps 16 words of row 2's problem
    "question": "Suppose a tank is filled by one pipe in 6 hours and by another in 3 hours; "
    "working at once, how quickly is it full?",
    "answer": "In two hours.",
}
NEAR_MISS = {  # shares only 12 words with row 3 ("a square field ... what is its area")
    "question": "a square field has a perimeter of 64 m . what is its diagonal length in metres ?",
    "answer": "the side is 16 m , so the diagonal is 16 times the square root of two metres .",
}
UNRELATED = [
    {
        "question": f"a train travels {d} km in 2 hours at a constant speed . what is its speed "
        "in km per hour ?",
        "answer": f"speed is distance over time , {d} / 2 = {d // 2} km per hour . answer : b",
    }
    for d in (100, 120, 140, 160)
]
FIELDS = [FieldInfo("question", "string"), FieldInfo("answer", "string")]


@pytest.fixture
def clean(store: Engine) -> Engine:
    with store.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE benchmark, retraction, source_check RESTART IDENTITY CASCADE"
        )
    return store


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator() as emulator:
        yield emulator


def at_hub(settings: Settings, hub: HubEmulator, *benchmarks: str) -> Settings:
    return settings.model_copy(
        update={"hub_endpoint": hub.url, "viewer_url": hub.url, "benchmarks": list(benchmarks)}
    )


def scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_normalised_13_grams() -> None:
    assert decontam.words("Hello, World!  It's\tfine_ok") == [
        "hello",
        "world",
        "it",
        "s",
        "fine",
        "ok",
    ]
    twelve = " ".join(f"w{i}" for i in range(12))
    assert decontam.ngram_hashes(twelve) == set()
    assert len(decontam.ngram_hashes(twelve + " w12 w13")) == 2
    # Case, punctuation and spacing do not change an n-gram.
    assert decontam.ngram_hashes(COPIED["question"]) == decontam.ngram_hashes(
        COPIED["question"].upper().replace(" . ", ".  ")
    )


def test_settings_list_and_source_names(settings: Settings) -> None:
    settings = settings.model_copy(update={"benchmarks": list(DEFAULT_BENCHMARKS)})
    specs = decontam.specs(settings)
    assert decontam.BenchmarkSpec("gsm8k", "main", "test") in specs
    assert len(specs) >= 10
    assert decontam.is_benchmark(settings, "gsm8k")
    assert decontam.is_benchmark(settings, "openai/gsm8k")  # the id the Hub moved it to
    assert decontam.is_benchmark(settings, "cais/mmlu")
    assert not decontam.is_benchmark(settings, "dynosaur-fixtures/anli-like")
    assert decontam.BenchmarkSpec.parse("org/x::validation") == decontam.BenchmarkSpec(
        "org/x", None, "validation"
    )


def test_contaminated_instances_are_rejected_naming_the_benchmark(
    settings: Settings, clean: Engine, hub: HubEmulator
) -> None:
    live = at_hub(settings, hub, BENCH_TEST)
    first = decontam.index(live, clean)
    assert list(first.indexed) == [BENCH_TEST]
    assert first.indexed[BENCH_TEST] > 0
    n_grams = scalar(clean, "SELECT count(*) FROM benchmark_ngram")
    # The same revision again: nothing fetched into the store, nothing added.
    second = decontam.index(live, clean)
    assert second.indexed == {} and second.unchanged == [BENCH_TEST]
    assert scalar(clean, "SELECT count(*) FROM benchmark_ngram") == n_grams
    assert scalar(clean, "SELECT count(*) FROM benchmark") == 1

    factory = StoreFactory(clean, live)
    rows = [COPIED, PARAPHRASED_OUTPUT, PARAPHRASED_INPUT, NEAR_MISS, *UNRELATED]
    mixed = factory.config(factory.dataset("org/math-mixed"), rows=rows, fields=FIELDS)
    mixed_task = factory.task(mixed, "Solve the word problem.", ["question"], "answer")
    copied = factory.config(factory.dataset("org/math-copied"), rows=[COPIED], fields=FIELDS)
    copied_task = factory.task(copied, "Solve the word problem.", ["question"], "answer")
    clean_cfg = factory.config(factory.dataset("org/math-clean"), rows=UNRELATED, fields=FIELDS)
    clean_task = factory.task(clean_cfg, "Solve the word problem.", ["question"], "answer")
    factory.curate("run-1")

    kept = {
        r.input for r in factory.rows("SELECT input FROM instance WHERE task_id = :t", t=mixed_task)
    }
    assert kept == {NEAR_MISS["question"], *(u["question"] for u in UNRELATED)}
    assert len(factory.rows("SELECT 1 FROM instance WHERE task_id = :t", t=clean_task)) == 4
    matches = factory.rows(
        "SELECT m.task_id, m.row_index, m.side, b.dataset_id || ':' || b.config_name || ':' "
        "|| b.split AS bench, m.reason FROM benchmark_match m JOIN benchmark b "
        "ON b.id = m.benchmark_id ORDER BY m.task_id, m.row_index"
    )
    assert [(m.task_id, m.row_index, m.side, m.bench) for m in matches] == [
        (mixed_task, 0, "input", BENCH_TEST),
        (mixed_task, 1, "output", BENCH_TEST),
        (mixed_task, 2, "input", BENCH_TEST),
        (copied_task, 0, "input", BENCH_TEST),
    ]
    by_reason = factory.rows("SELECT reason, count(*) AS n FROM benchmark_match GROUP BY reason")
    assert [(r.reason, r.n) for r in by_reason] == [("benchmark_overlap", 4)]
    tasks = {
        r.id: r
        for r in factory.rows("SELECT id, status, reason, message, notes FROM task ORDER BY id")
    }
    assert tasks[mixed_task].status == "valid"
    assert "benchmark_overlap" in tasks[mixed_task].notes
    assert tasks[copied_task].status == "rejected"
    assert tasks[copied_task].reason == "benchmark_overlap"
    assert BENCH_TEST in tasks[copied_task].message
    assert (
        tasks[clean_task].status == "valid" and "benchmark_overlap" not in tasks[clean_task].notes
    )


def test_no_benchmark_indexed_changes_nothing(settings: Settings, clean: Engine) -> None:
    factory = StoreFactory(clean, settings)
    cfg = factory.config(factory.dataset("org/math-copied"), rows=[COPIED], fields=FIELDS)
    task = factory.task(cfg, "Solve the word problem.", ["question"], "answer")
    factory.curate("run-1")
    assert len(factory.rows("SELECT 1 FROM instance WHERE task_id = :t", t=task)) == 1


def test_benchmark_sources_are_skipped_and_a_new_benchmark_retracts_matching_sources(
    settings: Settings, clean: Engine, hub: HubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LLMEmulator(seed=3) as llm:
        live = live_settings(settings, hub, llm, llm_backoff_s=0.01)
        live = live.model_copy(update={"benchmarks": ["dynosaur-fixtures/anli-like"]})
        hub.now = datetime.fromisoformat("2024-03-01T23:59:59+00:00")
        assert grow(live, clean, request_for(day="2024-03-01"))["version"] == 1
    skipped = scalar(
        clean,
        "SELECT string_agg(reason, ',') FROM hub_dataset WHERE dataset_id = :d",
        d="dynosaur-fixtures/anli-like",
    )
    assert skipped == "benchmark_source"
    published = scalar(clean, "SELECT count(*) FROM collection WHERE dataset_id = :d", d=BENCH)
    assert published > 0

    # Listing the benchmark's train split (the rows collect sampled) after publication:
    # the published collection is re-checked once and the source retracted from version 2.
    cli_environment(monkeypatch, live)
    monkeypatch.setenv("DYNOSAUR_HUB_ENDPOINT", hub.url)
    monkeypatch.setenv("DYNOSAUR_VIEWER_URL", hub.url)
    runner = CliRunner()
    result = runner.invoke(app, ["benchmarks", "index", f"{BENCH}:default:train"])
    assert result.exit_code == 0, result.output
    assert f"retracted {BENCH}" in result.output
    # Version 1 keeps what it published; version 2 on leaves the source out, and only it.
    assert (
        scalar(clean, "SELECT count(*) FROM collection_at(2) WHERE dataset_id = :d", d=BENCH) == 0
    )
    total = scalar(clean, "SELECT count(*) FROM collection_at(1)")
    assert scalar(clean, "SELECT count(*) FROM collection_at(2)") == total - published
    assert (
        scalar(clean, "SELECT count(*) FROM collection_at(1) WHERE dataset_id = :d", d=BENCH)
        == published
    )
    reason = scalar(
        clean, "SELECT reason || ' ' || from_version FROM retraction WHERE dataset_id = :d", d=BENCH
    )
    assert reason == "benchmark_overlap 2"
    others = scalar(clean, "SELECT count(*) FROM retraction WHERE dataset_id <> :d", d=BENCH)
    assert others == 0
    # Once: indexing again fetches nothing new and re-checks nothing.
    again = runner.invoke(app, ["benchmarks", "index", f"{BENCH}:default:train"])
    assert again.exit_code == 0 and "0 splits indexed, 1 unchanged" in again.output
    listed = runner.invoke(app, ["benchmarks", "list"])
    assert listed.exit_code == 0 and "mathqa-like" in listed.output


@pytest.mark.shared_snapshot
def test_a_shared_snapshot_benchmark(settings: Settings, clean: Engine) -> None:
    """GSM8K's test split from the shared snapshot: a copied problem is rejected."""
    import json

    with HubEmulator(SHARED_SNAPSHOT) as hub:
        live = at_hub(settings, hub, "gsm8k:main:test")
        assert list(decontam.index(live, clean).indexed) == ["gsm8k:main:test"]
    path = SHARED_SNAPSHOT / "datasets" / "gsm8k" / "rows" / "main" / "test.jsonl"
    row = json.loads(path.read_text().splitlines()[0])
    factory = StoreFactory(clean, live)
    rows = [{"question": row["question"], "answer": row["answer"]}, *UNRELATED]
    cfg = factory.config(factory.dataset("org/gsm-copy"), rows=rows, fields=FIELDS)
    task = factory.task(cfg, "Solve the word problem.", ["question"], "answer")
    factory.curate("run-1")
    kept = {r.input for r in factory.rows("SELECT input FROM instance WHERE task_id = :t", t=task)}
    assert kept == {u["question"] for u in UNRELATED}
    bench = scalar(
        clean,
        "SELECT b.dataset_id FROM benchmark_match m JOIN benchmark b ON b.id = m.benchmark_id",
    )
    assert bench == "gsm8k"
