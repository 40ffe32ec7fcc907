"""History bench: does a day's select + export cost the same on a store with a long history?

Builds two stores synthetically (COPY and INSERT ... SELECT, seconds each) holding the same
number of instances, with cached embeddings for all of them:

- "short": 1 published version and 1 stored selection;
- "long": 100 published versions and 100 stored selections (1,000 members each).

Each then receives the same new day (a batch of --daily instances), published once, and the
daily work is timed (median of --repeats): the export DAG's publish export (the version's delta in
JSONL + Parquet and the manifest of version N, built from version N-1's), a coreset selection of
the new version from cached embeddings, reading the stored selection back, and exporting it.
Every step is printed with its long/short ratio; the goal is a total within 1.5x.

    .venv/bin/python bench/history.py [--database-url postgresql://...] [--instances 20000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.export import export
from dynosaur.export.delta import publish_export
from dynosaur.select import get_selection, select_coreset
from dynosaur.select.embed import model_key
from dynosaur.settings import Settings
from dynosaur.store.batches import publish_batch
from dynosaur.store.engine import sqlalchemy_url
from dynosaur.store.migrations import upgrade
from dynosaur.store.selections import save_vectors

_VOCABULARY = (
    "given the a an of to and question answer passage sentence review label text premise "
    "hypothesis summary title article classify generate write predict decide whether which "
    "context options choose correct topic sentiment translate english french dialogue next"
)
WORDS = _VOCABULARY.split()
TASKS_PER_VERSION = 10
DIM = 384


def fresh_database(server_url: str) -> tuple[Engine, Engine, str]:
    """(admin engine, engine of a new migrated database, its name)."""
    admin = sa.create_engine(
        sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    name = f"dynosaur_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(sqlalchemy_url(server_url).set(database=name), poolclass=sa.NullPool)
    upgrade(engine)
    return admin, engine, name


def _text(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, words))


def add_batch(
    engine: Engine, day: int, instances: int, *, status: str, rng: np.random.Generator
) -> int:
    """One day's batch: a dataset, a config, TASKS_PER_VERSION valid tasks and ``instances``
    instances (~530 characters of text each), published (``status``) or building; its id."""
    with engine.begin() as conn:
        q = conn.execute
        batch = q(
            sa.text(
                "INSERT INTO batch (run_key, status, version, published_at, figures) VALUES "
                "(:k, :s, :v, CASE WHEN :s = 'published' THEN now() END, "
                "jsonb_build_object('instances', :n)) RETURNING id"
            ),
            {"k": f"day{day}", "s": status, "v": day if status == "published" else None,
             "n": instances},
        ).scalar_one()  # fmt: skip
        dataset = q(
            sa.text(
                "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, licenses, "
                "status, task_categories) VALUES (:d, 'sha', 'created', :u, '{mit}', "
                "'collected', '{text-classification}') RETURNING id"
            ),
            {"d": f"org/day{day}", "u": f"https://huggingface.co/datasets/org/day{day}"},
        ).scalar_one()
        config = q(
            sa.text(
                "INSERT INTO dataset_config (hub_dataset_id, config_name, status, batch_id) "
                "VALUES (:d, 'default', 'curated', :b) RETURNING id"
            ),
            {"d": dataset, "b": batch},
        ).scalar_one()
        call = q(
            sa.text(
                "INSERT INTO llm_call (request_hash, model, prompt_version, messages, response, "
                "status) VALUES (:h, 'bench', 'v1', '[]', '[]', 'succeeded') RETURNING id"
            ),
            {"h": f"call{day}"},
        ).scalar_one()
        generation = q(
            sa.text(
                "INSERT INTO generation (config_id, prompt_kind, request_hash, llm_call_id, "
                "status) VALUES (:c, 'description_aware', :h, :l, 'succeeded') RETURNING id"
            ),
            {"c": config, "h": f"call{day}", "l": call},
        ).scalar_one()
        tasks = q(
            sa.text(
                "INSERT INTO task (config_id, generation_id, position, instruction, "
                "input_fields, output_field, status, fingerprint, batch_id) "
                "SELECT :c, :g, p, 'Classify the text ' || p, '{text}', 'label', 'valid', "
                ":d || '/' || p, :b FROM generate_series(0, :n - 1) AS p RETURNING id"
            ),
            {"c": config, "g": generation, "d": f"day{day}", "b": batch, "n": TASKS_PER_VERSION},
        ).scalars().all()  # fmt: skip
        lines = io.StringIO()
        for row in range(instances):
            task = tasks[row % len(tasks)]
            text = _text(rng, 70)  # ~530 characters with the instruction and output
            lines.write(
                f"{task}\t{batch}\t{row}\tClassify the text.\t{text}\tpositive\tmit\tpermissive\t"
                f"https://huggingface.co/datasets/org/day{day}\torg/day{day}\n"
            )
        lines.seek(0)
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.copy_expert(
                "COPY instance (task_id, batch_id, row_index, instruction, input, output, "
                "license, license_class, website, source) FROM STDIN",
                lines,
            )
    return int(batch)


def add_selections(engine: Engine, count: int, members: int, version: int) -> None:
    """``count`` stored selections of ``members`` random instances each (ranked)."""
    with engine.begin() as conn:
        for k in range(count):
            selection = conn.execute(
                sa.text(
                    "INSERT INTO selection (name, method, version, seed, inputs_hash, pool_size, "
                    "instances_selected, instances) VALUES (:n, 'coreset', :v, :k, :h, "
                    "(SELECT count(*) FROM instance), :m, :m) RETURNING id"
                ),
                {"n": f"old-{k}", "v": version, "k": k, "h": f"h{k}", "m": members},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO selection_member (selection_id, instance_id, rank, score) "
                    "SELECT :s, id, row_number() OVER (ORDER BY random()), random() "
                    "FROM (SELECT id FROM instance ORDER BY random() LIMIT :m) x"
                ),
                {"s": selection, "m": members},
            )


def add_embeddings(engine: Engine, settings: Settings, seed: int) -> None:
    """A cached vector for every instance (unit, 384-d), so selecting loads, never embeds."""
    with engine.connect() as conn:
        ids = np.array(conn.execute(sa.text("SELECT id FROM instance ORDER BY id")).scalars().all())
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    save_vectors(engine, "instance", model_key(settings.embedding_model), ids, vectors)


def build(
    server: str, *, versions: int, selections: int, instances: int, daily: int, members: int
) -> tuple[Engine, str, int]:
    """A store with ``versions`` published versions holding ``instances`` instances in all,
    ``selections`` stored selections, and the new day's batch (building); (engine, name, batch)."""
    admin, engine, name = fresh_database(server)
    admin.dispose()
    rng = np.random.default_rng(0)
    per_version = instances // versions
    for day in range(1, versions + 1):
        add_batch(engine, day, per_version, status="published", rng=rng)
    new_batch = add_batch(engine, versions + 1, daily, status="building", rng=rng)
    add_selections(engine, selections, members, versions)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return engine, name, new_batch


