"""The joint law in model size and data per source: recovery of known weights."""

import itertools

import numpy as np
import pytest

from roboscale.errors import BadInputError
from roboscale.fit.joint_data import fit_joint_data_law

TRUTH = {"E": 0.4, "A": 30.0, "alpha": 0.35, "B": 3.0, "beta": 0.5, "w": 0.3}


def simulated_runs(noise=0.002, seed=0):
    """Model sizes x expert episodes x noisy episodes (full factorial), known law."""
    grid = np.array(list(itertools.product([1e5, 4e5, 1.6e6, 6.4e6], [25.0, 100.0, 400.0], [0.0, 100.0, 400.0])))
    N, expert, noisy = grid.T
    effective = expert + TRUTH["w"] * noisy
    loss = TRUTH["E"] + TRUTH["A"] * N ** -TRUTH["alpha"] + TRUTH["B"] * effective ** -TRUTH["beta"]
    loss *= np.exp(noise * np.random.default_rng(seed).standard_normal(loss.size))
    return N, np.column_stack([expert, noisy]), loss


def test_joint_law_recovers_the_worth_of_the_second_source():
    N, amounts, loss = simulated_runs()
    fit = fit_joint_data_law(N, amounts, loss, ("expert", "noisy"), "expert", bootstrap=100, seed=0)
    assert fit.weights["expert"] == 1.0
    assert fit.weights["noisy"] == pytest.approx(TRUTH["w"], rel=0.1)
    assert fit.beta == pytest.approx(TRUTH["beta"], abs=0.05)
    assert fit.alpha == pytest.approx(TRUTH["alpha"], abs=0.05)
    assert fit.E == pytest.approx(TRUTH["E"], abs=0.05)
    low, high = fit.ci["w_noisy"]
    assert low < TRUTH["w"] < high
    assert "w_expert" not in fit.ci
    np.testing.assert_allclose(fit.predict(N, amounts), loss, rtol=0.01)
    assert fit.to_dict()["w"] == {"expert": 1.0, "noisy": fit.weights["noisy"]}


def test_the_reference_may_be_any_column():
    N, amounts, loss = simulated_runs(noise=0.0)
    fit = fit_joint_data_law(N, amounts[:, ::-1], loss, ("noisy", "expert"), "expert", bootstrap=0)
    assert list(fit.weights) == ["noisy", "expert"]
    assert fit.weights["noisy"] == pytest.approx(TRUTH["w"], rel=0.02)


def test_too_few_runs_or_one_model_size_are_refused():
    N, amounts, loss = simulated_runs()
    with pytest.raises(BadInputError, match="at least 8"):
        fit_joint_data_law(N[:7], amounts[:7], loss[:7], ("expert", "noisy"), "expert", bootstrap=0)
    one_size = N == N[0]
    with pytest.raises(BadInputError, match="same model size"):
        fit_joint_data_law(N[one_size], amounts[one_size], loss[one_size], ("expert", "noisy"), "expert", bootstrap=0)
