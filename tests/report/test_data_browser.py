"""The report's data section in a real headless Chromium: the recommendation and every data figure are visible.

Same browser set-up as ``test_browser.py`` (skipped, with the reason, without chromium,
chromium-driver or selenium). Leaves ``test-artifacts/report-data.png`` for a human to look at.
"""

from __future__ import annotations

import base64

import pytest
from tests.report.test_browser import FIGURE_BOXES_JS, REPOSITORY, browser, missing_programs  # noqa: F401
from tests.study.simulated_data_axes import one_width_data_axes

from roboscale.report import write_report
from roboscale.report.data_section import RECOMMENDATION_ID, SECTION_ID

pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=missing_programs() or "")

SCREENSHOT = REPOSITORY / "test-artifacts" / "report-data.png"
DATA_FIGURES = [
    "fig-data-amount-loss",
    "fig-data-amount-success",
    "fig-data-diversity-heldoutloss",
    "fig-data-diversity-loss",
    "fig-data-repetition",
    "fig-data-quality",
    "fig-data-mixture",
]


@pytest.fixture(scope="module")
def data_report(browser, tmp_path_factory):  # noqa: F811
    """The browser with a report holding only a data section open from a file:// URL."""
    analysis = {"title": "Data axes: simulated", "runs": [], "curves": [], "groups": []}
    out = tmp_path_factory.mktemp("data-report")
    write_report({**analysis, "data_axes": one_width_data_axes()}, out)
    browser.get((out / "report.html").as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    return browser


def test_no_console_errors_and_nothing_fetched(data_report):
    assert [entry for entry in data_report.get_log("browser") if entry.get("level") == "SEVERE"] == []
    assert data_report.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_the_recommendation_is_the_visible_headline(data_report):
    from selenium.webdriver.common.by import By

    box = data_report.find_element(By.ID, RECOMMENDATION_ID)
    assert box.is_displayed()
    assert box.text.startswith("The next 1,000 episodes are worth most as cleaner demonstrations")
    section = data_report.find_element(By.ID, SECTION_ID)
    first_figure = section.find_element(By.TAG_NAME, "figure")
    assert box.location["y"] < first_figure.location["y"]  # the headline comes before the figures
    assert data_report.find_element(By.CSS_SELECTOR, f'nav a[href="#{SECTION_ID}"]').is_displayed()


def test_every_data_figure_is_drawn(data_report):
    boxes = {box["id"]: box for box in data_report.execute_script(FIGURE_BOXES_JS)}
    assert sorted(boxes) == sorted(DATA_FIGURES)
    for figure_id, box in boxes.items():
        assert not box["unavailable"] and box["width"] > 400 and box["height"] > 250, (figure_id, box)


def test_tables_show_the_exponents_and_marginal_values(data_report):
    from selenium.webdriver.common.by import By

    exponents = data_report.find_element(By.CSS_SELECTOR, "table.data-exponents")
    assert exponents.is_displayed() and "held-out-task loss" in exponents.text
    marginal = data_report.find_element(By.CSS_SELECTOR, "table.data-marginal").text
    assert "cleaner demonstrations" in marginal and "20 new tasks" in marginal


def test_screenshot_of_the_data_section(data_report):
    metrics = data_report.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1}
    shot = data_report.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.stat().st_size > 50_000
