import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import compute_optimal, fit_frontier, simulate_isoflop_runs, simulate_learning_curves
from roboscale.fit.bootstrap import resample_counts

TRUTH = {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28}


def test_learning_curve_frontier_recovers_the_optimal_exponent():
    curves = simulate_learning_curves(
        **TRUTH, model_sizes=np.geomspace(1e6, 1e10, 33), max_flops=1e22, min_tokens=1e7, points_per_curve=60
    )
    fit = fit_frontier(curves, bootstrap=200)
    assert fit.from_curves
    assert fit.a == pytest.approx(0.28 / 0.62, abs=0.01)
    assert fit.a + fit.b == pytest.approx(1.0, abs=1e-6)
    assert fit.E == pytest.approx(1.7, rel=0.01)
    assert fit.ci["a"][0] <= 0.28 / 0.62 <= fit.ci["a"][1]
    plan = compute_optimal(fit, [1e23])
    assert plan.N_opt_ci[0, 0] <= plan.N_opt[0] <= plan.N_opt_ci[0, 1]


def test_final_runs_give_a_pareto_frontier():
    runs = simulate_isoflop_runs(
        **TRUTH, budgets=np.geomspace(1e18, 1e22, 9), model_sizes=np.geomspace(1e7, 1e11, 17), noise=0.005
    )
    fit = fit_frontier(runs, bootstrap=100)
    assert not fit.from_curves
    assert np.all(np.diff(fit.frontier_loss) < 0)  # every frontier point beats all cheaper runs
    assert 0.3 < fit.a < 0.6


def test_a_frontier_held_by_one_model_is_refused():
    curves = pd.DataFrame({"run": ["a"] * 5, "N": 1e6, "C": np.geomspace(1e12, 1e14, 5), "loss": np.linspace(3, 2, 5)})
    with pytest.raises(BadInputError, match="single model size"):
        fit_frontier(curves, bootstrap=0)


def no_floor_curves():
    """4 model sizes over 1.7 decades of compute: the frontier falls like a pure power law
    (the true floor, 0.05, is 2% of the lowest loss and lies far below the data)."""
    return simulate_learning_curves(
        E=0.05,
        A=400.0,
        B=410.0,
        alpha=0.34,
        beta=0.28,
        model_sizes=np.geomspace(1e6, 1e8, 4),
        max_flops=1e17,
        min_tokens=1e7,
        points_per_curve=20,
        noise=0.02,
    )


def test_a_floor_at_its_lower_bound_is_zero_with_an_interval_that_can_leave_it():
    fit = fit_frontier(no_floor_curves(), bootstrap=200)
    # The optimiser stops at E ~ 3e-13 in log space: that is the bound 0, said so.
    assert fit.E == 0.0 and fit.E_at_lower_bound
    # Refits started only from E ~ 0 could never leave it (every resample gave the same
    # 3e-13: a zero-width interval); with a start off the floor some resamples level off.
    low, high = fit.ci["E"]
    assert low == 0.0 and 1.0 < high < fit.frontier_loss.min()
    assert 0 < fit.E_at_lower_bound_resamples < fit.bootstrap_converged
    assert fit.E_at_lower_bound_resamples == int(np.sum(fit.samples[:, 0] == 0.0))
    summary = fit.to_dict()
    assert summary["E"] == 0.0 and summary["E_at_lower_bound"] is True


def test_every_left_out_resample_has_a_reason():
    fit = fit_frontier(no_floor_curves(), bootstrap=200, seed=3)
    left_out = 200 - fit.bootstrap_converged
    assert fit.bootstrap_dropped == {"had one model size holding the whole frontier": left_out}
    # At least every resample that drew one run 4 times (1 in 64) is among them.
    drew_one_run = int(np.sum((resample_counts(4, 200, 3) > 0).sum(axis=1) == 1))
    assert drew_one_run >= 1 and left_out >= drew_one_run
