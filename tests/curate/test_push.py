"""Pushing versions to the Hub: real ``huggingface_hub`` calls against the Hub emulator's upload
endpoints, read back with ``huggingface_hub``; one commit and one tag per version, a second push
of a version changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi, hf_hub_download
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.export import export
from dynosaur.settings import Settings
from tests.curate.factory import StoreFactory

REPO = "dynosaur-test/collection"
TOKEN = "hf_pushTokenThatMustNotLeak123"


@pytest.fixture
def two_versions(store: Engine, factory: StoreFactory) -> Engine:
    """Version 1: org/a (10 instances); version 2 adds org/b (10)."""
    for day, name in enumerate(("org/a", "org/b")):
        config = factory.sentiment_config(name, licenses=["mit"])
        factory.task(config, f"Classify the {name} review.", ["text"], "label")
        factory.publish(f"day{day}")
    return store


def read_back(hub: HubEmulator, revision: str, cache: Path) -> tuple[str, int, set[str]]:
    """The card, the number of rows and the sources of the pushed revision."""
    common = {"repo_type": "dataset", "revision": revision, "endpoint": hub.url, "token": TOKEN}
    card = Path(hf_hub_download(REPO, "README.md", cache_dir=cache, **common)).read_text()
    data = pq.read_table(hf_hub_download(REPO, "data/train.parquet", cache_dir=cache, **common))
    return card, data.num_rows, set(data.column("taskname").to_pylist())


def test_versions_are_pushed_as_tagged_commits_and_a_repush_is_a_no_op(
    settings: Settings,
    two_versions: Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with HubEmulator() as hub:
        pushing = settings.model_copy(
            update={"hub_endpoint": hub.url, "hub_token": SecretStr(TOKEN)}
        )
        for version in (1, 2):
            result = export(
                pushing,
                two_versions,
                fmt="parquet",
                out=tmp_path,
                version=version,
                push_to_hub=REPO,
            )
            assert result.pushed_to is not None and result.pushed_to.endswith(f"@v{version}")
        pushed = hub.pushed.summary()[REPO]
        assert pushed["commits"] == 2 and set(pushed["tags"]) == {"v1", "v2"}

        card1, rows1, sources1 = read_back(hub, "v1", tmp_path / "cache")
        card2, rows2, sources2 = read_back(hub, "v2", tmp_path / "cache")
        assert (rows1, rows2) == (10, 20)
        assert sources1 == {"org/a"} and sources2 == {"org/a", "org/b"}
        assert "version 1" in card1 and "version 2" in card2
        refs = HfApi(endpoint=hub.url, token=TOKEN).list_repo_refs(REPO, repo_type="dataset")
        assert {t.name for t in refs.tags} == {"v1", "v2"}

        commits_before = len(hub.requests_to(f"/api/datasets/{REPO}/commit/main"))
        again = export(
            pushing,
            two_versions,
            fmt="parquet",
            out=tmp_path,
            version=2,
            push_to_hub=REPO,
        )
        assert again.pushed_to is not None and again.pushed_to.endswith("@v2")
        assert len(hub.requests_to(f"/api/datasets/{REPO}/commit/main")) == commits_before
        assert hub.pushed.summary()[REPO]["commits"] == 2
    assert TOKEN not in caplog.text
