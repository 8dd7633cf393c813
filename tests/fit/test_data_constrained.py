"""The data-constrained law (Muennighoff et al. 2023): the paper's 182 runs and a recovery from known R*."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit import MUENNIGHOFF_C4_STAGE1, fit_data_constrained
from roboscale.fit.data_constrained import Stage1Law, data_constrained_loss

ANCHOR = Path(__file__).parents[1] / "fixtures" / "muennighoff2023_runs_fit182.csv"
PUBLISHED = {"R_D_star": 15.387756, "R_N_star": 5.309743, "objective": 0.0158259, "r_squared": 0.7722}
CHINCHILLA_R_SQUARED = 0.4452
TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _near(optima, R_D_star, R_N_star, rel):
    return [
        o
        for o in optima
        if o.R_D_star == pytest.approx(R_D_star, rel=rel) and o.R_N_star == pytest.approx(R_N_star, rel=rel)
    ]


def test_the_papers_182_runs_reach_the_published_objective_and_every_optimum_is_listed():
    runs = pd.read_csv(ANCHOR)
    fit = fit_data_constrained(runs.N, runs.tokens, runs.unique_tokens, runs.loss, **MUENNIGHOFF_C4_STAGE1, bootstrap=0)
    assert fit.objective <= PUBLISHED["objective"]
    assert [o.objective for o in fit.optima] == sorted(o.objective for o in fit.optima)
    assert fit.optima[0].objective == fit.objective and fit.optima[0].R_D_star == fit.R_D_star
    published = _near(fit.optima, PUBLISHED["R_D_star"], PUBLISHED["R_N_star"], rel=0.005)
    assert len(published) == 1
    assert published[0].objective == pytest.approx(PUBLISHED["objective"], abs=1e-7)
    assert published[0].r_squared == pytest.approx(PUBLISHED["r_squared"], abs=1e-4)
    lower = _near(fit.optima, 47.0, 2.33, rel=0.01)  # the README's float64 minimum
    assert len(lower) == 1 and lower[0].objective == pytest.approx(0.0158074, abs=1e-7)
    assert fit.chinchilla_r_squared == pytest.approx(CHINCHILLA_R_SQUARED, abs=1e-4)


def _repetition_study(R_D_star: float, R_N_star: float, noise: float, seed: int = 0):
    """Runs at 3 sizes x 3 unique amounts x 6 epoch counts with losses from the law."""
    N, unique, epochs = np.meshgrid([1e7, 1e8, 4e8], [2e8, 6e8, 2e9], [1, 2, 4, 10, 30, 100], indexing="ij")
    N, unique, D = N.ravel(), unique.ravel(), (unique * epochs).ravel()
    loss = data_constrained_loss(N, D, unique, Stage1Law(**TRUTH), R_D_star, R_N_star)
    return N, D, unique, loss * np.exp(np.random.default_rng(seed).normal(0, noise, loss.size))


def test_recovers_known_r_stars_with_intervals_that_cover_them():
    fit = fit_data_constrained(*_repetition_study(8.0, 3.0, noise=0.002, seed=3), **TRUTH, bootstrap=40, seed=1)
    assert fit.R_D_star == pytest.approx(8.0, rel=0.1)
    assert fit.R_N_star == pytest.approx(3.0, rel=0.1)
    assert fit.ci["R_D_star"][0] <= 8.0 <= fit.ci["R_D_star"][1]
    assert fit.ci["R_N_star"][0] <= 3.0 <= fit.ci["R_N_star"][1]
    assert fit.bootstrap_converged == 40 and fit.unbounded_above == ()
    exact = fit_data_constrained(*_repetition_study(8.0, 3.0, noise=0.0), **TRUTH, bootstrap=0)
    assert (exact.R_D_star, exact.R_N_star) == pytest.approx((8.0, 3.0), rel=1e-4)
    assert exact.predict(1e8, 4e9, 1e9) == pytest.approx(
        data_constrained_loss(1e8, 4e9, 1e9, Stage1Law(**TRUTH), 8.0, 3.0), rel=1e-6
    )


def test_without_excess_parameters_r_n_star_is_not_fitted():
    N, D, unique, loss = _repetition_study(8.0, 3.0, noise=0.0)
    small = N == 1e7  # below the compute-optimal size of every unique amount: R_N = 0
    fit = fit_data_constrained(N[small], D[small], unique[small], loss[small], **TRUTH, bootstrap=0)
    assert fit.R_D_star == pytest.approx(8.0, rel=1e-4) and np.isnan(fit.R_N_star)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda N, D, U, L: (N, np.where(D > U, U, D), U, L), "at least 3 distinct numbers of epochs"),
        (lambda N, D, U, L: (N, D * 0.5, U, L), "fewer tokens than their unique tokens"),
        (lambda N, D, U, L: (N, D, U, -L), "loss has 54 non-finite, zero or negative"),
    ],
)
def test_bad_runs_are_refused(change, message):
    with pytest.raises(BadInputError, match=message):
        fit_data_constrained(*change(*_repetition_study(8.0, 3.0, 0.0)), **TRUTH, bootstrap=0)


def test_a_stage1_law_without_a_positive_exponent_is_refused():
    with pytest.raises(BadInputError, match="stage-1 beta=0"):
        fit_data_constrained(*_repetition_study(8.0, 3.0, 0.0), **{**TRUTH, "beta": 0.0}, bootstrap=0)


def test_repeats_as_good_as_new_data_have_no_finite_r_d_star():
    N, D, unique, loss = _repetition_study(1e12, 3.0, noise=0.0)  # R*_D beyond any repetition: no decay
    with pytest.raises(FitDidNotConvergeError, match="ran off to R. = infinity"):
        fit_data_constrained(N, D, unique, loss, **TRUTH, bootstrap=0)
