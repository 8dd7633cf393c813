import numpy as np
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import fit_broken_power_law, fit_power_law
from roboscale.fit.laws import broken_power_law, saturating_power_law


def test_recovers_a_saturating_power_law():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e3, 1e8, 30)
    y = saturating_power_law(x, 1.5, 40.0, 0.3) * np.exp(rng.normal(0, 0.005, x.size))
    fit = fit_power_law(x, y, bootstrap=300)
    assert fit.alpha == pytest.approx(0.3, abs=0.01)
    assert fit.E == pytest.approx(1.5, rel=0.02)
    for name, value in (("E", 1.5), ("A", 40.0), ("alpha", 0.3)):
        assert fit.ci[name][0] <= value <= fit.ci[name][1]


def test_pure_power_law_without_offset():
    x = np.geomspace(10, 1e6, 12)
    fit = fit_power_law(x, 7.0 * x**-0.25, offset=False, bootstrap=0)
    assert fit.E == 0.0
    assert fit.A == pytest.approx(7.0, rel=1e-6)
    assert fit.alpha == pytest.approx(0.25, rel=1e-6)


def test_success_rate_through_its_complement():
    episodes = np.geomspace(10, 1e4, 10)
    success = 1.0 - saturating_power_law(episodes, 0.02, 3.0, 0.5)
    fit = fit_power_law(episodes, success, complement=1.0, bootstrap=0)
    assert fit.alpha == pytest.approx(0.5, rel=1e-4)
    assert fit.predict(1e6) == pytest.approx(1 - 0.02 - 3.0 * 1e6**-0.5, rel=1e-6)


def test_broken_power_law_finds_the_break():
    rng = np.random.default_rng(1)
    x = np.geomspace(10, 1e6, 40)
    y = broken_power_law(x, 0.05, 3.0, 0.1, 0.6, 1e3, 0.3) * np.exp(rng.normal(0, 0.005, x.size))
    fit = fit_broken_power_law(x, y, bootstrap=100)
    assert fit.d1 == pytest.approx(1e3, rel=0.15)
    assert fit.c0 + fit.c1 == pytest.approx(0.7, abs=0.05)


@pytest.mark.parametrize(
    "x, y, message",
    [
        ([1, 2, 3], [3, 2, 1], "need at least 4"),
        ([1, 2, -3, 4, 5], [5, 4, 3, 2, 1], "x has 1 non-finite, zero or negative value"),
        ([1, 2, 3, 4, 5], [5, 4, np.nan, 2, 1], "y has 1 non-finite"),
        ([1, 1, 2, 2, 2], [5, 4, 3, 2, 1], "needs at least 3 distinct values of x, got 2: add levels"),
    ],
)
def test_bad_points_are_refused(x, y, message):
    with pytest.raises(BadInputError, match=message):
        fit_power_law(x, y, bootstrap=0)


@pytest.mark.parametrize(
    "x, y, message",
    [
        ([2, 2, 4, 4], [0.6, 0.5, 0.4, 0.3], "needs at least 3 distinct values of n_tasks, got 2: add levels"),
        ([2, 4, 8], [0.6, 0.0, -0.1], "gap has 2 non-finite, zero or negative value"),
        ([0, 4, 8], [0.6, 0.5, 0.4], "n_tasks has 1 non-finite, zero or negative value"),
    ],
)
def test_the_log_log_fit_refuses_what_it_cannot_take_the_log_of(x, y, message):
    with pytest.raises(BadInputError, match=message):
        fit_power_law(x, y, offset=False, bootstrap=0, x_name="n_tasks", y_name="gap")


def test_log_log_least_squares_matches_a_hand_computed_line_and_its_bootstrap():
    rng = np.random.default_rng(3)
    x = np.repeat([1.0, 3.0, 10.0, 30.0, 100.0], 3)
    y = 2.0 * x**-0.5 * np.exp(rng.normal(0, 0.1, x.size))
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    fit = fit_power_law(x, y, offset=False, bootstrap=200, seed=4)
    assert (fit.alpha, fit.A, fit.E) == pytest.approx((-slope, np.exp(intercept), 0.0), rel=1e-10)
    residual = np.log(y) - (intercept + slope * np.log(x))
    assert fit.objective == pytest.approx(np.sum(residual**2), rel=1e-10)
    assert fit.r_squared == pytest.approx(1 - np.sum(residual**2) / np.sum((np.log(y) - np.log(y).mean()) ** 2))
    draws = np.random.default_rng(4).integers(0, x.size, size=(200, x.size))
    slopes = [np.polyfit(np.log(x[d]), np.log(y[d]), 1)[0] for d in draws]
    assert fit.ci["alpha"] == pytest.approx(tuple(-np.percentile(slopes, [97.5, 2.5])), rel=1e-9)
    assert fit.ci["alpha"][0] <= 0.5 <= fit.ci["alpha"][1] and fit.bootstrap_converged == 200
