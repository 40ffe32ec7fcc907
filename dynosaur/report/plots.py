"""The report's plots, drawn with matplotlib (no display: the Agg backend) as inline SVG.

Every function returns one ``<svg>`` element as text; a plot without data still draws its axes
with a "no data" note, so the page always has every figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1f3b73",
    "#a0522d",
    "#2ca02c",
    "#8c564b",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#d62728",
    "#9467bd",
    "#aec7e8",
)


def _figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    return fig, list(axes)


def _svg(fig: Figure) -> str:
    import matplotlib

    buf = io.StringIO()
    # No date and ids derived from the content: the same store gives the same page (and the
    # ids of the page's several SVGs only coincide where their definitions do).
    with matplotlib.rc_context({"svg.hashsalt": "dynosaur"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _integer_ticks() -> MaxNLocator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def growth(
    versions: Sequence[int],
    series: Mapping[str, Sequence[int]],
) -> str:
    """One panel per running total (instances, tasks, datasets) over the versions."""
    fig, axes = _figure(10, 3, len(series))
    for ax, (title, values), color in zip(axes, series.items(), PALETTE, strict=False):
        if not versions:
            _no_data(ax, "version")
        else:
            ax.plot(list(versions), list(values), marker="o", color=color)
            ax.set_xticks(list(versions), [f"v{v}" for v in versions])
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_locator(_integer_ticks())
            ax.grid(alpha=0.3)
        ax.set_title(title)
    return _svg(fig)


def stacked_bars(
    labels: Sequence[str],
    stacks: Mapping[str, Sequence[int]],
    *,
    title: str,
    ylabel: str,
) -> str:
    """Bars per label (batch), stacked by key (reason), with a legend."""
    fig, (ax,) = _figure(10, 3.6)
    if not labels or not stacks:
        _no_data(ax, "rejections or skips")
    else:
        bottom = [0] * len(labels)
        for i, (key, values) in enumerate(stacks.items()):
            ax.bar(
                list(labels),
                list(values),
                bottom=bottom,
                label=key,
                color=PALETTE[i % len(PALETTE)],
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_locator(_integer_ticks())
        ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    return _svg(fig)


def cost(labels: Sequence[str], per_batch: Sequence[float], per_instance: Sequence[float]) -> str:
    """Two panels: LLM cost per batch and per valid instance (USD)."""
    fig, (left, right) = _figure(10, 3, 2)
    if not labels:
        _no_data(left, "batch")
        _no_data(right, "batch")
    else:
        left.bar(list(labels), list(per_batch), color=PALETTE[0])
        right.bar(list(labels), list(per_instance), color=PALETTE[1])
        for ax in (left, right):
            ax.grid(axis="y", alpha=0.3)
            ax.tick_params(axis="x", labelrotation=30)
    left.set_title("USD per batch")
    right.set_title("USD per valid instance")
    return _svg(fig)


def horizontal_bars(labels: Sequence[str], values: Sequence[int], *, title: str, what: str) -> str:
    """A ranked bar chart (largest on top)."""
    height = max(2.0, 0.3 * len(labels) + 1)
    fig, (ax,) = _figure(7, height)
    if not labels:
        _no_data(ax, what)
    else:
        ax.barh(list(labels)[::-1], list(values)[::-1], color=PALETTE[0])
        ax.set_xlabel(what)
        ax.grid(axis="x", alpha=0.3)
    ax.set_title(title)
    return _svg(fig)
