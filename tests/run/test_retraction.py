"""Retraction: sources deleted, gated and relicensed on the Hub on day 3 of a growth run are
withdrawn from version 3 on, while version 2 keeps them; exports say so, stored selections
report them, and a source can be retracted by hand."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from dynosaur.cli.main import app
from dynosaur.emulators.hub import HubEmulator
from dynosaur.emulators.llm import LLMEmulator
from dynosaur.export import export
from dynosaur.pipeline import grow, request_for
from dynosaur.retraction import sweep
from dynosaur.settings import Settings
from dynosaur.store import retractions
from dynosaur.store.selections import Members, SelectionSpec, save_selection
from tests.curate.factory import cli_environment, live_settings

DELETED = "dynosaur-fixtures/squad-like"
GATED = "dynosaur-fixtures/anli-like"
RELICENSED = "dynosaur-fixtures/mathqa-like"
KEPT = "dynosaur-fixtures/commongen-like"


def grow_day(settings: Settings, store: Engine, hub: HubEmulator, date: str) -> dict:
    hub.now = datetime.fromisoformat(date + "T23:59:59+00:00")
    return grow(settings, store, request_for(day=date))


def per_dataset(store: Engine, version: int) -> Counter[str]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT dataset_id FROM collection_at(:v)"), {"v": version}
        ).scalars()
        return Counter(rows)


def test_sources_withdrawn_on_day_3_leave_version_3_and_stay_in_version_2(
    settings: Settings,
    store: Engine,
    hub: HubEmulator,
    llm: LLMEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = live_settings(settings, hub, llm, llm_backoff_s=0.01)
    assert grow_day(live, store, hub, "2024-03-01")["version"] == 1
    assert grow_day(live, store, hub, "2024-03-02")["version"] == 2
    version_2 = per_dataset(store, 2)
    assert {DELETED, GATED, RELICENSED, KEPT} <= set(version_2)

    with store.connect() as conn:
        v2_ids = np.array(
            conn.execute(sa.text("SELECT instance_id FROM collection_at(2)")).scalars().all()
        )
    spec = SelectionSpec("all-of-v2", "coreset", 2, {}, {}, 0)
    members = Members.ranked("instance", v2_ids, np.zeros(len(v2_ids)), "selected")
    save_selection(store, spec, members, pool_size=len(v2_ids), figures={}, replace=False)

    hub.configure(deleted=(DELETED,), gated=(GATED,), relicensed=(f"{RELICENSED}=cc-by-nc-nd-4.0",))
    third = grow_day(live, store, hub, "2024-03-03")
    assert third["version"] == 3

    found = {r.dataset_id: (r.reason, r.from_version) for r in retractions.retractions(store)}
    assert found == {
        DELETED: ("source_withdrawn", 3),
        GATED: ("source_gated", 3),
        RELICENSED: ("license_withdrawn", 3),
    }
    # Version 2 is what was published as 2; version 3 leaves out exactly the retracted sources.
    assert per_dataset(store, 2) == version_2
    version_3 = per_dataset(store, 3)
    assert not set(found) & set(version_3)
    for dataset_id, n in version_2.items():
        if dataset_id not in found:
            assert version_3[dataset_id] == n
    with store.connect() as conn:
        current = Counter(conn.execute(sa.text("SELECT dataset_id FROM collection")).scalars())
        by_reason = {
            row.reason: row.n
            for row in conn.execute(
                sa.text("SELECT reason, count(*) AS n FROM retracted_source GROUP BY reason")
            )
        }
    assert current == version_3
    assert by_reason == {"source_withdrawn": 1, "source_gated": 1, "license_withdrawn": 1}

    # The export of version 3 lists them; version 2's does not.
    v3 = export(live, store, fmt="jsonl", out=tmp_path, version=3)
    card = v3.path.with_name(f"{v3.path.stem}.README.md").read_text()
    assert v3.figures["retracted_sources"] == 3
    assert all(dataset_id in card for dataset_id in found)
    v2 = export(live, store, fmt="jsonl", out=tmp_path, version=2)
    assert v2.figures["retracted_sources"] == 0

    # The selection made over version 2 reports its members that are now retracted.
    assert retractions.retracted_members(store, "all-of-v2") == {
        dataset_id: version_2[dataset_id] for dataset_id in found
    }

    # A second sweep finds nothing new; a hand retraction applies from the next version.
    assert sweep(live, store, limit=100).retracted == []
    cli_environment(monkeypatch, live)
    result = CliRunner().invoke(app, ["retract", KEPT, "--note", "asked by the author"])
    assert result.exit_code == 0, result.output
    assert "from version 4" in result.output
    assert per_dataset(store, 3)[KEPT] == version_3[KEPT]


def test_a_recheck_the_hub_cannot_answer_is_retried_and_retracts_nothing(
    settings: Settings, store: Engine, hub: HubEmulator, llm: LLMEmulator
) -> None:
    """The sweep's requests go through the Hub client: retried by its policy, and a source the
    Hub cannot serve stays in the collection, due again (never taken for deleted)."""
    live = live_settings(
        settings, hub, llm, llm_backoff_s=0.01, hub_backoff_s=0.01, hub_backoff_max_s=0.02
    )
    assert grow_day(live, store, hub, "2024-03-01")["version"] == 1
    hub.configure(unavailable=(DELETED,))
    before = len(hub.requests_to(f"/api/datasets/{DELETED}"))
    result = sweep(live, store, limit=100)
    attempts = len(hub.requests_to(f"/api/datasets/{DELETED}")) - before
    assert result.unreachable == [DELETED] and result.retracted == [], (result, attempts)
    assert attempts == live.hub_max_retries + 1
    assert result.checked == len(per_dataset(store, 1))
    assert retractions.retractions(store) == []