def median_seconds(action: Callable[[int], object], repeats: int) -> float:
    """Median wall time of ``action(attempt)`` over ``repeats`` attempts, after one untimed
    warm-up (attempt -1: imports, caches)."""
    action(-1)
    times = []
    for attempt in range(repeats):
        started = time.perf_counter()
        action(attempt)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def daily(
    engine: Engine, settings: Settings, batch: int, repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Publish the new batch (timed once), then the day's work (medians); seconds per step."""
    started = time.perf_counter()
    version = publish_batch(engine, batch).version
    assert version is not None
    times = {"publish the new batch (once)": time.perf_counter() - started}
    # The export DAG has run for every earlier version: its files are in place.
    publish_export(settings, engine, version - 1, formats=["jsonl", "parquet"])
    add_embeddings(engine, settings, seed=version)
    figures: dict[str, Any] = {}

    def publish_files(_: int) -> None:
        manifest = publish_export(settings, engine, version, formats=["jsonl", "parquet"])
        figures["manifest files"] = len(manifest["formats"]["jsonl"])
        figures["delta rows"] = manifest["formats"]["jsonl"][-1]["instances"]

    def select_new(attempt: int) -> None:
        result = select_coreset(
            engine, settings, version=version, name=f"daily-{attempt}", fraction=0.005
        )
        figures["selected"] = result.selection.instances_selected

    def read_back(attempt: int) -> None:
        for _ in range(10):
            assert get_selection(engine, f"daily-{attempt}") is not None

    def export_selection(attempt: int) -> None:
        out = settings.export_root / "selections"
        export(settings, engine, fmt="jsonl", out=out, selection=f"daily-{attempt}")

    times["publish export: delta (jsonl + parquet) + manifest"] = median_seconds(
        publish_files, repeats
    )
    times["select: 0.5% coreset of version N (cached vectors)"] = median_seconds(
        select_new, repeats
    )
    times["read the stored selection back (x10)"] = median_seconds(read_back, repeats)
    times["export the selection (jsonl)"] = median_seconds(export_selection, repeats)
    return times, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DYNOSAUR_BENCH_DATABASE_URL")
        or os.environ.get("DYNOSAUR_TEST_DATABASE_URL"),
        help="a Postgres server URL (DYNOSAUR_BENCH_DATABASE_URL); two databases are made",
    )
    parser.add_argument("--instances", type=int, default=20_000, help="in each store")
    parser.add_argument("--daily", type=int, default=200, help="instances the new day adds")
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--selections", type=int, default=100)
    parser.add_argument("--members", type=int, default=1_000, help="per stored selection")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("set DYNOSAUR_BENCH_DATABASE_URL or pass --database-url")

    results: dict[str, tuple[dict[str, float], dict[str, Any]]] = {}
    admin = sa.create_engine(
        sqlalchemy_url(args.database_url), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    with tempfile.TemporaryDirectory(prefix="dynosaur-history-") as tmp:
        for label, versions, selections in (
            ("short", 1, 1),
            ("long", args.versions, args.selections),
        ):
            started = time.perf_counter()
            engine, name, batch = build(
                args.database_url,
                versions=versions,
                selections=selections,
                instances=args.instances,
                daily=args.daily,
                members=args.members,
            )
            built = time.perf_counter() - started
            settings = Settings(database_url=args.database_url, export_dir=Path(tmp) / label)
            try:
                results[label] = daily(engine, settings, batch, args.repeats)
            finally:
                engine.dispose()
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(
                f"{label} store: {versions} version(s) + the new one, {selections} stored "
                f"selection(s), {args.instances:,} + {args.daily} instances; built in "
                f"{built:.1f} s; {results[label][1]}"
            )
    admin.dispose()
    short, long = results["short"][0], results["long"][0]
    width = max(len(k) for k in short)
    print(f"\ndaily work, medians of {args.repeats} (seconds)")
    print(f"  {'step':<{width}}  {'short':>8}  {'long':>8}  long/short")
    total_short = total_long = 0.0
    for step in short:
        ratio = long[step] / short[step]
        print(f"  {step:<{width}}  {short[step]:8.3f}  {long[step]:8.3f}  {ratio:.2f}x")
        if "(once)" not in step:
            total_short, total_long = total_short + short[step], total_long + long[step]
    print(
        f"  {'daily select + export (sum of the medians)':<{width}}  {total_short:8.3f}  "
        f"{total_long:8.3f}  {total_long / total_short:.2f}x (goal: <= 1.5x)"
    )


if __name__ == "__main__":
    main()
