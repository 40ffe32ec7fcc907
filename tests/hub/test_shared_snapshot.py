"""Coverage of discover + collect over the whole shared snapshot (612 real cards, mid 2022),
served by the Hub emulator. The thresholds sit just under the figures measured when this was
written (default settings: English only):

    cards parsed without a YAML error           612 / 612  = 100.0 %
    non-placeholder summaries extracted         566 / 612  =  92.5 %  (the rest say
                                                                      "[More Information Needed]")
    text configs with >= 2 usable fields and    595 / 698  =  85.2 %  (no_rows: configs whose
      sample rows (collected)                                         excerpt the snapshot lacks)
    ... of those whose rows the snapshot has    593 / 603  =  98.3 %
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.hub import collect, discover
from dynosaur.model import Window
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store.datasets import collect_queue
from tests.conftest import SHARED_SNAPSHOT
from tests.hub.conftest import hub_settings, rows_of

pytestmark = pytest.mark.shared_snapshot


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def test_collect_covers_the_shared_snapshot(store: Engine, settings: Settings) -> None:
    index = [json.loads(line) for line in (SHARED_SNAPSHOT / "index.jsonl").open() if line.strip()]
    has_rows = {(e["id"], c["name"]) for e in index for c in e["configs"] if c["status"] == "ok"}
    with HubEmulator(SHARED_SNAPSHOT, now=datetime(2023, 1, 1, tzinfo=UTC)) as hub:
        s = hub_settings(settings, hub)
        found = discover(s, store, window=Window.parse("2000-01-01", "2023-01-01"))
        summary = collect(s, store, collect_queue(store))
    assert len(found.new_ids) == len(index) == summary.total

    datasets = rows_of(store, "SELECT status, reason, message, notes, summary FROM hub_dataset")
    assert all(r[0] != "collected" or r[1] is None for r in datasets)
    assert all(r[1] and r[2] for r in datasets if r[0] != "collected")  # reason + message
    with_card = [r for r in datasets if r[1] != Reason.CARD_MISSING]
    cards_ok = share(sum(Reason.CARD_UNPARSEABLE not in r[3] for r in with_card), len(with_card))
    summaries = share(sum(r[4] is not None for r in datasets), len(datasets))

    configs = rows_of(
        store,
        "SELECT d.dataset_id, c.config_name, c.status, c.reason, c.fields, c.sample_rows "
        "FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id",
    )
    text = [c for c in configs if c[3] not in (Reason.MEDIA_FIELD, Reason.CONFIG_CAP)]
    good = [c for c in text if c[2] == "collected" and len(c[4]) >= 2 and c[5]]
    with_rows = [c for c in text if (c[0], c[1]) in has_rows]
    good_with_rows = [c for c in good if (c[0], c[1]) in has_rows]

    figures = {
        "cards_parsed": cards_ok,
        "summaries": summaries,
        "text_configs_usable": share(len(good), len(text)),
        "text_configs_with_rows_usable": share(len(good_with_rows), len(with_rows)),
    }
    print(figures)  # shown with -s
    assert cards_ok >= 0.99
    assert summaries >= 0.90
    assert figures["text_configs_usable"] >= 0.82
    assert figures["text_configs_with_rows_usable"] >= 0.97
    assert all(len(c[5]) <= s.sample_rows for c in configs)
