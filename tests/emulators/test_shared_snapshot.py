"""Against the shared snapshot (612 real datasets; skipped when ../shared is absent): every
dataset lists, its card downloads and its viewer answers parse; the shared reference replays."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from datasets import Features
from huggingface_hub import HfApi, hf_hub_download

from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.generate.blocks import DatasetBlock, render_block
from tests.conftest import SHARED_REFERENCE, SHARED_SNAPSHOT

pytestmark = pytest.mark.shared_snapshot


def test_every_shared_dataset_lists_downloads_its_card_and_parses_in_the_viewer(
    tmp_path: Path,
) -> None:
    index = [json.loads(line) for line in (SHARED_SNAPSHOT / "index.jsonl").open()]
    with HubEmulator(SHARED_SNAPSHOT, page_size=200) as hub, httpx.Client() as viewer:
        api = HfApi(endpoint=hub.url, token=False)
        listed = {d.id: d for d in api.list_datasets(sort="created_at")}
        assert set(listed) == {row["id"] for row in index}

        parsed = failed = 0
        for row in index:
            if row["has_card"]:
                path = hf_hub_download(
                    row["id"],
                    "README.md",
                    repo_type="dataset",
                    endpoint=hub.url,
                    cache_dir=tmp_path,
                    token=False,
                )
                card = SHARED_SNAPSHOT / "datasets" / row["id"] / "README.md"
                assert Path(path).read_bytes() == card.read_bytes()
            splits = viewer.get(f"{hub.url}/splits", params={"dataset": row["id"]})
            assert splits.status_code == 200, row["id"]
            seen: set[str] = set()
            for split in splits.json()["splits"]:
                if split["config"] in seen:
                    continue  # one split per config keeps the test short
                seen.add(split["config"])
                first = viewer.get(f"{hub.url}/first-rows", params=split)
                if first.status_code == 200:
                    answer = first.json()
                    features = Features.from_dict(
                        {f["name"]: f["type"] for f in answer["features"]}
                    )
                    assert all(set(r["row"]) <= set(features) for r in answer["rows"])
                    parsed += 1
                else:
                    # configs without rows in the snapshot: a real-looking error, no crash
                    assert first.status_code == 500 and "error" in first.json(), split
                    failed += 1
    assert parsed > 2000
    assert failed < parsed


def test_shared_reference_is_replayed_for_its_datasets() -> None:
    reference = [json.loads(line) for line in SHARED_REFERENCE.open()]
    recorded = next(r for r in reference if r["dataset"] == "glue" and r["config"] == "mrpc")
    block = DatasetBlock("glue", "mrpc", ["sentence1", "sentence2", "label", "idx"], [])
    with LLMEmulator(reference=SHARED_REFERENCE) as llm:
        sdk = openai.OpenAI(base_url=llm.base_url, api_key="k")
        completion = sdk.chat.completions.create(
            model="gpt-3.5-turbo",
            messages=[{"role": "user", "content": render_block(block)}],
        )
    tasks = json.loads(completion.choices[0].message.content)
    assert tasks[0]["input_fields"] == recorded["input_fields"]
    assert tasks[0]["output_field"] == recorded["output_field"]  # as written: a list
    assert "Answers must be one of" not in tasks[0]["instruction"]
