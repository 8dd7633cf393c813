"""One compute convention end to end: k of C = k N D is measured from the runs and every
allocation uses it (simulated runs at a known k)."""

import json

import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import (
    compute_optimal,
    fit_frontier,
    fit_isoflop,
    fit_parametric,
    load_runs,
    simulate_isoflop_runs,
    simulate_learning_curves,
)
from roboscale.fit.compute import measure_convention, per_run_flops_per_param_token
from roboscale.fit.laws import optimal_allocation

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
BUDGETS = np.geomspace(1e18, 1e21, 4)
SIZES = np.geomspace(1e7, 1e10, 25)


def runs_at(k) -> pd.DataFrame:
    return simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES, noise=0.0, flops_per_param_token=k)


def true_allocation(k: float):
    return optimal_allocation(BUDGETS, TRUTH["A"], TRUTH["B"], TRUTH["alpha"], TRUTH["beta"], k)


@pytest.mark.parametrize("k", [12.0, 4.97])
def test_k_is_measured_and_both_laws_recover_d_opt_to_one_percent(k):
    runs = runs_at(k)
    convention = load_runs(runs).compute_convention
    assert convention.k == pytest.approx(k, rel=1e-12) and convention.n_runs == len(runs)
    assert convention.source == f"measured from {len(runs)} runs"
    true_n, true_d = true_allocation(k)
    parametric = fit_parametric(runs, bootstrap=0)
    isoflop = fit_isoflop(runs, bootstrap=0, window=2)
    for fit in (parametric, isoflop):
        assert fit.flops_per_param_token == pytest.approx(k)
        assert fit.to_dict()["flops_per_param_token"] == fit.flops_per_param_token
        N_opt, D_opt, _ = fit.allocate(BUDGETS)
        np.testing.assert_allclose(D_opt, true_d, rtol=0.01)
        np.testing.assert_allclose(N_opt, true_n, rtol=0.01)
    # Each IsoFLOP D_opt is read off the runs' own D: it solves C = k N D at its own vertex.
    for profile in isoflop.profiles:
        assert profile.D_opt == pytest.approx(profile.C / (k * profile.N_opt), rel=1e-9)
    # The old default (C = 6 N D whatever the runs say) misses D_opt by (6 / k)^-b.
    _, wrong_d = optimal_allocation(BUDGETS, parametric.A, parametric.B, parametric.alpha, parametric.beta, 6.0)
    assert np.all(np.abs(wrong_d / true_d - 1) > 0.09)


def test_compute_optimal_and_its_intervals_use_the_measured_k():
    runs = simulate_isoflop_runs(
        **TRUTH, budgets=BUDGETS, model_sizes=SIZES[::3], noise=0.01, seed=1, flops_per_param_token=12.0
    )
    fit = fit_parametric(runs, bootstrap=20)
    plan = compute_optimal(fit, [1e22])
    # C = k N D holds at the optimum and at both ends of the resampled optima's range.
    assert 12.0 * plan.N_opt[0] * plan.D_opt[0] == pytest.approx(1e22, rel=1e-9)
    assert plan.D_opt_ci[0, 0] <= plan.D_opt[0] <= plan.D_opt_ci[0, 1]


def test_given_k_overrides_the_measured_one_and_an_assumed_one_says_so():
    runs = runs_at(12.0)
    given = load_runs(runs, flops_per_param_token=6.0)
    assert given.flops_per_param_token == 6.0 and given.compute_convention.source == "given (the runs' C / (N D) is 12)"
    assert fit_parametric(given, bootstrap=0).flops_per_param_token == 6.0
    assumed = load_runs(runs.drop(columns="C")).compute_convention
    assert assumed.k == pytest.approx(6.0) and assumed.source == "assumed: C derived: 6 * N * D"
    # A subset (e.g. one group of a study) is measured on its own rows.
    mixed = pd.concat([runs_at(12.0).assign(group="a"), runs_at(5.0).assign(group="b")], ignore_index=True)
    measured = {name: part.flops_per_param_token for name, part in load_runs(mixed).groups("group")}
    assert measured == pytest.approx({"a": 12.0, "b": 5.0})


def test_a_k_that_varies_with_width_is_reported_with_its_range_and_d_opt_follows_the_runs():
    k_by_size = np.linspace(7.0, 4.0, SIZES.size)  # exact FLOP counts give each width its own k
    runs = runs_at(k_by_size)
    convention = load_runs(runs).compute_convention
    assert convention.k_min == pytest.approx(4.0) and convention.k_max == pytest.approx(7.0)
    assert convention.k == pytest.approx(np.median(k_by_size))
    as_json = json.loads(json.dumps(convention.to_dict()))
    assert as_json.pop("source") == convention.source
    assert as_json == pytest.approx({"k": convention.k, "k_min": 4.0, "k_max": 7.0})
    # Within a budget ln D is no longer exactly linear in ln N; the line through the
    # window still puts D_opt within a fraction of a percent of the runs' own tokens.
    isoflop = fit_isoflop(runs, bootstrap=0, window=2)
    for profile in isoflop.usable_profiles:
        k_there = np.interp(np.log(profile.N_opt), np.log(SIZES), k_by_size)
        assert profile.D_opt == pytest.approx(profile.C / (k_there * profile.N_opt), rel=0.005)


def test_learning_curves_are_measured_per_run_and_the_frontier_carries_k():
    curves = simulate_learning_curves(
        **TRUTH, model_sizes=np.geomspace(1e6, 1e9, 7), max_flops=1e21, flops_per_param_token=12.0
    )
    convention = load_runs(curves).compute_convention
    assert convention.n_runs == 7 and convention.k == pytest.approx(12.0)
    fit = fit_frontier(curves, bootstrap=0)
    assert fit.to_dict()["flops_per_param_token"] == pytest.approx(12.0)


def test_optima_without_d_opt_use_the_given_k():
    optima = pd.DataFrame({"C": np.geomspace(1e18, 1e21, 4), "N_opt": np.geomspace(1e8, 2e9, 4)})
    fit = fit_isoflop(optima=optima, bootstrap=0, flops_per_param_token=12.0)
    assert fit.flops_per_param_token == 12.0
    for profile in fit.profiles:
        assert profile.D_opt == pytest.approx(profile.C / (12.0 * profile.N_opt))
    assert fit_isoflop(optima=optima, bootstrap=0).profiles[0].D_opt == pytest.approx(1e18 / (6.0 * 1e8))


def test_per_run_ratio_and_bad_input():
    ratios = per_run_flops_per_param_token([1.0, 1.0, 2.0], [1.0, 2.0, 1.0], [4.0, 10.0, 12.0], runs=["a", "a", "b"])
    assert list(ratios) == [4.5, 6.0]  # run a: median of 4 and 5
    with pytest.raises(BadInputError, match="must be a number > 0"):
        measure_convention([1.0], [1.0], [6.0], given=-1.0)
    with pytest.raises(BadInputError, match="cannot measure"):
        measure_convention([np.nan], [1.0], [6.0])
