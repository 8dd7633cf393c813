"""World models that lose to predicting no change are flagged in the report: a red box at the top
of their group, a table of errors by horizon, and (from the analysis) a warning at the top."""

import pandas as pd

from roboscale.report.page import render_html
from roboscale.study.world_models import open_loop_analysis

RUNS = pd.DataFrame(
    {
        "run_id": ["small", "large", "unevaluated"],
        "seed": [0, 0, 0],
        "d_model": [32, 64, 96],
        "N": [4e4, 1.7e5, 4e5],
        "C": [1e10, 1e11, 1e12],
        "budget": [1e10, 1e11, 1e12],
        "loss": [3.0, 2.5, 2.2],
    }
)


def _result(*errors: tuple[int, float, float], warning: str | None) -> dict:
    horizons = [
        {"horizon": h, "predictions": 8, "mse_normalised": m, "mse": m, "persistence_mse_normalised": p}
        for h, m, p in errors
    ]
    worse = [h for h, m, p in errors if m > p]
    return {"horizons": horizons, "worse_than_persistence_at": worse, "persistence_warning": warning}


LOSING = "worse than predicting no change at horizon 1: normalised MSE 2.29 vs 0.0046"
OPEN_LOOP = {
    "small": _result((1, 0.003, 0.0046), (5, 0.04, 0.1), warning=None),
    "large": _result((1, 2.29, 0.0046), (5, 0.05, 0.1), warning=LOSING),
}


def test_the_analysis_counts_the_models_that_lose_and_names_the_largest_budget_one():
    section = open_loop_analysis(RUNS, OPEN_LOOP, "wm · uniform:256@4")
    assert section["evaluated"] == 2 and section["worse"] == 1
    assert [run["run_id"] for run in section["runs"]] == ["small", "large"]  # by budget
    assert [run["worse_than_persistence_at"] for run in section["runs"]] == [[], [1]]
    assert section["warning"] == (
        "wm · uniform:256@4: 1 of 2 world model(s) evaluated open-loop are worse than predicting that nothing "
        f"moves; the largest-budget one (large, d_model 64) is {LOSING}"
    )
    assert open_loop_analysis(RUNS, {}, "wm") is None
    winners = open_loop_analysis(RUNS, {"small": OPEN_LOOP["small"]}, "wm")
    assert winners["worse"] == 0 and winners["warning"] is None


def _page(open_loop: dict) -> str:
    group = {"task": "wm", "tokenizer": "uniform:256@4", "label": "wm · uniform:256@4"}
    group["open_loop"] = open_loop_analysis(RUNS, open_loop, group["label"])
    return render_html({"groups": [group], "runs": [], "curves": []})


def test_the_page_flags_the_losing_model_at_the_top_of_its_group_and_in_its_table():
    page = _page(OPEN_LOOP)
    assert "1 of 2 world model(s) evaluated open-loop are worse than predicting that nothing moves." in page
    assert f"large (d_model 64): {LOSING}" in page
    start = page.index("World model against predicting no change")
    table = page[start : page.index("</table>", start)]
    assert table.count("<tr>") == 1 + 4  # header, then 2 runs x 2 horizons
    assert table.count('<span class="error">no</span>') == 1
    assert "<td>2.29</td>" in table and "<td>0.0046</td>" in table


def test_a_page_where_every_model_wins_has_no_box():
    page = _page({"small": OPEN_LOOP["small"]})
    assert "worse than predicting" not in page
    assert page.count('<span class="error">no</span>') == 0 and "World model against predicting no change" in page


def test_the_study_headline_says_how_many_world_models_lose():
    from roboscale.cli.study import open_loop_headline

    losing = open_loop_analysis(RUNS, OPEN_LOOP, "wm")
    assert open_loop_headline(losing) == (
        "  [bold red]1 of 2 world model(s) are worse than predicting that nothing moves[/bold red] "
        "(open loop; see the report)"
    )
    winners = open_loop_analysis(RUNS, {"small": OPEN_LOOP["small"]}, "wm")
    assert open_loop_headline(winners) == (
        "  all 1 world model(s) evaluated beat predicting that nothing moves (open loop)"
    )
    assert open_loop_headline(None) is None
