"""The growth report: its figures are the views' figures, it sees nothing published after its
version, and ``dynosaur report`` writes it as one self-contained page."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.report import build_report, render_html, write_report
from tests.conftest import command_env


def _one(engine: Engine, sql: str, **params: object) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).one()


def test_the_headline_is_the_growth_view_of_the_version(grown: Engine) -> None:
    report = build_report(grown)
    assert report.version == 3
    row = _one(grown, "SELECT * FROM growth WHERE version = 3")
    headline = report.headline()
    assert headline["total_instances"] == row.total_instances > 0
    assert headline["total_tasks"] == row.total_tasks
    assert headline["total_datasets"] == row.total_datasets
    assert headline["new_instances"] == row.new_instances
    assert headline["total_cost_usd"] == pytest.approx(float(row.total_cost_usd))
    assert [g.version for g in report.growth] == [1, 2, 3]
    assert [g.total_instances for g in report.growth] == sorted(
        g.total_instances for g in report.growth
    )


def test_shares_and_outcomes_add_up_to_the_store(grown: Engine) -> None:
    report = build_report(grown, 3)
    instances = _one(grown, "SELECT count(*) AS n FROM collection").n
    assert sum(r.instances for r in report.licenses) == instances
    valid = _one(grown, "SELECT count(*) AS n FROM task_overview WHERE status = 'valid'").n
    assert sum(r.tasks for r in report.licenses) == valid
    # A task with several categories counts once per category, one without under (none).
    assert sum(r.tasks for r in report.categories) >= valid
    by_batch = {b.batch_id: b.tasks_rejected for b in report.batches}
    rejected: dict[int, int] = {}
    for o in report.outcomes:
        if o.entity == "task":
            rejected[o.batch_id] = rejected.get(o.batch_id, 0) + o.n
    assert sum(by_batch.values()) > 0  # the emulator's invalid share is rejected by the filters
    assert {k: v for k, v in by_batch.items() if v} == rejected
    skipped = _one(
        grown, "SELECT coalesce(sum(n), 0) AS n FROM rejection_by_reason WHERE entity <> 'task'"
    ).n
    assert sum(o.n for o in report.outcomes if o.entity != "task") == skipped
    assert report.samples and all(s.output for s in report.samples)
    with grown.connect() as conn:
        newest = set(
            conn.execute(sa.text("SELECT instance_id FROM collection WHERE version = 3")).scalars()
        )
    assert {s.instance_id for s in report.samples} <= newest


def test_an_earlier_version_sees_nothing_published_after_it(grown: Engine) -> None:
    report = build_report(grown, 1)
    assert [g.version for g in report.growth] == [1]
    assert [b.version for b in report.batches if b.status == "published"] == [1]
    first = _one(grown, "SELECT count(*) AS n FROM collection WHERE version = 1").n
    assert sum(r.instances for r in report.licenses) == first
    with pytest.raises(UsageError, match="version 9 is not published"):
        build_report(grown, 9)


def test_the_page_has_every_plot_as_inline_svg(grown: Engine, tmp_path: Path) -> None:
    path = write_report(grown, tmp_path, 3)
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert page == render_html(build_report(grown, 3)).replace(
        re.search(r"Generated [^<]+ UTC", render_html(build_report(grown, 3))).group(0),
        re.search(r"Generated [^<]+ UTC", page).group(0),
    )
    plots = re.findall(r'<figure data-plot="(\w+)"><svg', page)
    assert plots == ["growth", "outcomes", "cost", "categories", "licenses", "languages"]
    # Self-contained: nothing to fetch, nothing to run.
    assert not re.search(r"<script|<link|<img|\bsrc=|href=\"http", page)


def test_dynosaur_report_writes_the_page_beside_the_exports(grown: Engine, tmp_path: Path) -> None:
    url = grown.url.render_as_string(hide_password=False)
    env = command_env(DYNOSAUR_DATABASE_URL=url, DYNOSAUR_EXPORT_DIR=str(tmp_path), COLUMNS="200")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dynosaur"), "report", "--version", "2"],
        env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    total = _one(grown, "SELECT total_instances FROM growth WHERE version = 2").total_instances
    assert f"version 2: {total:,} instances" in done.stdout
    page = (tmp_path / "v2" / "report.html").read_text()
    assert f'data-figure="total_instances">{total:,}<' in page


def test_category_and_language_shares_leave_out_retracted_sources(grown: Engine) -> None:
    """A source retracted from version 3 on no longer counts in version 3's shares (as in
    ``collection_at(3)``), and still counts in version 2's."""
    source = _one(
        grown,
        "SELECT dataset_id, sum(instances) AS n, max(cardinality(task_categories)) AS cats "
        "FROM task_overview WHERE status = 'valid' AND version <= 2 "
        "GROUP BY dataset_id ORDER BY 2 DESC LIMIT 1",
    )
    before = {v: build_report(grown, v) for v in (2, 3)}
    with grown.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO retraction (dataset_id, reason, from_version) "
                "VALUES (:d, 'retracted_by_hand', 3)"
            ),
            {"d": source.dataset_id},
        )
    try:
        after = {v: build_report(grown, v) for v in (2, 3)}
    finally:
        with grown.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM retraction WHERE dataset_id = :d"), {"d": source.dataset_id}
            )

    def total(report: object, part: str) -> int:
        return sum(r.instances for r in getattr(report, part))

    assert total(after[2], "categories") == total(before[2], "categories")
    dropped = total(before[3], "categories") - total(after[3], "categories")
    assert dropped == source.n * max(1, source.cats or 0) > 0
    assert total(after[3], "licenses") == total(before[3], "licenses") - source.n
    assert total(after[3], "languages") < total(before[3], "languages")
