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
        ([1, 2, -3, 4, 5], [5, 4, 3, 2, 1], "x > 0"),
        ([1, 2, 3, 4, 5], [5, 4, np.nan, 2, 1], "non-finite"),
    ],
)
def test_bad_points_are_refused(x, y, message):
    with pytest.raises(BadInputError, match=message):
        fit_power_law(x, y, bootstrap=0)
