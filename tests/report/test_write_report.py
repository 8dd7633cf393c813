"""write_report: both files, the page's figures and tables, failed fits and runs, no network."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from roboscale.fit import IsoFlopProfile
from roboscale.report import FIGURE_KINDS, group_slugs, render_html, write_report
from roboscale.report.analysis import group_data
from roboscale.report.figures.allocation import DATA_SIZE, MODEL_SIZE, power_law
from roboscale.report.figures.isoflop import isoflop_panel, parabola
from roboscale.report.formatting import number
from roboscale.report.plotting import LABEL_C, LABEL_D, LABEL_LOSS, LABEL_N

SLUGS = ["bc-uniform256", "wm-uniform256", "bc-continuous"]


@pytest.fixture(scope="module")
def page(report_dir) -> str:
    return (report_dir / "report.html").read_text(encoding="utf-8")


def figure_blocks(page: str) -> dict[str, str]:
    """Each <figure>'s markup by its id."""
    return dict(re.findall(r'<figure id="([^"]+)"[^>]*>(.*?)</figure>', page, flags=re.DOTALL))


def sparse_analysis(title: str = "Nothing fitted") -> dict:
    """One group, no finished run and every fit failed: the least a report can get."""
    return {
        "title": title,
        "study": {},
        "runs": [{"run_id": "r1", "status": "running", "task": "bc", "tokenizer": "uniform:8", "budget": 1e12}],
        "curves": [],
        "groups": [
            {
                "task": "bc",
                "tokenizer": "uniform:8",
                "label": "bc · uniform:8",
                "n_runs": 1,
                "n_failed": 0,
                "isoflop": {"error": "1 distinct model size(s)"},
                "frontier": {"error": "no curves"},
                "parametric": {"error": "too few runs"},
                "compute_optimal": {},
                "audit": {},
                "recommendation": None,
            }
        ],
        "published": [],
        "warnings": [],
    }


def test_writes_both_files_and_leaves_no_temporary_file(report_dir):
    assert (report_dir / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in report_dir.iterdir()) == ["report.html", "report.json"]


def test_creates_the_folder_and_returns_the_html_path(tmp_path):
    out = tmp_path / "new" / "folder"
    assert write_report(sparse_analysis(), out) == out / "report.html"
    assert (out / "report.json").is_file()


def test_json_round_trips_to_the_analysis(analysis, report_dir):
    text = (report_dir / "report.json").read_text(encoding="utf-8")
    assert json.loads(text) == analysis
    assert text.startswith('{\n  "title"')  # indented


