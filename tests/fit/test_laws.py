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
