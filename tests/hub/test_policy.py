"""Collect's license policy and per-config languages against the Hub emulator: license classes
(no-derivatives and ``other`` never enter), the license and description fallbacks with their
sources visible in SQL, allowed configs first under the cap, ``code`` and ``unknown``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.hub import collect, discover
from dynosaur.model import Window
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from tests.hub.conftest import CREATED, STRING, SnapshotWriter, hub_settings, rows_of

WINDOW = Window.parse("2024-01-01", "2024-06-01")
ENGLISH = [
    {"question": f"What is the capital of country number {i}?", "answer": f"City {i} is"}
    for i in range(12)
]
GERMAN = [
    {"frage": f"Wie heißt die Hauptstadt des Landes Nummer {i}?", "antwort": "Die Stadt ist"}
    for i in range(12)
]


def card(license: str | None, languages: str = "[en]", body: str = "") -> str:
    head = f"license: {license}\n" if license is not None else ""
    return (
        f"---\n{head}language: {languages}\n---\n# A dataset\n\n## Dataset Summary\n\nRows.\n{body}"
    )


def add_multi(
    writer: SnapshotWriter,
    dataset_id: str,
    readme: str,
    configs: dict[str, list[dict[str, Any]]],
    infos_extra: dict[str, Any] | None = None,
) -> None:
    """A dataset with several configs (one train split each)."""
    folder = writer.root / "datasets" / dataset_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    infos = {}
    for name, rows in configs.items():
        features = {key: STRING for key in rows[0]}
        infos[name] = {"features": features, "splits": {"train": {"name": "train"}}}
        infos[name].update(infos_extra or {})
        (folder / "rows" / name).mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / "rows" / name / "train.jsonl").write_text(lines, encoding="utf-8")
    (folder / "dataset_infos.json").write_text(json.dumps(infos), encoding="utf-8")
    writer.entries.append(
        {
            "id": dataset_id,
            "created_at": CREATED,
            "last_modified": CREATED,
            "sha": hashlib.sha1(dataset_id.encode()).hexdigest(),
            "has_card": True,
            "has_dataset_infos": True,
            "configs": [
                {"name": n, "status": "ok", "splits": {"train": len(r)}} for n, r in configs.items()
            ],
        }
    )


def run(store: Engine, settings: Settings, root: Path, **overrides: Any) -> None:
    with HubEmulator(root) as hub:
        s = hub_settings(settings, hub, **overrides)
        collect(s, store, discover(s, store, window=WINDOW).new_ids)


def outcomes(store: Engine) -> dict[str, tuple[Any, ...]]:
    rows = rows_of(
        store,
        "SELECT dataset_id, status, reason, license_class, license_source, licenses, message "
        "FROM hub_dataset",
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_no_derivatives_and_other_licenses_never_enter_the_collection(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    w.add("org/nd", card=card("cc-by-nc-nd-4.0"), rows=ENGLISH)
    w.add("org/custom", card=card("other"), rows=ENGLISH)
    w.add("org/open", card=card("apache-2.0"), rows=ENGLISH)
    w.add("org/copyleft", card=card("gpl-3.0"), rows=ENGLISH)
    w.add("org/none", card=card("unknown"), rows=ENGLISH)
    run(store, settings, w.write())
    got = outcomes(store)
    assert got["org/nd"][:3] == ("skipped", Reason.LICENSE_NOT_ALLOWED, "no-derivatives")
    assert got["org/custom"][:3] == ("skipped", Reason.LICENSE_NOT_ALLOWED, "unknown")
    assert "no-derivatives" in got["org/nd"][5] and "other" in got["org/custom"][5]
    assert got["org/open"][:3] == ("collected", None, "permissive")
    assert got["org/copyleft"][:3] == ("collected", None, "share-alike")
    assert got["org/none"][:2] == ("skipped", Reason.NO_LICENSE)
    # Neither skipped dataset has a config: nothing of theirs can reach a task.
    configs = rows_of(
        store,
        "SELECT d.dataset_id FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id",
    )
    assert {c[0] for c in configs} == {"org/open", "org/copyleft"}
    # The reasons are in the reason table, and the policy is visible through the view.
    view = rows_of(store, "SELECT dataset_id, license_class, reason FROM dataset_sources")
    assert ("org/nd", "no-derivatives", Reason.LICENSE_NOT_ALLOWED) in view


def test_license_classes_are_a_setting(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    w.add("org/nd", card=card("cc-by-nd-4.0"), rows=ENGLISH)
    w.add("org/nc", card=card("cc-by-nc-4.0"), rows=ENGLISH)
    run(store, settings, w.write(), license_classes="permissive,no-derivatives")
    got = outcomes(store)
    assert got["org/nd"][:2] == ("collected", None)
    assert got["org/nc"][:2] == ("skipped", Reason.LICENSE_NOT_ALLOWED)


def test_license_and_description_fallbacks_are_stored_with_their_source(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    licensing = "\n## Licensing Information\n\nReleased under the MIT License.\n"
    w.add("org/section", card=card("unknown", body=licensing), rows=ENGLISH)
    placeholder = (
        "---\nlicense: unknown\nlanguage: [en]\n---\n# B\n\n## Dataset Summary\n\n"
        "[More Information Needed]\n"
    )
    add_multi(
        w,
        "org/infos",
        placeholder,
        {"default": ENGLISH},
        {"license": "Apache License 2.0", "description": "Questions about capitals."},
    )
    w.add("org/yaml", card=card("cc-by-4.0"), rows=ENGLISH)
    run(store, settings, w.write())
    got = outcomes(store)
    assert got["org/section"][:5] == ("collected", None, "permissive", "card_text", ["mit"])
    assert got["org/infos"][:5] == (
        "collected",
        None,
        "permissive",
        "dataset_infos",
        ["apache-2.0"],
    )
    assert got["org/yaml"][3:5] == ("card", ["cc-by-4.0"])
    sources = rows_of(
        store,
        "SELECT dataset_id, license_source, description_source, has_description "
        "FROM dataset_sources ORDER BY dataset_id",
    )
    assert sources == [
        ("org/infos", "dataset_infos", "dataset_infos", True),
        ("org/section", "card_text", "card", True),
        ("org/yaml", "card", "card", True),
    ]
    summary = rows_of(store, "SELECT summary FROM hub_dataset WHERE dataset_id = 'org/infos'")
    assert summary == [("Questions about capitals.",)]


def test_english_configs_first_under_the_cap_and_foreign_ones_cost_no_request(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    configs = {"de": GERMAN, "fr": GERMAN, "xsum": ENGLISH, "en": ENGLISH, "common_gen": ENGLISH}
    add_multi(w, "org/multi", card("mit", "[de, en, fr]"), configs)
    root = w.write()
    with HubEmulator(root) as hub:
        s = hub_settings(settings, hub, max_configs_per_dataset=2)
        collect(s, store, discover(s, store, window=WINDOW).new_ids)
        rows_requests = hub.requests_to("/first-rows") + hub.requests_to("/rows")
    got = {
        r[0]: r[1:]
        for r in rows_of(
            store,
            "SELECT config_name, status, reason, language, language_source FROM dataset_config",
        )
    }
    assert got["de"] == ("skipped", Reason.LANGUAGE_NOT_ALLOWED, ["de"], "config_name")
    assert got["fr"][1] == Reason.LANGUAGE_NOT_ALLOWED
    assert got["en"] == ("collected", None, ["en"], "config_name")
    # xsum's name says nothing: its rows are identified as English; common_gen is beyond the cap.
    assert got["xsum"] == ("collected", None, ["en"], "detected")
    assert got["common_gen"][:2] == ("skipped", Reason.CONFIG_CAP)
    assert len(rows_requests) == 2  # de and fr cost no request


def test_a_foreign_config_found_from_its_rows_frees_its_place_under_the_cap(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    configs = {"one": GERMAN, "two": GERMAN, "three": ENGLISH}
    add_multi(w, "org/unnamed", card("mit", "[de, en]"), configs)
    run(store, settings, w.write(), max_configs_per_dataset=2)
    got = dict(rows_of(store, "SELECT config_name, reason FROM dataset_config"))
    assert got == {
        "one": Reason.LANGUAGE_NOT_ALLOWED,
        "two": Reason.LANGUAGE_NOT_ALLOWED,
        "three": None,
    }


def test_code_datasets_enter_by_default_and_unknown_declares_nothing(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    code_rows = [
        {"code": f"def f{i}(x):\n    return x + {i}", "docstring": "Add."} for i in range(5)
    ]
    w.add("org/code", card=card("mit", "[code]"), rows=code_rows)
    series = [
        {"start": f"2020-01-{i + 1:02d}", "target": [1.5, 2.5, 3.5], "item_id": f"T{i}"}
        for i in range(10)
    ]
    features = {
        "start": STRING,
        "target": {"feature": {"dtype": "float32", "_type": "Value"}, "_type": "Sequence"},
        "item_id": STRING,
    }
    w.add("org/series", card=card("mit", "[unknown]"), rows=series, features=features)
    w.add("org/unknown-text", card=card("mit", "[unknown]"), rows=ENGLISH)
    root = w.write()
    run(store, settings, root)
    got = outcomes(store)
    assert got["org/code"][:2] == ("collected", None)
    # A time series declares no language and holds no text: no_text, not language_not_allowed.
    assert got["org/series"][:2] == ("skipped", Reason.NO_USABLE_CONFIG)
    assert "no_text" in got["org/series"][5]
    assert got["org/unknown-text"][:2] == ("collected", None)
    languages = dict(
        rows_of(
            store,
            "SELECT c.config_name || d.dataset_id, c.language "
            "FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id",
        )
    )
    assert languages["defaultorg/unknown-text"] == ["en"]
    assert languages["defaultorg/code"] == ["code"]


def test_code_is_a_setting(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    w = snapshot_writer
    w.add("org/code", card=card("mit", "[code]"))
    run(store, settings, w.write(), allow_code=False)
    assert outcomes(store)["org/code"][:2] == ("skipped", Reason.LANGUAGE_NOT_ALLOWED)
