"""Hostile inputs served by the Hub emulator from throwaway snapshots: each ends stored with a
reason code, and never costs the datasets beside it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from dynosaur.emulators.hub import HubEmulator
from dynosaur.hub import collect, discover
from dynosaur.model import Window
from dynosaur.reasons import Reason
from dynosaur.settings import Settings
from dynosaur.store.datasets import collect_queue
from tests.emulators.conftest import AFTER_ALL
from tests.hub.conftest import STRING, SnapshotWriter, hub_settings, rows_of, store_revision

WINDOW = Window.parse("2024-05-01", "2024-05-02")
GOOD = "fine/neighbour"


def run(store: Engine, settings: Settings, writer: SnapshotWriter) -> dict[str, tuple]:
    """Serve the snapshot (plus one well-formed dataset), discover + collect; outcome by id."""
    writer.add(GOOD)
    with HubEmulator(writer.write(), now=AFTER_ALL) as hub:
        s = hub_settings(settings, hub)
        discover(s, store, window=WINDOW)
        collect(s, store, collect_queue(store))
    rows = rows_of(store, "SELECT dataset_id, status, reason, notes, message FROM hub_dataset")
    outcome = {r[0]: tuple(r[1:]) for r in rows}
    assert outcome.pop(GOOD)[:2] == ("collected", None)  # never costs its neighbour
    return outcome


def config_of(store: Engine, dataset_id: str) -> Any:
    return rows_of(
        store,
        "SELECT c.status, c.reason, c.notes, c.fields, c.sample_rows, c.message "
        "FROM dataset_config c JOIN hub_dataset d ON d.id = c.hub_dataset_id "
        "WHERE d.dataset_id = :id",
        id=dataset_id,
    )[0]


def test_malformed_yaml_card_is_noted_and_collected_with_what_was_read(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    snapshot_writer.add(
        "broken/yaml",
        card="---\nlicense: cc-by-4.0\nlanguage: [en\npretty_name: 'unclosed\n  bad: indent\n"
        "---\n## Dataset Summary\n\nStill readable.\n",
    )
    snapshot_writer.add("broken/yaml-no-license", card="---\nlicense: [mit\n---\n# x\n")
    outcome = run(store, settings, snapshot_writer)
    status, reason, notes, message = outcome["broken/yaml"]
    assert (status, reason) == ("collected", None)
    assert Reason.CARD_UNPARSEABLE in notes and "YAML" in message
    licenses, summary = rows_of(
        store, "SELECT licenses, summary FROM hub_dataset WHERE dataset_id = 'broken/yaml'"
    )[0]
    assert (licenses, summary) == (["cc-by-4.0"], "Still readable.")
    status, reason, notes, _ = outcome["broken/yaml-no-license"]
    assert (status, reason) == ("skipped", Reason.NO_LICENSE)
    assert Reason.CARD_UNPARSEABLE in notes


def test_five_megabyte_card_is_cut_noted_and_collected(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    body = "## Dataset Summary\n\nA huge card.\n\n## Notes\n\n" + "lorem ipsum " * 440_000
    card = "---\nlicense: mit\nlanguage: [en]\n---\n" + body
    assert len(card) > 5_000_000
    snapshot_writer.add("huge/card", card=card)
    outcome = run(store, settings, snapshot_writer)
    status, reason, notes, message = outcome["huge/card"]
    assert (status, reason) == ("collected", None)
    assert Reason.CARD_TOO_LARGE in notes and "cut" in message
    summary, size = rows_of(
        store,
        "SELECT summary, pg_column_size(d.*) FROM hub_dataset d WHERE dataset_id = 'huge/card'",
    )[0]
    assert summary == "A huge card."
    assert size < 100_000


def test_nul_bytes_and_invalid_utf8_in_a_card_are_cleaned(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    snapshot_writer.add(
        "dirty/card",
        card=b"---\nlicense: mit\npretty_name: Nul\x00Name\n---\n"
        b"## Dataset Summary\n\nBad \xff\xfe bytes and a NUL\x00 here.\n",
    )
    outcome = run(store, settings, snapshot_writer)
    status, reason, notes, _ = outcome["dirty/card"]
    assert (status, reason) == ("collected", None)
    assert Reason.TEXT_CLEANED in notes
    pretty, summary, card_data = rows_of(
        store,
        "SELECT pretty_name, summary, card_data FROM hub_dataset WHERE dataset_id = 'dirty/card'",
    )[0]
    assert pretty == "NulName" and card_data["pretty_name"] == "NulName"
    assert summary == "Bad \ufffd\ufffd bytes and a NUL here."


def test_nul_bytes_and_invalid_text_in_rows_are_cleaned(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    # A NUL escape (Postgres text cannot hold NUL), a stray control character, a value of
    # 20,000 characters, a NaN (jsonb refuses it). Lone surrogates, the other text Postgres
    # refuses, are covered without a server in test_features: the emulator cannot send them.
    lines = (
        '{"question": "nul\\u0000inside\\u000b", "answer": "tab\\tkept"}\n'
        '{"question": "long", "answer": "' + "y" * 20_000 + '"}\n'
        '{"question": "ok", "answer": "fine", "score": NaN}\n'
    ).encode()
    snapshot_writer.add(
        "dirty/rows",
        rows=lines,
        features={
            "question": STRING,
            "answer": STRING,
            "score": {"dtype": "float64", "_type": "Value"},
        },
    )
    outcome = run(store, settings, snapshot_writer)
    assert outcome["dirty/rows"][:2] == ("collected", None)
    status, reason, notes, _, rows, _ = config_of(store, "dirty/rows")
    assert (status, reason) == ("collected", None)
    assert set(notes) == {Reason.TEXT_CLEANED, Reason.ROW_VALUES_TRUNCATED}
    assert rows[0] == {"question": "nulinside", "answer": "tab\tkept"}
    assert len(rows[1]["answer"]) == settings.max_value_chars
    assert rows[2]["score"] is None


def test_invalid_utf8_bytes_the_viewer_cannot_serve_end_as_no_rows(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    # The viewer cannot decode the rows file: it answers StreamingRowsError for the config,
    # which is skipped with the viewer's message; nothing is lost silently.
    snapshot_writer.add("dirty/bytes", rows=b'{"question": "caf\xe9", "answer": "\xff"}\n')
    outcome = run(store, settings, snapshot_writer)
    status, reason, _, message = outcome["dirty/bytes"]
    assert (status, reason) == ("skipped", Reason.NO_USABLE_CONFIG)
    assert "no_rows" in message
    config = config_of(store, "dirty/bytes")
    assert config[:2] == ("skipped", Reason.NO_ROWS)
    assert "StreamingRowsError" in config[5] and "UnicodeDecodeError" in config[5]


def test_deeply_nested_features_are_collected_with_bounded_types(
    store: Engine, settings: Settings, snapshot_writer: SnapshotWriter
) -> None:
    deep: Any = STRING
    value: Any = "leaf"
    for _ in range(200):
        deep = {"feature": deep, "_type": "Sequence"}
        value = [value]
    snapshot_writer.add(
        "deep/features",
        features={"question": STRING, "tree": deep},
        rows=[{"question": "q", "tree": value}],
    )
    outcome = run(store, settings, snapshot_writer)
    assert outcome["deep/features"][:2] == ("collected", None)
    status, _, _, fields, rows, _ = config_of(store, "deep/features")
    assert status == "collected"
    assert [f["name"] for f in fields] == ["question", "tree"]
    assert all(len(f["type"]) < 100 for f in fields)
    assert rows[0]["question"] == "q"


def test_dataset_id_with_quotes_and_sql_metacharacters_is_stored_verbatim_and_refused(
    store: Engine, settings: Settings, own_hub: HubEmulator
) -> None:
    hostile = "o'rg\"; DROP TABLE hub_dataset; --/na'me"
    s = hub_settings(settings, own_hub)
    row_id = store_revision(store, own_hub, hostile, "a" * 40)
    summary = collect(s, store, [row_id])
    assert summary.counts[("failed", Reason.INVALID_ID)] == 1
    stored = rows_of(store, "SELECT dataset_id, status, reason, message FROM hub_dataset")
    assert stored[0][:3] == (hostile, "failed", Reason.INVALID_ID)
    assert own_hub.request_log == []  # refused before any request
    assert rows_of(store, "SELECT count(*) FROM hub_dataset WHERE dataset_id = :id", id=hostile)
