"""The report as a person sees it: headless Chromium opens the page of a grown store (versions
1-3, the demo's days), every plot is drawn, the figures on the page are the views' figures, and
a screenshot is kept in the test's temporary folder.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when
absent) and selenium (the ``dev`` extra); skipped, saying which is missing, without them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dynosaur.report import write_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
PLOTS = ["growth", "outcomes", "cost", "categories", "licenses", "languages"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium driven through chromedriver (never downloaded: the system's own)."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "headless Chromium is not installed: apt-get install chromium chromium-driver "
            "(.ci/run does it when it can)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


# What the page shows of each plot, measured by the browser after layout.
_MEASURE = """
return Array.from(document.querySelectorAll('figure[data-plot]')).map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {name: f.dataset.plot, width: box.width, height: box.height,
          shapes: svg ? svg.querySelectorAll('path, rect, use, text').length : 0};
});
"""
_FIGURES = """
const out = {};
document.querySelectorAll('[data-figure]').forEach(e => out[e.dataset.figure] = e.textContent);
return out;
"""


def test_the_report_of_version_3_renders_every_plot_and_the_views_figures(
    grown: Engine, browser: Any, tmp_path: Path
) -> None:
    page = write_report(grown, tmp_path, 3)
    browser.get(page.as_uri())
    assert browser.title == "Dynosaur collection, version 3"

    plots = browser.execute_script(_MEASURE)
    assert [p["name"] for p in plots] == PLOTS
    for plot in plots:
        assert plot["width"] > 100 and plot["height"] > 50, plot
        assert plot["shapes"] > 10, plot  # axes, ticks, marks: drawn, not an empty frame

    shown = browser.execute_script(_FIGURES)
    with grown.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM growth WHERE version = 3")).one()
    assert shown["version"] == "3"
    assert shown["total_instances"] == f"{row.total_instances:,}"
    assert shown["total_tasks"] == f"{row.total_tasks:,}"
    assert shown["total_datasets"] == f"{row.total_datasets:,}"
    assert shown["new_instances"] == f"{row.new_instances:,}"
    assert shown["total_cost_usd"] == f"{float(row.total_cost_usd):,.4f}"
    assert row.total_instances > 0

    # The sample table holds instances of version 3, as the collection has them.
    outputs = browser.execute_script(
        "return Array.from(document.querySelectorAll('table[data-table=samples] tr'))"
        ".slice(1).map(r => r.cells[4].textContent)"
    )
    with grown.connect() as conn:
        newest = set(
            conn.execute(sa.text("SELECT output FROM collection WHERE version = 3")).scalars()
        )
    assert outputs and all(o in newest for o in outputs if not o.endswith("…"))

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height), 8000))
    shot = tmp_path / "report-v3.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
