import warnings

import numpy as np
import pytest

from roboscale.fit.laws import (
    BrokenPowerLawObjective,
    ParametricObjective,
    PowerLawObjective,
    huber,
    optimal_allocation,
    parametric_loss,
)


def numeric_gradient(objective, params, eps=1e-6):
    rows = np.arange(len(params))
    grad = np.zeros_like(params)
    for i in range(params.shape[1]):
        step = np.zeros_like(params)
        step[:, i] = eps
        grad[:, i] = (objective(params + step, rows)[0] - objective(params - step, rows)[0]) / (2 * eps)
    return grad


@pytest.fixture
def runs():
    rng = np.random.default_rng(0)
    N = 10 ** rng.uniform(6, 9, 40)
    D = 10 ** rng.uniform(8, 11, 40)
    loss = parametric_loss(N, D, 1.7, 400, 410, 0.34, 0.28) * np.exp(rng.normal(0, 0.01, 40))
    return N, D, loss


def test_huber_matches_its_definition():
    r = np.array([-0.5, -1e-3, 0.0, 5e-4, 2.0])
    loss, slope = huber(r, 1e-3)
    expected = np.where(np.abs(r) <= 1e-3, 0.5 * r * r, 1e-3 * (np.abs(r) - 0.5e-3))
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(slope, np.clip(r, -1e-3, 1e-3))


def test_parametric_gradient_matches_finite_differences(runs):
    N, D, loss = runs
    weights = np.random.default_rng(1).integers(0, 3, (3, len(N))).astype(float)
    objective = ParametricObjective(np.log(N), np.log(D), np.log(loss), 1e-3, weights=weights)
    params = np.array([[0.5, 6.0, 6.0, 0.3, 0.3], [0.1, 5.0, 5.0, 0.5, 0.2], [0.6, 5.5, 6.2, 0.34, 0.28]])
    _, grad = objective(params, np.arange(3))
    np.testing.assert_allclose(grad, numeric_gradient(objective, params), rtol=1e-5, atol=1e-10)


def test_parametric_objective_is_zero_at_the_truth_without_noise():
    N, D = np.geomspace(1e6, 1e9, 8), np.geomspace(1e8, 1e11, 8)
    loss = parametric_loss(N, D, 1.7, 400, 410, 0.34, 0.28)
    objective = ParametricObjective(np.log(N), np.log(D), np.log(loss), 1e-3)
    value, grad = objective(np.array([[np.log(1.7), np.log(400), np.log(410), 0.34, 0.28]]), np.arange(1))
    assert value[0] == pytest.approx(0.0, abs=1e-25)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)


@pytest.mark.parametrize(
    "objective_class, params",
    [
        (PowerLawObjective, np.array([[-1.0, 1.0, 0.3], [-2.0, 2.0, 0.5]])),
        (BrokenPowerLawObjective, np.array([[-1.0, 1.0, 0.3, 0.2, 6.0, 0.1], [-2.0, 2.0, 0.5, 0.5, 7.0, -0.5]])),
    ],
)
def test_single_axis_gradients_match_finite_differences(objective_class, params):
    x = np.geomspace(10, 1e5, 30)
    y = 0.1 + 5 * x**-0.3
    objective = objective_class(x, y, 1e-3)
    _, grad = objective(params, np.arange(len(params)))
    np.testing.assert_allclose(grad, numeric_gradient(objective, params), rtol=2e-4, atol=1e-9)


def test_optimal_allocation_is_the_constrained_minimum():
    E, A, B, alpha, beta = 1.69, 406.4, 410.7, 0.34, 0.28
    C = 1e21
    N_opt, D_opt = optimal_allocation(C, A, B, alpha, beta)
    assert 6 * N_opt * D_opt == pytest.approx(C, rel=1e-12)
    N = np.geomspace(N_opt / 3, N_opt * 3, 20001)
    loss = parametric_loss(N, C / (6 * N), E, A, B, alpha, beta)
    assert N[np.argmin(loss)] == pytest.approx(N_opt, rel=1e-3)


def test_optimal_allocation_exponents():
    A, B, alpha, beta = 406.4, 410.7, 0.34, 0.28
    N1, D1 = optimal_allocation(1e20, A, B, alpha, beta)
    N2, D2 = optimal_allocation(1e24, A, B, alpha, beta)
    assert np.log(N2 / N1) / np.log(1e4) == pytest.approx(beta / (alpha + beta), rel=1e-12)
    assert np.log(D2 / D1) / np.log(1e4) == pytest.approx(alpha / (alpha + beta), rel=1e-12)


def test_optimal_allocation_is_finite_where_only_its_prefactor_overflows():
    # G = (alpha A / (beta B))^(1/(alpha+beta)) = (1e8)^50 = 1e400 overflows float64,
    # but N_opt = G (C/6)^(1/2) at C = 1e-200 FLOPs is 10^299.61: the direct form
    # said inf (with an overflow warning), the log-space form gives the number.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        N_opt, D_opt = optimal_allocation(1e-200, 1e8, 1.0, 0.01, 0.01)
    assert np.log10(N_opt) == pytest.approx(400 + 0.5 * np.log10(1e-200 / 6), rel=1e-12)
    assert D_opt == 0.0  # 10^-500.4 is below float64: underflow to zero is the right answer


def test_optimal_allocation_beyond_float64_is_inf_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        N_opt, D_opt = optimal_allocation(np.array([1e20, 1e22]), 1e10, 1.0, 0.01, 0.01)
        non_physical, _ = optimal_allocation(1e20, 406.4, 410.7, -0.34, 0.28)
    assert np.all(np.isinf(N_opt)) and np.all(D_opt == 0.0)
    assert np.isnan(non_physical)


def test_optimal_allocation_keeps_the_direct_values_where_they_are_finite():
    # A law in range must give exactly the closed form (the demo's numbers depend on it).
    C = np.geomspace(1e15, 1e25, 11)
    A, B, alpha, beta = 406.4, 410.7, 0.34, 0.28
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    N_opt, D_opt = optimal_allocation(C, A, B, alpha, beta)
    assert np.array_equal(N_opt, G * (C / 6) ** (beta / (alpha + beta)))
    assert np.array_equal(D_opt, (C / 6) ** (alpha / (alpha + beta)) / G)


def test_compute_optimal_with_runaway_bootstrap_samples_warns_nothing():
    from roboscale.fit import ParametricFit, compute_optimal

    # One sample with alpha + beta = 0.02 (a resample that lost a model size): its
    # prefactor overflows; one with alpha < 0: its loss grows without bound.
    samples = np.array([[1.7, 400.0, 410.0, 0.34, 0.28], [1.7, 1e10, 1.0, 0.01, 0.01], [1.7, 400.0, 410.0, -3.0, 0.3]])
    fit = ParametricFit(
        E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28, objective=0.0, residual_rms=0.0, n_runs=10,
        huber_delta=1e-3, flops_per_param_token=6.0, starts=1, compute_range=(1e18, 1e20),
        bootstrap=3, bootstrap_converged=3, samples=samples,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = compute_optimal(fit, [1e21, 1e24])
        losses = fit.predict_loss_samples(np.array([1e12]), np.array([1e300]))
    assert np.all(np.isfinite(plan.N_opt)) and np.isinf(losses).sum() == 0
    # Only the in-range sample is finite: the interval is its (the fit's own) optimum.
    assert plan.N_opt_ci[0] == pytest.approx([plan.N_opt[0]] * 2, rel=1e-12)
