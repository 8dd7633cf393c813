import numpy as np
import pytest

from roboscale.fit.optimize import Status, best_per_problem, minimize_lbfgs, multistart


def rosenbrock(x, rows):
    a, b = x[:, 0], x[:, 1]
    value = (1 - a) ** 2 + 100 * (b - a * a) ** 2
    grad = np.column_stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
    return value, grad


def shifted_quadratic(centres, scales):
    def objective(x, rows):
        diff = x - centres[rows]
        return 0.5 * np.sum(scales[rows] * diff * diff, axis=1), scales[rows] * diff

    return objective


def test_rosenbrock_from_many_starts_reaches_the_minimum():
    starts = np.array([[-1.2, 1.0], [2.0, 2.0], [-2.0, -1.0], [0.0, 0.0], [1.5, -0.5]])
    result = minimize_lbfgs(rosenbrock, starts, threads=1)
    assert result.converged.all()
    np.testing.assert_allclose(result.x, np.ones_like(starts), atol=1e-6)
    assert np.all(result.value < 1e-12)


def test_rows_are_independent_problems():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 4))
    scales = np.exp(rng.normal(size=(50, 4)))  # condition numbers up to ~50
    result = minimize_lbfgs(shifted_quadratic(centres, scales), np.zeros((50, 4)), threads=1)
    np.testing.assert_allclose(result.x, centres, atol=1e-6)
    assert result.converged.all()


def test_iteration_limit_is_reported_not_hidden():
    result = minimize_lbfgs(rosenbrock, np.array([[-1.2, 1.0]]), max_iter=3, threads=1)
    assert result.status[0] == Status.MAX_ITER
    assert not result.converged[0]


def test_non_finite_start_is_flagged():
    def objective(x, rows):
        return np.where(x[:, 0] > 5, np.nan, x[:, 0] ** 2), 2 * x

    result = minimize_lbfgs(objective, np.array([[1.0], [10.0]]), threads=1)
    assert result.status[1] == Status.NOT_FINITE
    assert abs(result.x[0, 0]) < 1e-6


def test_result_does_not_depend_on_threads_or_blocks():
    starts = np.random.default_rng(1).normal(size=(300, 2)) * 2
    one = minimize_lbfgs(rosenbrock, starts, threads=1, block_rows=64)
    two = minimize_lbfgs(rosenbrock, starts, threads=2, block_rows=64)
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.iterations, two.iterations)


def test_multistart_returns_polished_rows_lowest_first():
    def two_wells(x, rows):  # minima at -1 (value 0.1) and +1 (value 0)
        value = (x[:, 0] ** 2 - 1) ** 2 + 0.05 * (1 - x[:, 0])
        grad = 4 * x[:, 0] * (x[:, 0] ** 2 - 1) - 0.05
        return value, grad[:, None]

    result = multistart(two_wells, np.linspace(-2, 2, 41)[:, None], polish=4, threads=1)
    assert result.converged[0]
    assert result.x[0, 0] == pytest.approx(1.0062, abs=1e-3)
    assert np.all(np.diff(result.value) >= 0)


def test_best_per_problem_picks_lowest_start_of_each_block():
    centres = np.array([[0.0], [0.0], [3.0], [3.0]])
    result = minimize_lbfgs(shifted_quadratic(centres, np.ones((4, 1))), np.array([[1.0], [2.0], [1.0], [9.0]]))
    x, found = best_per_problem(result, 2)
    assert found.all()
    np.testing.assert_allclose(x[:, 0], [0.0, 3.0], atol=1e-6)
