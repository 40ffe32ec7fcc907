"""Curation benchmarks, each measured side by side in one run on a throwaway database.

1. Instance load rate: curate's loader (COPY text lines streamed as they are made) against a raw
   COPY of the very same bytes already in memory; also construction + load together.
2. Near-duplicate check of a 10K-task batch (exact fingerprints + LSH band probes + verification)
   against stores of 100K and 1M valid tasks: it should barely grow.
3. Export memory: peak resident memory of an export subprocess for 100K and 1M instances.
4. Exact-duplicate lookup (``--only exact``): a 10K-task batch checked the way curate checks it,
   chunk by chunk (50 configs x 3 tasks per transaction), fingerprints and keys computed inside
   the clock, against two stores of 100K and 1M valid tasks, timed alternately (small, large,
   large, small, small, large: both orders), medians of three; the compact-key lookup curate uses
   beside the old lookup by hex text as a control.

    DYNOSAUR_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/curate.py

The URL names a server (its maintenance database); a database is created and dropped.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dynosaur.curate import dedup
from dynosaur.curate.dedup import NearDuplicateIndex
from dynosaur.curate.instances import build_instances
from dynosaur.curate.step import CONFIGS_PER_CHUNK
from dynosaur.model import FieldInfo
from dynosaur.store import upgrade
from dynosaur.store.copy import copy_lines, copy_rows
from dynosaur.store.engine import sqlalchemy_url
from dynosaur.store.instances import INSTANCE_COLUMNS, TaskInstances, instance_lines
from dynosaur.store.tasks import stored_band_keys, stored_fingerprints

_VOCABULARY = (
    "given the a an of to and question answer passage sentence review label text premise "
    "hypothesis summary title article classify generate write predict decide whether which "
    "context options choose correct topic sentiment translate english french dialogue next "
    "response reason explain short long best following provided input output category entity"
)
WORDS = tuple(_VOCABULARY.split())


def fresh_database(server_url: str) -> tuple[Engine, Engine, str]:
    """(admin engine, engine of a new migrated database, its name)."""
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
    except BaseException:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        raise
    return admin, engine, url.render_as_string(hide_password=False)


def scaffold(engine: Engine, n_configs: int) -> tuple[list[int], list[int], int]:
    """Datasets, one config and one generation each, and a published batch: (configs,
    generations, batch id)."""
    with engine.begin() as conn:
        batch = conn.execute(
            sa.text(
                "INSERT INTO batch (run_key, status, version, published_at) "
                "VALUES ('bench', 'published', 1, now()) RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO hub_dataset (dataset_id, sha, discovered_via, hub_url, licenses) "
                "SELECT 'bench/ds' || g, 's', 'created', 'https://hub/bench/ds' || g, "
                "ARRAY['mit'] FROM generate_series(1, :n) g"
            ),
            {"n": n_configs},
        )
        conn.execute(
            sa.text(
                "INSERT INTO dataset_config (hub_dataset_id, config_name, status, batch_id) "
                "SELECT id, 'default', 'curated', :b FROM hub_dataset ORDER BY id"
            ),
            {"b": batch},
        )
        conn.execute(
            sa.text(
                "INSERT INTO generation (config_id, prompt_kind, request_hash, status) "
                "SELECT id, 'description_aware', 'h' || id, 'pending' FROM dataset_config "
                "ORDER BY id"
            )
        )
        configs = list(conn.execute(sa.text("SELECT id FROM dataset_config ORDER BY id")).scalars())
        gens = list(conn.execute(sa.text("SELECT id FROM generation ORDER BY config_id")).scalars())
    return configs, gens, batch


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


# --- 1. instance load rate ----------------------------------------------------------------


def bench_load(engine: Engine, n_tasks: int, rows_per_task: int) -> dict[str, float]:
    rng = random.Random(1)
    configs, gens, batch = scaffold(engine, n_tasks)
    fields = {"text": FieldInfo("text", "string"), "summary": FieldInfo("summary", "string")}
    with engine.begin() as conn:
        task_ids = [
            conn.execute(
                sa.text(
                    "INSERT INTO task (config_id, generation_id, position, instruction, "
                    "input_fields, output_field, status, batch_id) VALUES (:c, :g, 0, 'Do.', "
                    "ARRAY['text'], 'summary', 'valid', :b) RETURNING id"
                ),
                {"c": c, "g": g, "b": batch},
            ).scalar_one()
            for c, g in zip(configs, gens, strict=True)
        ]
    samples = [
        [{"text": sentence(rng, 60), "summary": sentence(rng, 10)} for _ in range(rows_per_task)]
        for _ in range(n_tasks)
    ]

    def construct() -> list[TaskInstances]:
        built = []
        for task_id, rows in zip(task_ids, samples, strict=True):
            made = build_instances("Summarise the text.", ["text"], "summary", fields, rows)
            built.append(
                TaskInstances(
                    task_id,
                    made.instruction,
                    "mit",
                    "permissive",
                    "https://hub/x",
                    "bench/ds",
                    made.instances,
                )
            )
        return built

    built = construct()
    # The raw baseline: exactly the bytes the loader sends, made before the clock starts.
    payload = "".join(instance_lines(batch, built)).encode("utf-8")
    n = sum(len(t.rows) for t in built)
    sql = f"COPY instance ({', '.join(INSTANCE_COLUMNS)}) FROM STDIN"

    def timed(load: Callable[[Connection], object]) -> float:
        with engine.connect() as conn:
            start = time.perf_counter()
            load(conn)
            elapsed = time.perf_counter() - start
            conn.rollback()  # the table is empty again for the next measurement
        return elapsed

    def raw_copy(conn: Connection) -> None:
        with conn.connection.dbapi_connection.cursor() as cursor:
            cursor.copy_expert(sql, io.BytesIO(payload), size=1 << 16)

    def loader(conn: Connection) -> None:
        copy_lines(conn, "instance", INSTANCE_COLUMNS, instance_lines(batch, built))

    def construct_and_load(conn: Connection) -> None:
        copy_lines(conn, "instance", INSTANCE_COLUMNS, instance_lines(batch, construct()))

    times: dict[str, list[float]] = {"raw": [], "loader": [], "both": []}
    for _ in range(3):  # interleaved, best of three each: same table, same indexes, same rows
        times["raw"].append(timed(raw_copy))
        times["loader"].append(timed(loader))
        times["both"].append(timed(construct_and_load))
    best = {k: min(v) for k, v in times.items()}
    return {
        "instances": n,
        "raw_copy_rows_per_s": n / best["raw"],
        "loader_rows_per_s": n / best["loader"],
        "construct_and_load_rows_per_s": n / best["both"],
        "loader_ratio": best["raw"] / best["loader"],
        "construct_and_load_ratio": best["raw"] / best["both"],
    }


# --- 2. near-duplicate check --------------------------------------------------------------


def _array(values: Sequence[str]) -> str:
    return "{" + ",".join('"' + v + '"' for v in values) + "}"


def grow_store(
    engine: Engine,
    configs: list[int],
    gens: list[int],
    batch: int,
    start: int,
    stop: int,
    real: dict[int, tuple[str, str, str]],
) -> None:
    """Add valid tasks number start..stop-1 (1,000 per config) with their LSH rows.

    Tasks in ``real`` get their true fingerprint and band keys (the batch re-proposes rewordings
    of them); the others random ones, which index and probe exactly like real hashes.
    """
    rng = random.Random(start)
    per_config = 1000

    def task_rows() -> Iterator[tuple[Any, ...]]:
        for k in range(start, stop):
            config, gen = configs[k // per_config], gens[k // per_config]
            if k in real:
                instruction, _, fp = real[k]
            else:
                instruction, fp = sentence(rng, 12), uuid.UUID(int=rng.getrandbits(128)).hex
            yield (
                config,
                gen,
                k % per_config,
                instruction,
                _array(["text"]),
                "label",
                "valid",
                fp,
                batch,
            )

    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no FK checks
        conn.exec_driver_sql("DROP INDEX IF EXISTS task_lsh_key_idx")
        first = conn.execute(sa.text("SELECT coalesce(max(id), 0) + 1 FROM task")).scalar_one()
        copy_rows(
            conn,
            "task",
            (
                "config_id",
                "generation_id",
                "position",
                "instruction",
                "input_fields",
                "output_field",
                "status",
                "fingerprint",
                "batch_id",
            ),
            task_rows(),
        )

        def lsh_rows() -> Iterator[tuple[int, int, int]]:
            for offset, k in enumerate(range(start, stop)):
                keys = (
                    json.loads(real[k][1])
                    if k in real
                    else [rng.getrandbits(64) - (1 << 63) for _ in range(dedup.BANDS)]
                )
                for band, key in enumerate(keys):
                    yield (first + offset, band, key)

        copy_rows(conn, "task_lsh", ("task_id", "band", "band_key"), lsh_rows())
        conn.exec_driver_sql(
            "CREATE INDEX task_lsh_key_idx ON task_lsh (band_key) INCLUDE (task_id)"
        )
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE task")
        conn.exec_driver_sql("VACUUM ANALYZE task_lsh")


def check_batch(
    engine: Engine, batch: list[tuple[str, list[int], frozenset[str]]]
) -> dict[str, float]:
    """Time the store-wide checks of a batch: exact fingerprints, LSH probes, verification."""
    with engine.connect() as conn:
        start = time.perf_counter()
        stored = stored_fingerprints(conn, [fp for fp, _, _ in batch])
        exact_s = time.perf_counter() - start
        candidates = stored_band_keys(conn, [k for _, keys, _ in batch for k in keys])
        probe_s = time.perf_counter() - start - exact_s
    index = NearDuplicateIndex(candidates)
    exact = sum(fp in stored for fp, _, _ in batch)
    near = sum(index.find(keys, sh) is not None for fp, keys, sh in batch if fp not in stored)
    return {
        "check_s": time.perf_counter() - start,
        "exact_query_s": exact_s,
        "lsh_query_s": probe_s,
        "exact": exact,
        "near": near,
    }


def bench_near(engine: Engine, batch_size: int, stores: Sequence[int]) -> dict[str, Any]:
    rng = random.Random(7)
    n_configs = max(stores) // 1000
    configs, gens, batch_id = scaffold(engine, n_configs)
    # 1% of the batch rewords a stored task, 1% repeats one exactly; the rest is new.
    real: dict[int, tuple[str, str, str]] = {}
    batch_tasks: list[tuple[str, list[int], frozenset[str]]] = []
    start = time.perf_counter()
    for i in range(batch_size):
        target = rng.randrange(min(stores))
        while target in real:  # one planted task per stored task
            target = rng.randrange(min(stores))
        config_name = "default"
        dataset = f"bench/ds{target // 1000 + 1}"
        if i % 100 == 0 or i % 100 == 1:
            base = sentence(rng, 14)
            fp = dedup.fingerprint(dataset, config_name, base, ["text"], "label")
            keys = dedup.lsh_keys(dataset, config_name, base, ["text"], "label")
            real[target] = (base, json.dumps(keys), fp)
            text = base if i % 100 == 1 else base + " please"
        else:
            text = sentence(rng, 12)
        scope = dedup.scope_key(dataset, config_name, ["text"], "label")
        sh = dedup.shingles(text)
        batch_tasks.append(
            (
                dedup.fingerprint(dataset, config_name, text, ["text"], "label"),
                dedup.band_keys(scope, dedup.minhash(sh)),
                sh,
            )
        )
    keys_seconds = time.perf_counter() - start
    out: dict[str, Any] = {"batch": batch_size, "batch_keys_s": keys_seconds}
    loaded = 0
    for size in sorted(stores):
        grow_store(engine, configs, gens, batch_id, loaded, size, real)
        loaded = size
        runs = sorted(
            (check_batch(engine, batch_tasks) for _ in range(3)), key=lambda r: r["check_s"]
        )
        out[f"store_{size}"] = runs[1]  # the median of three
    return out


# --- 4. exact-duplicate lookup ------------------------------------------------------------

TASKS_PER_CONFIG = 3


def _batch_tasks(rng: random.Random, size: int, n_planted: int) -> list[tuple[str, str]]:
    """(dataset id, instruction) of a batch; the first ``n_planted`` repeat stored tasks."""
    tasks = [
        (f"bench/ds{i + 1}", f"planted task {i} " + sentence(rng, 8)) for i in range(n_planted)
    ]
    tasks += [(f"bench/new{i}", sentence(rng, 12)) for i in range(size - n_planted)]
    rng.shuffle(tasks)
    return tasks


def exact_store(
    server: str, size: int, planted: list[tuple[str, str]]
) -> tuple[Engine, Engine, str]:
    """A database holding ``size`` valid tasks, the ``planted`` ones among them with their true
    fingerprints (the others random SHA-256-shaped ones, which index exactly like real ones)."""
    admin, engine, url = fresh_database(server)
    configs, gens, batch = scaffold(engine, max(1, size // 1000))
    rng = random.Random(size)
    fingerprints = [dedup.fingerprint(d, "default", i, ["text"], "label") for d, i in planted]

    def rows() -> Iterator[tuple[Any, ...]]:
        for k in range(size):
            c = k // 1000
            fp = fingerprints[k] if k < len(fingerprints) else f"{rng.getrandbits(256):064x}"
            yield (
                configs[c],
                gens[c],
                k % 1000,
                f"task {k}",
                _array(["text"]),
                "label",
                "valid",
                fp,
                batch,
            )

    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no FK checks
        copy_rows(
            conn,
            "task",
            (
                "config_id",
                "generation_id",
                "position",
                "instruction",
                "input_fields",
                "output_field",
                "status",
                "fingerprint",
                "batch_id",
            ),
            rows(),
        )
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE task")
    return admin, engine, url


def _text_lookup(conn: Connection, fingerprints: Sequence[str]) -> dict[str, int]:
    """The lookup before 0090, by hex text in the text index (the control)."""
    rows = conn.execute(
        sa.text(
            "SELECT fingerprint, id FROM task WHERE status = 'valid' AND fingerprint = ANY(:f)"
        ),
        {"f": sorted(set(fingerprints))},
    ).all()
    return {fp: i for fp, i in rows}


def time_exact(
    engine: Engine,
    batch: list[tuple[str, str]],
    lookup: Callable[[Connection, Sequence[str]], dict[str, int]],
) -> tuple[float, int]:
    """Seconds to check the batch chunk by chunk (keys computed inside), and duplicates found."""
    chunk = CONFIGS_PER_CHUNK * TASKS_PER_CONFIG
    found = 0
    # One connection, one transaction per chunk: curate's pooled engine (the bench engine has no
    # pool, and a new connection per chunk would hide the lookup behind connection set-up).
    with engine.connect() as conn:
        start = time.perf_counter()
        for first in range(0, len(batch), chunk):
            with conn.begin():
                fps = [
                    dedup.fingerprint(d, "default", i, ["text"], "label")
                    for d, i in batch[first : first + chunk]
                ]
                found += len(lookup(conn, fps))
    return time.perf_counter() - start, found


def bench_exact(server: str, batch_size: int, stores: Sequence[int]) -> dict[str, Any]:
    rng = random.Random(11)
    n_planted = batch_size // 100
    batch = _batch_tasks(rng, batch_size, n_planted)
    planted = sorted((d, i) for d, i in batch if i.startswith("planted task"))
    planted.sort(key=lambda t: int(t[0].rsplit("ds", 1)[1]))
    small, large = sorted(stores)[:1] + sorted(stores)[-1:]
    built = {size: exact_store(server, size, planted) for size in (small, large)}
    order = [small, large, large, small, small, large]
    times: dict[str, dict[int, list[float]]] = {"key": {}, "text": {}}
    found: set[int] = set()
    try:
        for size in order:
            for name, lookup in (("key", stored_fingerprints), ("text", _text_lookup)):
                seconds, n = time_exact(built[size][1], batch, lookup)
                times[name].setdefault(size, []).append(seconds)
                found.add(n)
    finally:
        for admin, engine, url in built.values():
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(
                    f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)'
                )
            admin.dispose()
    out: dict[str, Any] = {
        "batch": batch_size,
        "planted": n_planted,
        "found": sorted(found),
        "order": order,
        "runs": times,
    }
    for name in ("key", "text"):
        med = {size: sorted(runs)[1] for size, runs in times[name].items()}
        out[name] = {"median_s": med, "growth": med[large] / med[small]}
    return out


# --- 3. export memory -------------------------------------------------------------------------


def populate_instances(engine: Engine, sizes: Sequence[int]) -> None:
    """Published versions 1..len(sizes), version k holding sizes[k-1] instances in total."""
    rng = random.Random(3)
    total = max(sizes)
    n_tasks = total // 100
    configs, gens, batch1 = scaffold(engine, n_tasks // 1000 + 1)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE batch SET version = NULL, status = 'building', published_at = NULL"
        )
        batch_ids = [batch1] + [
            conn.execute(
                sa.text("INSERT INTO batch (run_key) VALUES (:k) RETURNING id"), {"k": f"b{i}"}
            ).scalar_one()
            for i in range(1, len(sizes))
        ]
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")

        def tasks() -> Iterator[tuple[Any, ...]]:
            for t in range(n_tasks):
                yield (
                    configs[t // 1000],
                    gens[t // 1000],
                    t % 1000,
                    "Summarise the text.",
                    _array(["text"]),
                    "summary",
                    "valid",
                    uuid.uuid4().hex,
                    batch_ids[0],
                )

        copy_rows(
            conn,
            "task",
            (
                "config_id",
                "generation_id",
                "position",
                "instruction",
                "input_fields",
                "output_field",
                "status",
                "fingerprint",
                "batch_id",
            ),
            tasks(),
        )
        first = conn.execute(sa.text("SELECT min(id) FROM task")).scalar_one()
        bounds = list(sizes)

        def instances() -> Iterator[tuple[Any, ...]]:
            texts = [sentence(rng, 60) for _ in range(1000)]
            for k in range(total):
                batch = batch_ids[next(i for i, b in enumerate(bounds) if k < b)]
                yield (
                    first + k // 100,
                    batch,
                    k % 100,
                    "Summarise the text.",
                    texts[k % 1000],
                    texts[(k * 7) % 1000][:80],
                    "mit",
                    "https://hub/bench",
                    "bench/ds",
                )

        copy_rows(conn, "instance", INSTANCE_COLUMNS, instances())
        for version, batch in enumerate(batch_ids, start=1):
            conn.execute(
                sa.text(
                    "UPDATE batch SET status = 'published', version = :v, published_at = now() "
                    "WHERE id = :b"
                ),
                {"v": version, "b": batch},
            )


def export_child(url: str, fmt: str, version: int, out: str) -> None:
    """Run one export and print its peak resident memory (this process only)."""
    from dynosaur.export import export
    from dynosaur.settings import Settings

    engine = sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool)
    start = time.perf_counter()
    result = export(Settings(database_url=url), engine, fmt=fmt, out=Path(out), version=version)
    seconds = time.perf_counter() - start
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    print(
        json.dumps(
            {"rows": result.figures["instances"], "peak_mb": peak_kb / 1024, "seconds": seconds}
        )
    )


def bench_export(url: str, formats: Sequence[str], sizes: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dynosaur-bench-") as folder:
        for fmt in formats:
            for version, size in enumerate(sizes, start=1):
                target = Path(folder) / f"{fmt}-{version}"
                done = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--export-child",
                        url,
                        fmt,
                        str(version),
                        str(target),
                    ],
                    check=False,
                    capture_output=True,
                    text=True,
                )
                if done.returncode:
                    raise RuntimeError(f"export {fmt} v{version} failed:\n{done.stderr}")
                out[f"{fmt}_{size}"] = json.loads(done.stdout.strip().splitlines()[-1])
                shutil.rmtree(target, ignore_errors=True)
                target.unlink(missing_ok=True) if target.is_file() else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--load-tasks", type=int, default=2000)
    parser.add_argument("--rows-per-task", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--stores", default="100000,1000000")
    parser.add_argument("--export-sizes", default="100000,1000000")
    parser.add_argument("--export-formats", default="jsonl,parquet")
    parser.add_argument("--only", choices=["load", "near", "export", "exact"], action="append")
    parser.add_argument("--export-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        url, fmt, version, target = args.export_child
        export_child(url, fmt, int(version), target)
        return
    server = os.environ.get("DYNOSAUR_BENCH_DATABASE_URL") or os.environ.get(
        "DYNOSAUR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    only = set(args.only or ["load", "near", "export", "exact"])
    results: dict[str, Any] = {}
    if "exact" in only:
        stores = [int(s) for s in args.stores.split(",")]
        results["exact"] = r = bench_exact(server, args.batch, stores)
        small, large = min(stores), max(stores)
        for name, label in (("key", "compact key (curate)"), ("text", "hex text (control)")):
            med = r[name]["median_s"]
            print(
                f"exact-duplicate lookup, {label}: {r['batch']:,}-task batch in chunks of "
                f"{CONFIGS_PER_CHUNK * TASKS_PER_CONFIG}: store {small:,} {med[small]:.3f}s, "
                f"store {large:,} {med[large]:.3f}s, growth x{r[name]['growth']:.2f} "
                f"(medians of 3, order {r['order']}; duplicates found {r['found']} of "
                f"{r['planted']})",
                flush=True,
            )
    for part in ("load", "near", "export"):  # "exact" makes its own two databases
        if part not in only:
            continue
        admin, engine, url = fresh_database(server)
        try:
            if part == "load":
                results["load"] = r = bench_load(engine, args.load_tasks, args.rows_per_task)
                print(
                    f"instance load: {r['instances']:,} instances; raw COPY "
                    f"{r['raw_copy_rows_per_s']:,.0f}/s, loader {r['loader_rows_per_s']:,.0f}/s "
                    f"(ratio {r['loader_ratio']:.2f}), construction + loader "
                    f"{r['construct_and_load_rows_per_s']:,.0f}/s "
                    f"(ratio {r['construct_and_load_ratio']:.2f})",
                    flush=True,
                )
            elif part == "near":
                stores = [int(s) for s in args.stores.split(",")]
                results["near"] = r = bench_near(engine, args.batch, stores)
                line = [
                    f"near-duplicate check of a {r['batch']:,}-task batch "
                    f"(keys computed in {r['batch_keys_s']:.2f}s, store-independent):"
                ]
                for size in stores:
                    s = r[f"store_{size}"]
                    line.append(
                        f"store {size:,}: {s['check_s']:.3f}s (fingerprint query "
                        f"{s['exact_query_s']:.3f}s, LSH probes {s['lsh_query_s']:.3f}s; "
                        f"{s['exact']} exact, {s['near']} near)"
                    )
                first, last = r[f"store_{stores[0]}"], r[f"store_{stores[-1]}"]
                line.append(
                    f"growth x{last['check_s'] / first['check_s']:.2f} for a "
                    f"x{stores[-1] / stores[0]:.0f} store"
                )
                print(" ".join(line), flush=True)
            else:
                sizes = [int(s) for s in args.export_sizes.split(",")]
                populate_instances(engine, sizes)
                formats = args.export_formats.split(",")
                results["export"] = r = bench_export(url, formats, sizes)
                for fmt in formats:
                    runs = [r[f"{fmt}_{s}"] for s in sizes]
                    parts = [
                        f"{x['rows']:,} rows: peak {x['peak_mb']:.0f} MB in {x['seconds']:.1f}s"
                        for x in runs
                    ]
                    print(f"export {fmt}: " + "; ".join(parts), flush=True)
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(
                    f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[-1]}" WITH (FORCE)'
                )
            admin.dispose()
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
