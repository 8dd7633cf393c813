import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import compute_optimal, fit_frontier, simulate_isoflop_runs, simulate_learning_curves

TRUTH = dict(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28)


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