def test_rewriting_replaces_the_old_report(tmp_path):
    write_report(sparse_analysis("First version"), tmp_path)
    write_report(sparse_analysis("Second version"), tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["title"] == "Second version"
    assert "<title>Second version</title>" in (tmp_path / "report.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]


def test_not_json_ready_analysis_is_refused_before_writing(analysis, tmp_path):
    broken = copy.deepcopy(analysis)
    broken["groups"][0]["isoflop"]["a"] = float("nan")
    with pytest.raises(ValueError, match=r"analysis\['groups'\]\[0\]\['isoflop'\]\['a'\]"):
        write_report(broken, tmp_path / "out")
    broken["groups"][0]["isoflop"]["a"] = np.int64(3)
    with pytest.raises(ValueError, match="not JSON-ready"):
        write_report(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_page_loads_nothing_from_the_network(page):
    assert "<script" not in page
    assert "<link" not in page
    assert page.count("<style") == 1  # the page's own; matplotlib's is taken out of each SVG
    assert not re.search(r"<(img|iframe|object|embed|video|audio)\b", page)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page)
    assert not re.search(r"\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", page)
    # The only URLs left are the SVG namespace names, which are never fetched.
    for match in re.finditer(r"https?://[^\s\"'<>]*", page):
        assert page[max(0, match.start() - 20) : match.start()].rstrip('"').split()[-1].startswith("xmlns"), match[0]


def test_every_group_has_all_its_figures(analysis, page):
    assert group_slugs(analysis["groups"]) == SLUGS
    figures = figure_blocks(page)
    expected = [f"fig-{kind}-{slug}" for slug in SLUGS for kind in FIGURE_KINDS]
    assert list(figures) == expected
    assert len(set(re.findall(r'\bid="([^"]+)"', page))) == len(re.findall(r'\bid="([^"]+)"', page))  # unique ids
    for figure_id, block in figures.items():
        assert "<figcaption>" in block, figure_id
        if figure_id != "fig-isoflop-bc-continuous":
            assert block.count("<svg") == 1, figure_id


def test_failed_isoflop_fit_shows_its_error_and_keeps_the_other_figures(analysis, page):
    error = analysis["groups"][2]["isoflop"]["error"]
    assert error.startswith("0 usable IsoFLOP profile(s)")
    figures = figure_blocks(page)
    failed = figures["fig-isoflop-bc-continuous"]
    assert "<svg" not in failed
    assert "lowest loss at the largest model size: the minimum is not bracketed" in failed
    assert 'class="unavailable"' in page
    for kind in FIGURE_KINDS[1:]:
        assert "<svg" in figures[f"fig-{kind}-bc-continuous"], kind
    # The summary row says why, the allocation figures name the missing method.
    assert "IsoFLOP: 0 usable IsoFLOP profile(s)" in figures["fig-optimal-n-bc-continuous"]


def test_failed_run_and_its_error_appear(page):
    section = page[page.index('id="failed-runs"') :]
    assert "bc-continuous-failed" in section
    assert "RunDivergedError: loss became NaN at step 412" in section
    assert "bc-continuous-planned" in page[page.index('id="runs"') :]


def test_axis_labels_with_units_are_svg_text(page):
    for label in (LABEL_N, LABEL_D, LABEL_C, LABEL_LOSS):
        assert re.search(rf"<text[^>]*>{re.escape(label)}</text>", page), label
    assert "10¹⁵" in page  # log ticks as plain text, not paths


def test_summary_shows_the_fitted_numbers(analysis, page):
    summary = page[page.index('id="summary"') : page.index('id="group-')]
    bc = analysis["groups"][0]
    low, high = bc["isoflop"]["ci"]["a"]
    assert f"{number(bc['isoflop']['a'])} [{number(low)}, {number(high)}]" in summary
    assert number(bc["parametric"]["alpha"]) in summary
    assert f"parametric: {100 * bc['audit']['parametric']['mean_abs_relative_error']:.2f}%" in summary
    assert f"d_model {bc['recommendation']['d_model']}" in summary
    assert summary.count("<tr>") == 1 + len(SLUGS)


def test_warnings_are_escaped_in_a_box_before_the_summary(page):
    box = page.index('class="warnings"')
    assert box < page.index('id="summary"')
    assert "forecasts are uncertain &lt;check&gt;" in page


def test_published_exponents_sit_beside_the_fitted_ones(analysis, page):
    section = page[page.index('id="exponents"') : page.index('id="failed-runs"')]
    assert "Hoffmann et al. 2022" in section and "0.46–0.5" in section
    assert f"bc · uniform:256 · IsoFLOP</td><td>{number(analysis['groups'][0]['isoflop']['a'])}" in section


def test_unusable_and_flat_profiles_are_named_in_the_caption(analysis):
    changed = copy.deepcopy(analysis)
    profiles = changed["groups"][0]["isoflop"]["profiles"]
    unusable = [profile for profile in profiles if not profile["usable"]]
    assert [profile["C"] for profile in unusable] == [3e13]  # the fixture's budget with two model sizes
    assert unusable[0]["reason"] == "2 model size(s): a parabola needs 3"
    profiles[1]["flat"] = True
    panel = isoflop_panel(group_data(changed)[0])
    assert "Left out of the fit: 3e13 FLOPs: 2 model size(s): a parabola needs 3." in panel.caption
    assert f"Flat profiles (hollow vertex, minimum not resolved by the data): {number(profiles[1]['C'])} FLOPs" in (
        panel.caption
    )
    assert ">flat profile: minimum not resolved</text>" in panel.svg
    assert ">C = 3e13 FLOPs (not used)</text>" in panel.svg


def test_parabolas_are_the_fitted_profiles(analysis):
    for profile in analysis["groups"][0]["isoflop"]["profiles"]:
        if not profile["usable"]:
            continue
        fitted = IsoFlopProfile(**profile)
        N = np.geomspace(*profile["window"], 7)
        np.testing.assert_allclose(parabola(profile, N), fitted.predict(N), rtol=1e-12)


def test_parametric_allocation_line_passes_through_its_forecasts(analysis):
    data = group_data(analysis)[0]
    rows = data.group["compute_optimal"]["parametric"]["budgets"]
    without_table = copy.deepcopy(data)
    without_table.group["compute_optimal"].pop("parametric")
    for quantity in (MODEL_SIZE, DATA_SIZE):
        for source in (data, without_table):  # read off the table, or the closed form
            prefactor, exponent = power_law(source, "parametric", quantity)
            C = np.array([row["C"] for row in rows])
            expected = [row[quantity.optimum] for row in rows]
            np.testing.assert_allclose(prefactor * C**exponent, expected, rtol=1e-9)


def test_a_non_physical_parametric_law_draws_no_allocation_line(analysis):
    data = copy.deepcopy(group_data(analysis)[0])
    data.group["compute_optimal"].pop("parametric")
    data.group["parametric"]["alpha"] = -0.2  # loss rising with model size: no optimum exists
    for quantity in (MODEL_SIZE, DATA_SIZE):
        assert power_law(data, "parametric", quantity) is None
    broken = copy.deepcopy(analysis)
    broken["groups"][0]["parametric"]["alpha"] = -0.2
    broken["groups"][0]["compute_optimal"].pop("parametric")
    assert "<svg" in render_html(broken)  # and the page still renders


def test_a_sparse_analysis_still_renders():
    page = render_html(sparse_analysis())
    figures = figure_blocks(page)
    assert len(figures) == len(FIGURE_KINDS)
    assert "<svg" not in page
    assert "1 distinct model size(s)" in figures["fig-isoflop-bc-uniform8"]
    assert "too few runs" in figures["fig-parity-bc-uniform8"]
    assert "No run failed." in page


def test_report_imports_no_training_code_and_no_pyplot():
    code = (
        "import sys, roboscale.report; "
        "bad = [m for m in sys.modules if m in ('torch', 'matplotlib.pyplot') "
        "or m.startswith(('torch.', 'roboscale.train'))]; "
        "print(bad); assert not bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
