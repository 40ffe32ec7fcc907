"""The growth report: one static HTML page per version of the collection (no server needed).

It shows how the collection grew over the versions (instances, tasks, datasets), what every
batch dropped and why (skips and rejections by reason), what each batch cost in total and per
valid instance, the task categories, licenses and languages of the collection, and a few
instances of the version's own batch. Every figure comes from the store's views
(:mod:`dynosaur.store.report`); the plots are inline SVG drawn with matplotlib.

``dynosaur report`` writes it, and so does the export DAG for every version it exports
(``<export dir>/v<N>/report.html``).
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from dynosaur.errors import UsageError
from dynosaur.store import report as q

__all__ = ["REPORT_FILE", "Report", "build_report", "render_html", "save_report", "write_report"]

REPORT_FILE = "report.html"
TOP = 15  # labels drawn in the ranked bar charts (the tables list all of them)


@dataclass(frozen=True)
class Report:
    """Everything the page shows for one version."""

    version: int
    generated_at: datetime
    growth: list[q.GrowthRow]
    batches: list[q.BatchRow]
    outcomes: list[q.OutcomeRow]
    categories: list[q.ShareRow]
    licenses: list[q.ShareRow]
    languages: list[q.ShareRow]
    samples: list[q.SampleRow]

    @property
    def latest(self) -> q.GrowthRow:
        return self.growth[-1]

    def headline(self) -> dict[str, int | float]:
        """The figures at the top of the page (and of run notes): the collection's totals at
        this version and what this version added."""
        g = self.latest
        return {
            "version": g.version,
            "total_instances": g.total_instances,
            "total_tasks": g.total_tasks,
            "total_datasets": g.total_datasets,
            "total_cost_usd": round(g.total_cost_usd, 6),
            "new_instances": g.new_instances,
            "new_tasks": g.new_tasks,
            "new_datasets": g.new_datasets,
            "cost_usd": round(g.cost_usd, 6),
        }


def build_report(engine: Engine, version: int | None = None) -> Report:
    """Read the figures of ``version`` (default: the latest published one) from the store."""
    from dynosaur.store.batches import latest_version

    if version is None:
        version = latest_version(engine)
        if version is None:
            raise UsageError("nothing is published yet: there is no version to report on")
    growth = q.growth(engine, version)
    if not growth or growth[-1].version != version:
        raise UsageError(f"version {version} is not published")
    return Report(
        version=version,
        generated_at=datetime.now(UTC),
        growth=growth,
        batches=q.batches(engine, version),
        outcomes=q.outcomes_per_batch(engine, version),
        categories=q.task_categories(engine, version),
        licenses=q.licenses(engine, version),
        languages=q.languages(engine, version),
        samples=q.samples(engine, version),
    )


# --- HTML -----------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
dl.figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: 0.6em; }
dl.figures div { background: #f4f6f8; border-radius: 6px; padding: 0.5em 0.8em; }
dl.figures dt { color: #555; font-size: 12px; } dl.figures dd { margin: 0; font-size: 22px; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.text { max-width: 360px; white-space: pre-wrap; word-break: break-word; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="n">{value:.6f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    return f'<td class="text">{_e(value)}</td>'


def _table(name: str, columns: list[str], rows: list[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<table data-table="{_e(name)}"><tr>{head}</tr>{body}</table>'


def _plot(name: str, svg: str, caption: str) -> str:
    return f'<figure data-plot="{_e(name)}">{svg}<figcaption>{_e(caption)}</figcaption></figure>'


def _truncate(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _outcome_stacks(report: Report) -> tuple[list[str], dict[str, list[int]]]:
    """Per batch (in order), the count of each ``entity: reason`` (largest overall first)."""
    labels = [b.label for b in report.batches]
    index = {b.batch_id: i for i, b in enumerate(report.batches)}
    stacks: dict[str, list[int]] = defaultdict(lambda: [0] * len(labels))
    for o in report.outcomes:
        stacks[f"{o.entity}: {o.reason}"][index[o.batch_id]] += o.n
    ranked = sorted(stacks.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return labels, dict(ranked)


def _shares(name: str, title: str, rows: list[q.ShareRow], what: str) -> str:
    from dynosaur.report import plots

    top = rows[:TOP]
    svg = plots.horizontal_bars(
        [r.label for r in top], [r.instances for r in top], title=title, what=what
    )
    return (
        _plot(name, svg, f"{title} (instances; the {TOP} largest)")
        + f"<details><summary>all {len(rows)}</summary>"
        + _table(
            name,
            ["label", "valid tasks", "instances"],
            [(r.label, r.tasks, r.instances) for r in rows],
        )
        + "</details>"
    )


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    from dynosaur.report import plots

    g = report.growth
    versions = [row.version for row in g]
    growth_svg = plots.growth(
        versions,
        {
            "instances": [row.total_instances for row in g],
            "valid tasks": [row.total_tasks for row in g],
            "datasets": [row.total_datasets for row in g],
        },
    )
    labels, stacks = _outcome_stacks(report)
    outcomes_svg = plots.stacked_bars(
        labels, stacks, title="Dropped per batch, by reason", ylabel="rows"
    )
    cost_svg = plots.cost(
        labels,
        [b.cost_usd for b in report.batches],
        [b.usd_per_instance or 0.0 for b in report.batches],
    )
    names = {
        "total_instances": "instances",
        "total_tasks": "valid tasks",
        "total_datasets": "datasets",
        "total_cost_usd": "LLM cost (USD)",
        "new_instances": f"new in v{report.version}: instances",
        "new_tasks": f"new in v{report.version}: tasks",
        "new_datasets": f"new in v{report.version}: datasets",
        "cost_usd": f"v{report.version} cost (USD)",
    }
    headline = report.headline()
    figures = "".join(
        f'<div><dt>{_e(label)}</dt><dd data-figure="{key}">{headline[key]:,.4f}</dd></div>'
        if isinstance(headline[key], float)
        else f'<div><dt>{_e(label)}</dt><dd data-figure="{key}">{headline[key]:,}</dd></div>'
        for key, label in names.items()
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Dynosaur collection, version {report.version}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Dynosaur collection, version "
        f'<span data-figure="version">{report.version}</span></h1>',
        f"<p class='sub'>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC from the store's "
        "views (growth, batch_summary, rejection, task_overview, collection).</p>",
        f"<dl class='figures'>{figures}</dl>",
        "<h2>Growth over versions</h2>",
        _plot("growth", growth_svg, "Running totals per version (SELECT * FROM growth)"),
        _table(
            "growth",
            [
                "version",
                "published",
                "new datasets",
                "new tasks",
                "new instances",
                "datasets",
                "tasks",
                "instances",
                "USD",
            ],
            [
                (
                    r.version,
                    f"{r.published_at:%Y-%m-%d %H:%M}",
                    r.new_datasets,
                    r.new_tasks,
                    r.new_instances,
                    r.total_datasets,
                    r.total_tasks,
                    r.total_instances,
                    r.cost_usd,
                )
                for r in g
            ],
        ),
        "<h2>Rejections and skips by reason, per batch</h2>",
        _plot("outcomes", outcomes_svg, "Skipped, failed and rejected rows per batch"),
        _table(
            "outcomes",
            ["batch", "entity", "status", "reason", "rows"],
            [
                (
                    labels[[b.batch_id for b in report.batches].index(o.batch_id)],
                    o.entity,
                    o.status,
                    o.reason,
                    o.n,
                )
                for o in report.outcomes
            ],
        ),
        "<h2>Cost per batch and per valid instance</h2>",
        _plot("cost", cost_svg, "LLM spend (SELECT * FROM batch_summary)"),
        _table(
            "batches",
            [
                "batch",
                "status",
                "datasets",
                "valid tasks",
                "rejected tasks",
                "instances",
                "LLM calls",
                "USD",
                "USD per instance",
            ],
            [
                (
                    b.label,
                    b.status,
                    b.datasets,
                    b.tasks_valid,
                    b.tasks_rejected,
                    b.instances,
                    b.llm_calls,
                    b.cost_usd,
                    b.usd_per_instance,
                )
                for b in report.batches
            ],
        ),
        "<h2>Task categories</h2>",
        _shares("categories", "Task categories", report.categories, "instances"),
        "<h2>Licenses</h2>",
        _shares("licenses", "Licenses", report.licenses, "instances"),
        "<h2>Languages</h2>",
        _shares("languages", "Languages", report.languages, "instances"),
        f"<h2>Sample instances of version {report.version}</h2>",
        _table(
            "samples",
            ["dataset", "config", "instruction", "input", "output", "license"],
            [
                (
                    s.dataset_id,
                    s.config_name,
                    _truncate(s.instruction),
                    _truncate(s.input),
                    _truncate(s.output),
                    s.license,
                )
                for s in report.samples
            ],
        ),
        "</body></html>",
    ]
    return "\n".join(parts)


def save_report(report: Report, out: Path) -> Path:
    """Write ``report`` to ``out`` (a folder, or a path without suffix: then
    ``out/report.html``), replacing an earlier one whole. Returns the file written."""
    path = out / REPORT_FILE if out.is_dir() or not out.suffix else out
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(path)
    return path


def write_report(engine: Engine, out: Path, version: int | None = None) -> Path:
    """Build and save the report of ``version`` (default: the latest); see :func:`save_report`."""
    return save_report(build_report(engine, version), out)
