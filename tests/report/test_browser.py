"""The report in a real headless Chromium: no console errors, no network, every figure drawn.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium``
package; skipped (with the reason) when one is missing. Leaves a full-page
screenshot at ``test-artifacts/report.png`` in the repository for a human to look at.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path

import pytest

from roboscale.report import FIGURE_KINDS, group_slugs

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOT = REPOSITORY / "test-artifacts" / "report.png"
WINDOW = (1440, 1000)
"""Browser window in CSS pixels: wide enough for two 640-pixel figures side by side."""

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


def missing_programs() -> str | None:
    """Why the browser cannot run here, or None."""
    missing = [
        f"{program} (Debian package {package})"
        for program, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"))
        if not program.exists()
    ]
    return f"not installed: {', '.join(missing)}; apt-get install -y chromium chromium-driver" if missing else None


pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=missing_programs() or "")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

FIGURE_BOXES_JS = """
return Array.from(document.querySelectorAll('figure')).map(figure => {
  const svg = figure.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : null;
  return {id: figure.id, unavailable: figure.classList.contains('unavailable'),
          width: box ? box.width : 0, height: box ? box.height : 0};
});
"""


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium driven by chromedriver, with a fresh profile and browser logging."""
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="roboscale-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def opened_report(browser, report_dir):
    """The browser with report.html open from a file:// URL."""
    browser.get((report_dir / "report.html").as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    return browser


def test_no_severe_console_messages(opened_report):
    severe = [entry for entry in opened_report.get_log("browser") if entry.get("level") == "SEVERE"]
    assert severe == []


def test_nothing_is_fetched(opened_report):
    resources = opened_report.execute_script("return performance.getEntriesByType('resource').map(entry => entry.name)")
    assert resources == []


def test_every_figure_is_drawn_with_a_visible_svg(opened_report, analysis):
    boxes = {box["id"]: box for box in opened_report.execute_script(FIGURE_BOXES_JS)}
    expected = [f"fig-{kind}-{slug}" for slug in group_slugs(analysis["groups"]) for kind in FIGURE_KINDS]
    assert sorted(boxes) == sorted(expected)
    unavailable = {figure_id for figure_id, box in boxes.items() if box["unavailable"]}
    assert unavailable == {"fig-isoflop-bc-continuous"}  # its fit failed: the error is shown instead
    for figure_id in set(expected) - unavailable:
        box = boxes[figure_id]
        assert box["width"] > 400 and box["height"] > 250, (figure_id, box)


def test_two_figures_per_row_on_a_wide_screen(opened_report):
    tops = opened_report.execute_script(
        "return ['fig-isoflop-bc-uniform256', 'fig-loss-compute-bc-uniform256']"
        ".map(id => document.getElementById(id).getBoundingClientRect().top)"
    )
    assert tops[0] == tops[1]


def test_full_page_screenshot(opened_report):
    metrics = opened_report.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics["cssContentSize"]
    shot = opened_report.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1},
        },
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert SCREENSHOT.stat().st_size > 50_000
    assert content["height"] > 3 * WINDOW[1]  # the whole page, not just the first screen
