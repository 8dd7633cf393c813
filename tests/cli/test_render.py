"""Terminal output of fits and studies: nothing cut, every count explained."""

import numpy as np
from rich.console import Console

from roboscale.cli import render
from roboscale.cli.study import forecast_check_table, group_headline
from roboscale.fit import FrontierFit

ONE_SIZE = "had one model size holding the whole frontier"


def printed(*renderables, width: int = 100) -> str:
    console = Console(width=width, record=True)
    for item in renderables:
        console.print(item)
    return console.export_text()


def frontier_fit(**overrides) -> FrontierFit:
    points = np.array([1e12, 1e13, 1e14, 1e15])
    values = {
        "E": 0.0,
        "A": 1092.0,
        "alpha": 0.1538,
        "a": 0.49,
        "b": 0.51,
        "k_N": 1.0,
        "k_D": 1.0,
        "frontier_C": points,
        "frontier_loss": np.array([4.0, 3.5, 3.0, 2.6]),
        "frontier_N": np.array([1e6, 1e6, 1e7, 1e8]),
        "frontier_D": points / 6e7,
        "n_runs": 4,
        "E_at_lower_bound": True,
        "E_at_lower_bound_resamples": 98,
        "ci": {"E": (0.0, 2.244), "alpha": (0.1231, 0.2898)},
        "bootstrap": 200,
        "bootstrap_converged": 190,
        "bootstrap_dropped": {ONE_SIZE: 10},
    }
    return FrontierFit(**{**values, **overrides})


def test_a_frontier_floor_at_its_bound_and_left_out_resamples_are_explained():
    text = " ".join(printed(render.frontier(frontier_fit()), width=200).split())
    assert "95% CI (190 of 200 resamples)" in text
    assert "at the lower bound 0: the frontier shows no floor (nor do 98 of 190 resamples)" in text
    assert f"resamples left out: 10 {ONE_SIZE}" in text


def test_a_floor_inside_and_no_resample_left_out_add_nothing():
    fit = frontier_fit(
        E=1.7, E_at_lower_bound=False, E_at_lower_bound_resamples=0, bootstrap_converged=200, bootstrap_dropped={}
    )
    text = printed(render.frontier(fit), width=200)
    assert "lower bound" not in text and "left out" not in text and "(200 of 200 resamples)" in text


LONG_REASON = (
    "2 of 3 budgets usable: a parabola needs 3 model sizes per budget, and the optimum of 6e10 FLOPs "
    "sits at the smallest width of the sweep, so its minimum is not bracketed by the sizes trained"
)


def test_a_long_isoflop_error_is_printed_whole_and_wrapped():
    group = {
        "label": "bc · uniform:64",
        "task": "bc",
        "tokenizer": "uniform:64",
        "isoflop": {"error": LONG_REASON},
        "audit": {},
        "verdict": {"status": "unchecked"},
    }
    line = group_headline(group, [{"status": "finished", "task": "bc", "tokenizer": "uniform:64"}])
    assert f"IsoFLOP fit not possible ({LONG_REASON})" in line
    text = printed(line, width=80)
    assert max(len(row) for row in text.splitlines()) <= 80 and " ".join(text.split()).count(LONG_REASON) == 1


def test_a_long_forecast_error_is_wrapped_in_its_cell_not_cut():
    group = {
        "label": "bc",
        "forecast_check": {"held_out_budgets": [6e11], "laws": {"frontier": {"error": LONG_REASON}}},
    }
    text = printed(forecast_check_table(group), width=100)
    # The old cut at 80 characters ended the cell at "and the optimum".
    for word in LONG_REASON.split():
        assert word in text
