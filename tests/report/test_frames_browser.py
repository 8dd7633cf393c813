"""The strip of real vs predicted frames in a real headless Chromium: the inline PNG decodes, is shown
at its scaled size without smoothing, and nothing is fetched.

Same browser set-up as ``test_browser.py`` (skipped, with the reason, without chromium,
chromium-driver or selenium). Leaves ``test-artifacts/report-frames.png`` for a human to look at.
"""

from __future__ import annotations

import base64

import pytest
from tests.report.test_browser import REPOSITORY, browser, missing_programs  # noqa: F401
from tests.report.test_frame_strip import SIZE, analysis

from roboscale.report import write_report
from roboscale.report.figures.frames import GAP_PIXELS, SHOWN_FRAME_PIXELS

pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=missing_programs() or "")

SCREENSHOT = REPOSITORY / "test-artifacts" / "report-frames.png"
STRIP_JS = """
const image = document.querySelector('#frames-wm-vq6416 img');
const box = image.getBoundingClientRect();
return {complete: image.complete, naturalWidth: image.naturalWidth, naturalHeight: image.naturalHeight,
        width: box.width, height: box.height, rendering: getComputedStyle(image).imageRendering};
"""


@pytest.fixture(scope="module")
def frames_report(browser, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("frames-report")
    write_report(analysis(), out)
    browser.get((out / "report.html").as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    return browser


def test_the_strip_is_decoded_and_shown_scaled_up(frames_report):
    strip = frames_report.execute_script(STRIP_JS)
    columns = 4  # the last real frame, then horizons 1, 5, 20
    natural = (columns * (SIZE + GAP_PIXELS) - GAP_PIXELS, 2 * SIZE + GAP_PIXELS)
    assert strip["complete"] and (strip["naturalWidth"], strip["naturalHeight"]) == natural
    assert strip["width"] >= columns * SHOWN_FRAME_PIXELS and strip["height"] >= 2 * SHOWN_FRAME_PIXELS
    assert strip["rendering"] == "pixelated"


def test_no_console_errors_and_nothing_fetched(frames_report):
    assert [entry for entry in frames_report.get_log("browser") if entry.get("level") == "SEVERE"] == []
    resources = frames_report.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [name for name in resources if not name.startswith("data:")] == []


def test_screenshot_of_the_strip(frames_report):
    from selenium.webdriver.common.by import By

    figure = frames_report.find_element(By.ID, "frames-wm-vq6416")
    frames_report.execute_script("arguments[0].scrollIntoView()", figure)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(figure.screenshot_as_base64))
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
