"""`roboscale fit power-law` on any table and `roboscale fit data-constrained`, through the real command."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.cli.test_bad_input_cli import assert_one_line_exit_2
from tests.helpers import run_cli as roboscale

ANCHOR = Path(__file__).parents[1] / "fixtures" / "muennighoff2023_runs_fit182.csv"


def _table(tmp_path, name: str, **columns) -> str:
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return str(path)


def test_power_law_fits_a_gap_against_tasks_in_log_log_space(tmp_path):
    n_tasks = np.repeat([2, 4, 8, 16, 32], 2)
    gap = 0.8 * n_tasks**-0.4 * np.exp(np.tile([0.03, -0.03], 5))  # symmetric noise: the line is exact
    path = _table(tmp_path, "gap.csv", n_tasks=n_tasks, gap=gap, env=["a", "b"] * 5)
    result = roboscale("fit", "power-law", path, "--x", "n_tasks", "--y", "gap", "--bootstrap", "50", "--json")
    assert result.returncode == 0, result.stderr
    law = json.loads(result.stdout)
    assert law["law"] == "gap = A * n_tasks^-alpha" and law["fitted_by"] == "least squares in log-log space"
    assert (law["A"], law["alpha"], law["E"]) == pytest.approx((0.8, 0.4, 0.0), rel=1e-9)
    assert law["objective"] == pytest.approx(10 * 0.03**2, rel=1e-9)  # sum of squared log residuals
    assert law["ci"]["alpha"][0] <= 0.4 <= law["ci"]["alpha"][1] and law["n_points"] == 10
    assert law["runs"] == {"source": path, "n_runs": 10, "columns": {}, "dropped": {}}

    grouped = roboscale("fit", "power-law", path, "--x", "n_tasks", "--y", "gap", "--group", "env", "--json")
    results = json.loads(grouped.stdout)["results"]
    assert set(results) == {"a", "b"} and results["a"]["alpha"] == pytest.approx(0.4, rel=1e-9)

    text = roboscale("fit", "power-law", path, "--x", "n_tasks", "--y", "gap", "--floor", "--bootstrap", "0")
    assert text.returncode == 0, text.stderr
    assert "gap = E + A * n_tasks^-alpha" in text.stdout and "Huber" in text.stdout


def test_power_law_refuses_bad_axes_in_one_line(tmp_path):
    # (the API's messages for non-positive values are tested in tests/fit/test_power_law.py)
    path = _table(tmp_path, "t.csv", n_tasks=[2, 2, 4, 4], gap=[0.6, 0.5, 0.4, 0.3], env=["a", "b", "c", "d"])
    levels = roboscale("fit", "power-law", path, "--x", "n_tasks", "--y", "gap")
    assert_one_line_exit_2(levels, "needs at least 3 distinct values of n_tasks, got 2: add levels")
    unknown = roboscale("fit", "power-law", path, "--x", "n_tasks", "--y", "gapp")
    assert_one_line_exit_2(unknown, "'gapp' (given with --y) is not in " + path + "; numeric columns: n_tasks, gap")
    text = roboscale("fit", "power-law", path, "--x", "n_tasks", "--y", "env")
    assert_one_line_exit_2(text, "'env' (given with --y) of " + path + " is not numeric; numeric columns: n_tasks, gap")


def test_drop_invalid_leaves_out_non_positive_points_and_counts_them(tmp_path):
    path = _table(tmp_path, "t.csv", n=[1, 2, 4, 8, 16], y=[1.0, 0.5, 0.25, 0.0, 1 / 16])
    law = json.loads(roboscale("fit", "power-law", path, "--x", "n", "--y", "y", "--drop-invalid", "--json").stdout)
    assert law["alpha"] == pytest.approx(1.0, rel=1e-9) and law["runs"]["dropped"] == {"zero or negative n or y": 1}


def test_data_constrained_on_the_papers_runs(tmp_path):
    result = roboscale("fit", "data-constrained", str(ANCHOR), "--stage1", "published", "--bootstrap", "0", "--json")
    assert result.returncode == 0, result.stderr
    fit = json.loads(result.stdout)
    assert fit["objective"] <= 0.0158259 and fit["runs"]["n_runs"] == 182
    pairs = [(round(o["R_D_star"], 1), round(o["R_N_star"], 1)) for o in fit["optima"]]
    assert (15.4, 5.3) in pairs and (47.0, 2.3) in pairs
    refused = roboscale("fit", "data-constrained", str(ANCHOR))
    assert_one_line_exit_2(refused, "the stage-1 law lacks E, A, B, alpha, beta")
