"""Bad input to the fit library: one BadInputError line naming the option, before any work."""

import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import (
    audit_extrapolation,
    fit_broken_power_law,
    fit_frontier,
    fit_isoflop,
    fit_parametric,
    fit_power_law,
    isoflop_profiles,
    load_runs,
    simulate_isoflop_runs,
    simulate_learning_curves,
)

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
MISSING = "no-such-runs-file.csv"  # reading it would fail: a seed error proves nothing was read


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64 + 5])
@pytest.mark.parametrize(
    "fit",
    [
        lambda seed: fit_parametric(MISSING, seed=seed),
        lambda seed: fit_isoflop(MISSING, seed=seed),
        lambda seed: fit_frontier(MISSING, seed=seed),
        lambda seed: audit_extrapolation(MISSING, seed=seed),
        lambda seed: isoflop_profiles(MISSING, seed=seed),
        lambda seed: fit_power_law([1.0], [1.0], seed=seed),  # too few points: checked after the seed
        lambda seed: fit_broken_power_law([1.0], [1.0], seed=seed),
    ],
)
def test_a_seed_outside_0_to_2_63_is_refused_first(fit, seed):
    with pytest.raises(BadInputError, match=rf"^--seed {seed}: a seed must be an integer from 0 to 2\^63 - 1$"):
        fit(seed)


def test_max_iter_below_one_is_bad_input_not_a_convergence_failure():
    with pytest.raises(BadInputError, match=r"^--max-iter 0: .*at least 1 iteration"):
        fit_parametric(MISSING, max_iter=0)


def test_window_message_says_0_for_all_as_the_command_line_does():
    with pytest.raises(BadInputError, match=r"^--window -1: .*\(or 0 for all\)$"):
        fit_isoflop(MISSING, window=-1)


def test_holding_out_more_decades_than_the_curves_cover_is_refused():
    curves = simulate_learning_curves(**TRUTH, model_sizes=np.geomspace(1e6, 1e9, 5), max_flops=1e21)
    span = np.log10(curves["C"].max() / curves["C"].min())
    with pytest.raises(BadInputError, match=rf"^--holdout-decades 50: .*below the {span:.3g} decades"):
        audit_extrapolation(curves, "frontier", holdout_decades=50, bootstrap=0)
    with pytest.raises(BadInputError, match="--holdout-decades 0:"):
        audit_extrapolation(curves, "frontier", holdout_decades=0, bootstrap=0)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # The header is line 1, so the second data row is line 3.
        ("text.csv", "N,D,loss\n1e6,1e9,3\n2e6,1e9,abc\n4e6,1e9,2.5\n", "line 3, column 'loss', has 'abc'"),
        ("ragged.csv", "N,D,loss\n1e6,1e9,3\n2e6,1e9,2.8\n4e6,1e9\n", "line 4, column 'loss', has no value"),
        ("negative.tsv", "params\tD\tloss\n1e6\t1e9\t3\n-2e6\t1e9\t2.8\n", "line 3, column 'params', has -2000000.0"),
        ("rows.jsonl", '{"N": 1e6, "D": 1e9, "loss": 3}\n{"N": 2e6, "D": 0, "loss": 2}\n', "line 2, column 'D', has 0"),
    ],
)
def test_a_bad_cell_is_named_by_its_line_column_and_text(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(BadInputError, match="have an invalid") as error:
        load_runs(path)
    assert expected in str(error.value)
    assert "nan" not in str(error.value)


def test_a_bad_cell_of_a_data_frame_is_named_by_its_index_label():
    frame = pd.DataFrame({"N": [1e6, 2e6], "D": [1e9, 1e9], "loss": [3.0, "x"]}, index=["small", "large"])
    with pytest.raises(BadInputError, match=r"row 'large', column 'loss', has 'x'"):
        load_runs(frame)


def test_frontier_says_why_resamples_were_dropped():
    # Three model sizes: many resamples draw one size only, whose curve alone
    # holds the whole frontier.
    curves = simulate_learning_curves(**TRUTH, model_sizes=[1e6, 1e7, 1e8], max_flops=1e20, noise=0.01, seed=0)
    fit = fit_frontier(curves, bootstrap=200, seed=0)
    assert fit.bootstrap_converged < 200
    assert sum(fit.bootstrap_dropped.values()) == 200 - fit.bootstrap_converged
    assert fit.bootstrap_dropped.get("had one model size holding the whole frontier", 0) > 0
    assert fit.bootstrap_summary.startswith(f"{fit.bootstrap_converged} of 200 resamples (")
    assert fit.to_dict()["bootstrap_dropped"] == fit.bootstrap_dropped


def test_a_fit_that_kept_every_resample_reports_no_drops():
    runs = simulate_isoflop_runs(**TRUTH, budgets=np.geomspace(1e18, 1e20, 3), model_sizes=np.geomspace(1e7, 1e10, 9))
    fit = fit_parametric(runs, bootstrap=20, seed=0)
    assert fit.bootstrap_converged == 20 and fit.bootstrap_dropped == {}
    assert "bootstrap_dropped" not in fit.to_dict()
    assert fit.bootstrap_summary == "20 of 20 resamples"


def test_too_few_grid_points_is_refused_before_the_table_is_read():
    with pytest.raises(BadInputError, match=r"^--grid-points 3: need at least 4"):
        fit_frontier(MISSING, grid_points=3)
