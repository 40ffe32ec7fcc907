"""File writers for exports: JSON lines, Parquet, and a `datasets` Dataset saved to disk.

Each takes rows batch by batch and writes them at once (memory is one batch), to a temporary
name that becomes the final one only when everything is written: a crashed export leaves no
half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dynosaur.store.exports import FIELDS

SCHEMA = pa.schema([(name, pa.string()) for name in FIELDS])
ROW_GROUP_ROWS = 50_000


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def write_jsonl(batches: Iterable[Sequence[Any]], path: Path) -> int:
    """One JSON object per line with the original's fields; returns the number of rows."""
    tmp, n = _temporary(path), 0
    with tmp.open("w", encoding="utf-8") as out:
        for batch in batches:
            out.writelines(
                json.dumps({k: getattr(row, k) for k in FIELDS}, ensure_ascii=False) + "\n"
                for row in batch
            )
            n += len(batch)
    os.replace(tmp, path)
    return n


def write_parquet(batches: Iterable[Sequence[Any]], path: Path) -> int:
    """A Parquet file (zstd) written one row group per batch; returns the number of rows."""
    tmp, n = _temporary(path), 0
    with pq.ParquetWriter(tmp, SCHEMA, compression="zstd") as writer:
        pending: list[Any] = []
        for batch in batches:
            pending.extend(batch)
            n += len(batch)
            if len(pending) >= ROW_GROUP_ROWS:
                writer.write_table(_table(pending))
                pending = []
        if pending or n == 0:
            writer.write_table(_table(pending))
    os.replace(tmp, path)
    return n


def _table(rows: Sequence[Any]) -> pa.Table:
    columns = [pa.array([getattr(r, k) for r in rows], type=pa.string()) for k in FIELDS]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def write_dataset(parquet: Path, out_dir: Path, card: str) -> None:
    """Save the rows of ``parquet`` as a `datasets` Dataset in ``out_dir`` with ``README.md``.

    ``Dataset.from_parquet`` streams the file into Arrow shards on disk (memory-mapped, not
    loaded), and ``save_to_disk`` copies them: memory stays flat whatever the size.
    """
    import datasets

    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="dynosaur-export-", dir=out_dir.parent) as cache:
        dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=cache, split="train")
        dataset.save_to_disk(str(tmp))
        del dataset
    (tmp / "README.md").write_text(card, encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
