import numpy as np
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import compute_optimal, fit_parametric, simulate_isoflop_runs
from roboscale.fit.examples import example_path
from roboscale.fit.laws import ParametricObjective
from roboscale.fit.parametric import start_grid

HOFFMANN = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, Appendix D


def simulated(seed, noise=0.005, **truth):
    truth = truth or HOFFMANN
    return simulate_isoflop_runs(
        **truth, budgets=np.geomspace(1e18, 1e22, 9), model_sizes=np.geomspace(1e7, 1e11, 17), noise=noise, seed=seed
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_known_parameters_inside_bootstrap_intervals(seed):
    fit = fit_parametric(simulated(seed), bootstrap=300, seed=seed)
    for name, true_value in HOFFMANN.items():
        low, high = fit.ci[name]
        assert low <= true_value <= high, f"{name}={true_value} outside [{low}, {high}]"
    assert fit.alpha == pytest.approx(HOFFMANN["alpha"], abs=0.03)
    assert fit.beta == pytest.approx(HOFFMANN["beta"], abs=0.03)
    assert fit.E == pytest.approx(HOFFMANN["E"], rel=0.03)
    assert fit.a == pytest.approx(0.28 / 0.62, abs=0.02)


def test_noise_free_runs_are_fitted_exactly():
    fit = fit_parametric(simulated(0, noise=0.0), bootstrap=0)
    for name, true_value in HOFFMANN.items():
        assert getattr(fit, name) == pytest.approx(true_value, rel=1e-5)
    assert fit.residual_rms < 1e-8


def test_losses_below_one_work():
    truth = dict(E=0.05, A=3.0, B=8.0, alpha=0.3, beta=0.35)
    fit = fit_parametric(simulated(0, noise=0.0, **truth), bootstrap=0)
    for name, true_value in truth.items():
        assert getattr(fit, name) == pytest.approx(true_value, rel=1e-4)


def test_fixed_E_holds_the_floor_and_recovers_the_rest():
    fit = fit_parametric(simulated(3), fixed_E=1.69, bootstrap=0)
    assert fit.E == 1.69 and fit.fixed_E
    assert fit.alpha == pytest.approx(0.34, abs=0.02)
    assert fit.beta == pytest.approx(0.28, abs=0.02)


def test_reproduces_epoch_replication_of_hoffmann_approach_3():
    # Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt") fit the same
    # extracted points, leaving out the five highest-loss ones, and report
    # E = 1.82, A = 482.01, B = 2085.43, alpha = 0.3478, beta = 0.3658.
    fit = fit_parametric(example_path("hoffmann2022"), drop_highest_loss=5, bootstrap=0)
    assert fit.n_runs == 240
    assert fit.E == pytest.approx(1.82, abs=0.01)
    assert fit.alpha == pytest.approx(0.3478, abs=0.003)
    assert fit.beta == pytest.approx(0.3658, abs=0.003)
    assert fit.A == pytest.approx(482.01, rel=0.03)
    assert fit.B == pytest.approx(2085.43, rel=0.05)
    plan = compute_optimal(fit, [5.76e23])  # Chinchilla's budget: ~20 tokens per parameter
    assert 15 < plan.tokens_per_param[0] < 25


def test_batched_fit_is_at_least_as_good_as_scipy_per_start():
    scipy_optimize = pytest.importorskip("scipy.optimize")
    runs = simulated(4)
    fit = fit_parametric(runs, bootstrap=0)
    objective = ParametricObjective(np.log(runs.N), np.log(runs.D), np.log(runs.loss), 1e-3)

    def value_and_grad(x):
        value, grad = objective(x[None, :], np.zeros(1, dtype=int))
        return value[0], grad[0]

    starts = start_grid()[::45]  # 100 of the 4,500 starts, spread over the grid
    best = min(scipy_optimize.minimize(value_and_grad, x0, jac=True, method="L-BFGS-B").fun for x0 in starts)
    assert fit.objective <= best * (1 + 1e-9)


def test_bootstrap_is_seeded():
    runs = simulated(5)
    first = fit_parametric(runs, bootstrap=50, seed=7)
    again = fit_parametric(runs, bootstrap=50, seed=7)
    other = fit_parametric(runs, bootstrap=50, seed=8)
    assert first.ci == again.ci
    assert first.ci != other.ci
    assert first.to_dict()["ci"]["alpha"] == list(first.ci["alpha"])


@pytest.mark.parametrize(
    "frame, message",
    [
        ({"N": [1e6, 2e6, 4e6, 8e6], "D": [1e9, 1e9, 2e9, 3e9], "loss": [3.0, 2.9, 2.8, 2.7]}, "at least 6 runs"),
        ({"N": [1e6] * 8, "D": np.geomspace(1e8, 1e10, 8), "loss": np.linspace(3, 2.5, 8)}, "same model size"),
    ],
)
def test_underdetermined_designs_are_refused(frame, message):
    import pandas as pd

    with pytest.raises(BadInputError, match=message):
        fit_parametric(pd.DataFrame(frame), bootstrap=0)
