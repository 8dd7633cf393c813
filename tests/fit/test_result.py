"""Every fit shares one result shape; its JSON layout is pinned (the CLI and reports read it)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from roboscale.fit import (
    FitResult,
    fit_broken_power_law,
    fit_data_constrained,
    fit_frontier,
    fit_isoflop,
    fit_parametric,
    fit_power_law,
    simulate_isoflop_runs,
    simulate_learning_curves,
)
from roboscale.fit.data_constrained import Stage1Law, data_constrained_loss

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
RUNS = simulate_isoflop_runs(**TRUTH, budgets=np.geomspace(1e18, 1e21, 4), model_sizes=np.geomspace(1e7, 1e10, 9))
X = np.geomspace(1e3, 1e7, 12)
Y = 0.5 + 30 * X**-0.3

N_REP, D_REP, U_REP = np.broadcast_arrays(np.array([[1e8], [1e9]]), np.geomspace(1e9, 3e10, 5), 1e9)
REPEATED = (N_REP, D_REP, U_REP, data_constrained_loss(N_REP, D_REP, U_REP, Stage1Law(**TRUTH), 5.0, 3.0))

HEAD = ["method", "law"]
BOOTSTRAP = ["bootstrap", "bootstrap_converged"]
LAYOUTS = {
    "parametric": (
        lambda: fit_parametric(RUNS, bootstrap=4),
        [*HEAD, "E", "A", "B", "alpha", "beta", "a", "b", "ci", "ci_level", "objective", "residual_rms", "n_runs"]
        + ["huber_delta", "flops_per_param_token", "starts", *BOOTSTRAP, "fixed_E", "compute_range", "converged"],
    ),
    "isoflop": (
        lambda: fit_isoflop(RUNS, bootstrap=4),
        [*HEAD, "a", "b", "k_N", "k_D", "ci", "ci_level", "weighted", "window", "n_runs", "n_budgets"]
        + ["n_usable_budgets", "flat_budgets", "flops_per_param_token", *BOOTSTRAP, "loss_law", "compute_range"]
        + ["profiles", "converged"],
    ),
    "isoflop-optima": (
        lambda: fit_isoflop(
            optima=pd.DataFrame({"C": np.geomspace(1e18, 1e21, 6), "N_opt": np.geomspace(1e8, 3e9, 6)}), bootstrap=4
        ),
        [*HEAD, "a", "b", "k_N", "k_D", "ci", "ci_level", "weighted", "window", "n_runs", "n_budgets"]
        + ["n_usable_budgets", "flat_budgets", "flops_per_param_token", *BOOTSTRAP, "loss_law", "compute_range"]
        + ["profiles", "converged"],
    ),
    "frontier": (
        lambda: fit_frontier(
            simulate_learning_curves(**TRUTH, model_sizes=np.geomspace(1e6, 1e9, 7), max_flops=1e21), bootstrap=4
        ),
        [*HEAD, "E", "A", "alpha", "a", "b", "k_N", "k_D", "ci", "ci_level", "residual_rms", "n_runs"]
        + ["from_curves", "compute_range", "flops_per_param_token", "E_at_lower_bound", "E_at_lower_bound_resamples"]
        + [*BOOTSTRAP, "frontier", "converged"],
    ),
    "power-law": (
        lambda: fit_power_law(X, Y, bootstrap=4),
        [*HEAD, "E", "A", "alpha", "ci", "ci_level", "objective", "residual_rms", "n_points", "x", "y", "r_squared"]
        + ["offset", "fitted_by", "known_floor", "complement", "huber_delta", *BOOTSTRAP, "converged"],
    ),
    "data-constrained": (
        lambda: fit_data_constrained(*REPEATED, **TRUTH, bootstrap=2),
        [*HEAD, "R_D_star", "R_N_star", "ci", "ci_level", "objective", "r_squared", "chinchilla_r_squared"]
        + [
            "residual_rms",
            "n_runs",
            "stage1",
            "huber_delta",
            "optima",
            "runaway_starts",
            "unbounded_above",
            *BOOTSTRAP,
            "converged",
        ],
    ),
    "broken-power-law": (
        lambda: fit_broken_power_law(X, Y, bootstrap=2),
        [*HEAD, "E", "A", "c0", "c1", "d1", "f1", "slope_before_break", "slope_after_break", "ci", "ci_level"]
        + ["objective", "residual_rms", "n_points", "x", "y", "complement", "huber_delta", *BOOTSTRAP, "converged"],
    ),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_fit_is_a_fit_result_with_the_pinned_json_layout(name):
    make, keys = LAYOUTS[name]
    fit = make()
    assert isinstance(fit, FitResult)
    assert fit.method == name.removesuffix("-optima")
    payload = fit.to_dict()
    assert list(payload) == keys
    assert payload["law"] == fit.law and payload["converged"] is True
    assert payload["bootstrap"] == fit.bootstrap == len(fit.samples) == fit.bootstrap_converged
    assert set(payload["ci"]) <= set(payload) | {"k_N", "k_D"}


def test_sample_columns_broadcast_against_a_row_of_points():
    fit = fit_power_law(X, Y, bootstrap=5, seed=1)
    E, A, alpha = fit.sample_columns(3)
    assert E.shape == (5, 1)
    np.testing.assert_array_equal(fit.predict_samples(X[:3]), E + A * X[None, :3] ** -alpha)
    assert fit_power_law(X, Y, bootstrap=0).sample_columns(3) is None


def test_allocation_samples_beyond_float64_are_inf_without_a_warning():
    from roboscale.fit import IsoFlopFit, compute_optimal

    # The second resample's exponent a = 50 puts N_opt at 10^1050 FLOPs^50: beyond float64.
    samples = np.array([[0.5, 0.0, 0.5, 0.0], [50.0, 0.0, 50.0, 0.0], [0.6, 0.0, 0.4, 0.0]])
    fit = IsoFlopFit(
        a=0.5, b=0.5, k_N=1.0, k_D=1.0, profiles=(), weighted=False, n_runs=0, window=None,
        compute_range=(1e18, 1e20), bootstrap=3, bootstrap_converged=3, samples=samples,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = compute_optimal(fit, [1e21])
        N, _, _ = fit.allocate_samples([1e21])
    assert np.isinf(N[1, 0]) and plan.N_opt[0] == pytest.approx(1e21**0.5)
    assert plan.N_opt_ci[0] == pytest.approx(np.percentile([1e21**0.5, 1e21**0.6], [2.5, 97.5]))
