import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import audit_extrapolation, compute_optimal, fit_isoflop, fit_parametric, simulate_isoflop_runs
from roboscale.fit.laws import optimal_allocation, parametric_loss

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
BUDGETS = np.geomspace(1e18, 1e22, 9)
SIZES = np.geomspace(1e7, 1e11, 17)


def test_parametric_allocation_is_the_closed_form_with_intervals():
    fit = fit_parametric(simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES, seed=0), bootstrap=200)
    plan = compute_optimal(fit, [1e22, 1e24])
    N, D = optimal_allocation(np.array([1e22, 1e24]), fit.A, fit.B, fit.alpha, fit.beta)
    np.testing.assert_allclose(plan.N_opt, N)
    np.testing.assert_allclose(plan.D_opt, D)
    np.testing.assert_allclose(plan.loss, fit.predict_loss(N, D))
    assert np.all(plan.N_opt_ci[:, 0] <= plan.N_opt) and np.all(plan.N_opt <= plan.N_opt_ci[:, 1])
    true_N, _ = optimal_allocation(np.array([1e22, 1e24]), TRUTH["A"], TRUTH["B"], TRUTH["alpha"], TRUTH["beta"])
    assert np.all((plan.N_opt_ci[:, 0] <= true_N) & (true_N <= plan.N_opt_ci[:, 1]))
    np.testing.assert_allclose(plan.extrapolation, [1.0, 100.0])
    assert list(plan.to_frame().columns)[:3] == ["C", "extrapolation", "N_opt"]


def test_default_budgets_extrapolate_from_the_data():
    fit = fit_isoflop(simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES, seed=1), bootstrap=100)
    plan = compute_optimal(fit)
    np.testing.assert_allclose(plan.C, 1e22 * np.array([1, 10, 100, 1000]))
    assert np.all(np.isfinite(plan.loss))


def test_audit_of_a_true_law_predicts_the_held_out_budget():
    runs = simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES, noise=0.003, seed=2)
    audit = audit_extrapolation(runs, "parametric", bootstrap=100)
    assert audit.held_out_budgets == pytest.approx((1e22,))
    assert audit.n_test == len(SIZES)
    assert audit.mean_abs_relative_error < 0.01


def test_audit_catches_a_law_that_breaks_beyond_the_data():
    runs = simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES, noise=0.003, seed=2)
    # The largest budget follows a different law (e.g. data ran out and repeated).
    top = runs["C"] > 5e21
    runs.loc[top, "loss"] = parametric_loss(runs.N[top], runs.D[top], 1.9, 406.4, 410.7, 0.34, 0.28)
    audit = audit_extrapolation(runs, "parametric", bootstrap=0)
    assert audit.bias < -0.05  # the law promised a lower loss than was reached


def test_isoflop_audit_compares_the_predicted_optimum():
    runs = simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES, noise=0.002, seed=3)
    audit = audit_extrapolation(runs, "isoflop", bootstrap=100)
    row = audit.optimum.iloc[0]
    assert abs(row.log10_ratio) < 0.15  # N_opt predicted within a factor 1.4


def test_audit_needs_enough_budgets():
    runs = simulate_isoflop_runs(**TRUTH, budgets=[1e18, 1e19], model_sizes=SIZES)
    with pytest.raises(BadInputError, match="holdout"):
        audit_extrapolation(runs, "parametric")


def test_compute_optimal_refuses_bad_budgets():
    fit = fit_parametric(simulate_isoflop_runs(**TRUTH, budgets=BUDGETS, model_sizes=SIZES), bootstrap=0)
    with pytest.raises(BadInputError, match="budget"):
        compute_optimal(fit, [1e20, -5])
    with pytest.raises(BadInputError, match="no compute allocation"):
        compute_optimal(pd.DataFrame())
