"""Effective data (Hernandez et al. 2021): recovery of known worths and transfer laws."""

import numpy as np
import pytest

from roboscale.errors import BadInputError
from roboscale.fit.effective_data import fit_effective_data

REFERENCE_AMOUNTS = np.repeat([25.0, 50.0, 100.0, 200.0, 400.0], 2)


def reference_loss(amount, E=0.0, A=2.0, alpha=0.3):
    return E + A * np.asarray(amount, dtype=float) ** -alpha


def _noisy(values, scale=0.003, seed=0):
    return values * np.exp(scale * np.random.default_rng(seed).standard_normal(np.shape(values)))


def test_a_source_worth_a_fixed_share_has_k_equal_to_that_share_and_beta_one():
    other = np.repeat([80.0, 160.0, 320.0, 640.0], 2)  # worth 32 to 256 reference episodes: inside 25-400
    fit = fit_effective_data(
        REFERENCE_AMOUNTS,
        _noisy(reference_loss(REFERENCE_AMOUNTS)),
        other,
        _noisy(reference_loss(0.4 * other), seed=1),
        bootstrap=200,
        seed=0,
        reference="expert",
        other="noisy",
    )
    assert fit.alpha == pytest.approx(0.3, abs=0.02)
    assert fit.k == pytest.approx(0.4, rel=0.15)
    assert fit.beta == pytest.approx(1.0, abs=0.05)
    for level in fit.levels:
        assert level.worth == pytest.approx(0.4, rel=0.08)
        assert level.worth_ci[0] <= level.worth <= level.worth_ci[1]
        assert level.runs == 2 and not level.extrapolated
    low, high = fit.ci["beta"]
    assert low < 1.0 < high
    assert fit.bootstrap_converged == 200


def test_hernandez_form_with_beta_below_one_is_recovered():
    other = np.array([10.0, 30.0, 100.0, 300.0])
    effective = 3.0 * other**0.7
    fit = fit_effective_data(
        REFERENCE_AMOUNTS, reference_loss(REFERENCE_AMOUNTS), other, reference_loss(effective), bootstrap=0
    )
    assert fit.k == pytest.approx(3.0, rel=1e-6)
    assert fit.beta == pytest.approx(0.7, rel=1e-6)
    assert [level.worth for level in fit.levels] == pytest.approx(list(effective / other), rel=1e-6)


def test_added_data_is_counted_beyond_the_fixed_reference_amount():
    # Runs with 100 reference episodes plus D noisy ones reach the loss of 100 + 0.5 D reference episodes.
    other = np.array([50.0, 100.0, 200.0, 400.0])
    fit = fit_effective_data(
        REFERENCE_AMOUNTS,
        reference_loss(REFERENCE_AMOUNTS),
        other,
        reference_loss(100.0 + 0.5 * other),
        base_ref_amount=100.0,
        bootstrap=0,
    )
    assert [level.effective for level in fit.levels] == pytest.approx(list(0.5 * other), rel=1e-6)
    assert [level.base for level in fit.levels] == [100.0] * 4
    # 100 + 0.5 * 400 = 300 is inside the reference range; none is extrapolated.
    assert not any(level.extrapolated for level in fit.levels)


def test_a_floor_law_is_inverted_through_its_floor():
    other = np.array([20.0, 60.0, 180.0])
    amounts = np.geomspace(10, 1000, 8)
    fit = fit_effective_data(
        amounts,
        reference_loss(amounts, E=0.5),
        other,
        reference_loss(0.25 * other, E=0.5),
        floor=True,
        bootstrap=20,
    )
    assert fit.E == pytest.approx(0.5, abs=0.01)
    assert [level.worth for level in fit.levels] == pytest.approx([0.25] * 3, rel=0.02)


def test_levels_beyond_the_reference_runs_are_flagged_extrapolated():
    other = np.array([100.0, 1000.0, 3000.0])
    fit = fit_effective_data(
        REFERENCE_AMOUNTS, reference_loss(REFERENCE_AMOUNTS), other, reference_loss(other), bootstrap=0
    )
    assert [level.extrapolated for level in fit.levels] == [False, True, True]
    assert "levels" in fit.to_dict() and fit.to_dict()["levels"][1]["extrapolated"] is True


def test_too_few_reference_levels_are_refused():
    with pytest.raises(BadInputError, match="at least 3 levels"):
        fit_effective_data([10, 10, 20, 20], [1.0, 1.0, 0.9, 0.9], [5.0], [1.1], bootstrap=0)
