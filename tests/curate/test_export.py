"""Exports: JSONL, Parquet and a saved `datasets` Dataset with its card, from a version or a
selection, read back and compared with the collection in the store."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.export import FIELDS, export
from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory


@pytest.fixture
def two_versions(store: Engine, factory: StoreFactory) -> Engine:
    """Version 1: org/a (10 instances, mit); version 2 adds org/b (10, apache-2.0)."""
    for day, (name, license_) in enumerate((("org/a", "mit"), ("org/b", "apache-2.0"))):
        config = factory.sentiment_config(name, licenses=[license_])
        factory.task(config, f"Classify the {name} review.", ["text"], "label")
        factory.publish(f"day{day}")
    return store


# The exported fields as the collection view names them: `taskname` is the `source` column.
EXPORTED = "instruction, input, output, license, website, source AS taskname"


def collection_rows(store: Engine, version: int) -> list[dict[str, str]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {EXPORTED} FROM collection_at(:v) ORDER BY instance_id"),
            {"v": version},
        ).mappings()
        return [dict(r) for r in rows]


def test_jsonl_has_the_original_fields_and_exactly_version_n(
    settings: Settings, two_versions: Engine, tmp_path: Path
) -> None:
    result = export(settings, two_versions, fmt="jsonl", out=tmp_path, version=1, batch_rows=3)
    assert result.path == tmp_path / "dynosaur-v1.jsonl"
    lines = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert lines == collection_rows(two_versions, 1)
    assert len(lines) == 10 and list(lines[0]) == list(FIELDS)
    assert lines[0]["taskname"] == "org/a"  # the original's key for the instance's source
    assert result.figures == {
        "instances": 10,
        "tasks": 1,
        "datasets": 1,
        "licenses": {"mit": 10},
        "license_classes": {"permissive": 10},
        "retracted_sources": 0,
    }
    assert (tmp_path / "dynosaur-v1.README.md").exists()
    assert not list(tmp_path.glob(".*partial"))


def test_default_version_is_the_latest(
    settings: Settings, two_versions: Engine, tmp_path: Path
) -> None:
    result = export(settings, two_versions, fmt="parquet", out=tmp_path / "all.parquet")
    table = pq.read_table(result.path)
    assert result.version == 2 and table.num_rows == 20
    assert table.column_names == list(FIELDS)
    assert table.to_pylist() == collection_rows(two_versions, 2)


def test_hf_export_is_a_loadable_dataset_with_a_card(
    settings: Settings, two_versions: Engine, tmp_path: Path
) -> None:
    import datasets

    out = tmp_path / "hf"
    export(settings, two_versions, fmt="hf", out=out, version=2)
    loaded = datasets.load_from_disk(str(out))
    assert loaded.num_rows == 20 and loaded.column_names == list(FIELDS)
    assert loaded[0] == collection_rows(two_versions, 2)[0]
    card = (out / "README.md").read_text()
    assert "| 20 | 2 | 2 |" in card  # instances, tasks, source datasets
    assert "| mit | 10 | 50.0% |" in card and "| apache-2.0 | 10 | 50.0% |" in card
    assert "https://huggingface.co/datasets/org/b" in card
    export(settings, two_versions, fmt="hf", out=out, version=1)  # overwriting a saved dataset
    assert datasets.load_from_disk(str(out)).num_rows == 10


def test_selection_exports_its_members_in_rank_order(
    settings: Settings, two_versions: Engine, tmp_path: Path
) -> None:
    with two_versions.begin() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM instance ORDER BY id")).scalars())
        selection = conn.execute(
            sa.text(
                "INSERT INTO selection (name, method, version, seed, inputs_hash, pool_size) "
                "VALUES ('hard-3', 'coreset', 2, 0, 'h', 20) RETURNING id"
            )
        ).scalar_one()
        for rank, instance_id in enumerate([ids[5], ids[12], ids[0]], start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO selection_member (selection_id, instance_id, rank, score) "
                    "VALUES (:s, :i, :r, 0.5)"
                ),
                {"s": selection, "i": instance_id, "r": rank},
            )
    result = export(settings, two_versions, fmt="jsonl", out=tmp_path, selection="hard-3")
    lines = [json.loads(line) for line in result.path.read_text().splitlines()]
    everything = collection_rows(two_versions, 2)
    assert lines == [everything[5], everything[12], everything[0]]
    assert result.path.name == "dynosaur-hard-3.jsonl" and result.figures["instances"] == 3


def test_missing_versions_and_selections_are_clear_errors(
    settings: Settings, store: Engine, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="nothing is published"):
        export(settings, store, fmt="jsonl", out=tmp_path)
    with pytest.raises(UsageError, match="unknown format"):
        export(settings, store, fmt="csv", out=tmp_path)


def test_version_beyond_the_latest_is_refused(
    settings: Settings, two_versions: Engine, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="latest is 2"):
        export(settings, two_versions, fmt="jsonl", out=tmp_path, version=3)
    with pytest.raises(UsageError, match="no selection named 'nope'"):
        export(settings, two_versions, fmt="jsonl", out=tmp_path, selection="nope")


def test_push_needs_a_token(settings: Settings, two_versions: Engine, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="DYNOSAUR_HUB_TOKEN"):
        export(settings, two_versions, fmt="parquet", out=tmp_path, push_to_hub="me/dynosaur")


@pytest.fixture
def mixed_licenses(store: Engine, factory: StoreFactory) -> Engine:
    """Version 1: org/mit (permissive), org/sa (cc-by-sa-4.0: share-alike), org/nc
    (cc-by-nc-4.0: non-commercial), 10 instances each."""
    for name, license_ in (
        ("org/mit", "mit"),
        ("org/sa", "cc-by-sa-4.0"),
        ("org/nc", "cc-by-nc-4.0"),
    ):
        config = factory.sentiment_config(name, licenses=[license_])
        factory.task(config, f"Classify the {name} review.", ["text"], "label")
    factory.publish("day0")
    return store


def test_license_subset_holds_only_those_classes_and_its_card_says_so(
    settings: Settings, mixed_licenses: Engine, tmp_path: Path
) -> None:
    result = export(settings, mixed_licenses, fmt="jsonl", out=tmp_path, licenses="permissive")
    lines = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert result.path.name == "dynosaur-v1-permissive.jsonl"
    assert len(lines) == 10 and {row["license"] for row in lines} == {"mit"}
    assert result.figures["license_classes"] == {"permissive": 10}
    card = (tmp_path / "dynosaur-v1-permissive.README.md").read_text()
    assert "license: mit" in card  # the YAML header: one license throughout, not `other`
    assert "only instances whose source license is in the license class(es) `permissive`" in card
    assert "Some sources forbid commercial use." not in card

    both = export(
        settings, mixed_licenses, fmt="parquet", out=tmp_path, licenses="share-alike,permissive"
    )
    table = pq.read_table(both.path)
    assert sorted(set(table.column("license").to_pylist())) == ["cc-by-sa-4.0", "mit"]
    card = (tmp_path / f"{both.path.stem}.README.md").read_text()
    assert "`permissive`, `share-alike`" in card and "share-alike / copyleft" in card
    assert "license: other" in card

    everything = export(settings, mixed_licenses, fmt="jsonl", out=tmp_path / "all.jsonl")
    assert everything.figures["instances"] == 30
    assert "Some sources forbid commercial use." in (tmp_path / "all.README.md").read_text()
    with pytest.raises(UsageError, match="unknown license class"):
        export(settings, mixed_licenses, fmt="jsonl", out=tmp_path, licenses="free")


def test_license_classes_view_counts_instances_per_class_per_version(
    mixed_licenses: Engine,
) -> None:
    with mixed_licenses.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT version, license_class, instances FROM license_classes ORDER BY 2")
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "non-commercial", 10),
        (1, "permissive", 10),
        (1, "share-alike", 10),
    ]


def test_publish_writes_the_new_batch_and_a_manifest_of_version_n(
    settings: Settings, two_versions: Engine, tmp_path: Path
) -> None:
    from dynosaur.export.delta import manifest_path, publish_export

    settings = settings.model_copy(update={"export_dir": tmp_path / "exports"})
    root = settings.export_root
    # Version 1 was never exported: publishing version 2 writes its delta on the way.
    manifest = publish_export(settings, two_versions, 2, formats=["jsonl"])
    assert manifest_path(root, 2) == root / "v2" / "manifest.json"
    entries = manifest["formats"]["jsonl"]
    assert [(e["version"], e["path"], e["instances"]) for e in entries] == [
        (1, "v1/dynosaur-v1-delta.jsonl", 10),
        (2, "v2/dynosaur-v2-delta.jsonl", 10),
    ]
    delta = [json.loads(line) for line in (root / entries[1]["path"]).read_text().splitlines()]
    assert delta == collection_rows(two_versions, 2)[10:]  # only the rows version 2 added
    whole = [
        json.loads(line)
        for entry in entries
        for line in (root / entry["path"]).read_text().splitlines()
    ]
    assert whole == collection_rows(two_versions, 2)
    assert json.loads(manifest_path(root, 2).read_text()) == manifest

    # Again, with version 1's manifest present: version 2 is rewritten, version 1 kept as is.
    first = (root / "v1" / "dynosaur-v1-delta.jsonl").stat().st_mtime_ns
    publish_export(settings, two_versions, 1, formats=["jsonl"])
    assert (root / "v1" / "dynosaur-v1-delta.jsonl").stat().st_mtime_ns != first
    first = (root / "v1" / "dynosaur-v1-delta.jsonl").stat().st_mtime_ns
    again = publish_export(settings, two_versions, 2, formats=["jsonl"])
    assert again["formats"] == manifest["formats"]
    assert (root / "v1" / "dynosaur-v1-delta.jsonl").stat().st_mtime_ns == first
