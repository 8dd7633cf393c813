"""The data mixing law of Ye et al. (2024): the published five-domain fits, recovery
of a known two-source law, the optimal mixture, and bad input."""

import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit.examples import example_path
from roboscale.fit.mixture import check_proportions, fit_mixture_law, optimal_mixture

DOMAINS = ("academic", "prose", "dialogue", "symbolic", "internet")
PUBLISHED = {  # [log_c, log_k, t_academic .. t_internet], mean Huber objective (Ye et al., 70M, step 30,000)
    "academic": ([0.9750, -2.1391, -10.0864, 2.7140, 2.7106, 2.6083, 1.5866], 5.683e-4),
    "prose": ([1.2624, -2.1656, 1.3930, -4.6811, 0.7855, 1.8719, 0.5734], 1.233e-4),
    "dialogue": ([1.1375, -7.1017, 6.7135, 6.2643, -31.8621, 6.6423, 6.2053], 5.513e-4),
    "symbolic": ([0.4750, -3.6546, 3.3289, 3.6705, 3.1127, -16.4217, 3.1591], 1.428e-4),
    "internet": ([1.2402, -1.9510, 1.1897, 0.8697, -0.5184, 1.7122, -3.0870], 8.166e-5),
}


@pytest.fixture(scope="module")
def anchor():
    frame = pd.read_csv(example_path("ye2024_mixing"))
    return frame[[f"r_{d}" for d in DOMAINS]].to_numpy(), frame


def _published_prediction(domain: str, proportions: np.ndarray) -> np.ndarray:
    params = np.array(PUBLISHED[domain][0])
    return np.exp(params[0]) + np.exp(params[1] + proportions @ params[2:])


@pytest.mark.parametrize("domain", DOMAINS)
def test_five_domain_fit_matches_the_published_objective_and_predictions(anchor, domain):
    proportions, frame = anchor
    fit = fit_mixture_law(proportions, frame[f"loss_{domain}"], DOMAINS, name=domain, bootstrap=0)
    assert fit.objective == pytest.approx(PUBLISHED[domain][1], rel=0.02)
    # t is identified only up to a common shift: compare predictions, not t.
    np.testing.assert_allclose(fit.predict(proportions), _published_prediction(domain, proportions), atol=2e-3)
    corner = np.eye(5)  # also at the pure sources, which no training mixture was
    np.testing.assert_allclose(fit.predict(corner), _published_prediction(domain, corner), rtol=0.01)
    assert fit.t[-1] == 0.0


def _two_source_runs(c=1.2, k=0.5, t=-1.5, noise=0.002, seed=3):
    share = np.linspace(0.0, 1.0, 9)
    rng = np.random.default_rng(seed)
    loss = c + k * np.exp(t * share) + noise * rng.standard_normal(share.size)
    return np.column_stack([share, 1.0 - share]), loss


def test_two_source_law_recovers_its_three_parameters():
    proportions, loss = _two_source_runs()
    fit = fit_mixture_law(proportions, loss, ("real", "sim"), bootstrap=200, seed=1)
    assert fit.c == pytest.approx(1.2, abs=0.05)
    assert fit.k == pytest.approx(0.5, abs=0.05)
    assert fit.t[0] == pytest.approx(-1.5, abs=0.15)
    assert fit.bootstrap_converged == 200
    low, high = fit.ci["t_real"]
    assert low < -1.5 < high
    assert fit.to_dict()["t"] == {"real": fit.t[0], "sim": 0.0}


def test_the_bootstrap_is_reproducible_with_the_same_seed():
    proportions, loss = _two_source_runs()
    first = fit_mixture_law(proportions, loss, ("real", "sim"), bootstrap=30, seed=5)
    again = fit_mixture_law(proportions, loss, ("real", "sim"), bootstrap=30, seed=5)
    np.testing.assert_array_equal(first.samples, again.samples)


def test_optimal_mixture_balances_two_validation_sources():
    # Loss on "real" falls with the real share; loss on "sim" rises with it. Each alone
    # wants a pure mixture; with equal weights the optimum has a closed form.
    share = np.linspace(0.0, 1.0, 7)
    proportions = np.column_stack([share, 1.0 - share])
    real = fit_mixture_law(proportions, 1.0 + np.exp(-2.0 * share), ("real", "sim"), name="real", bootstrap=20)
    sim = fit_mixture_law(proportions, 1.0 + np.exp(2.0 * share - 2.0), ("real", "sim"), name="sim", bootstrap=20)
    # d/dr [exp(-2r) + exp(2r - 2)] = 0  <=>  r = 0.5
    both = optimal_mixture([real, sim], {"real": 1.0, "sim": 1.0})
    assert both.proportions[0] == pytest.approx(0.5, abs=0.01)
    assert both.loss == pytest.approx(1.0 + np.exp(-1.0), abs=0.01)
    assert both.bootstrap == 20
    low, high = both.proportions_ci["real"]
    assert low <= both.proportions[0] <= high
    # Weighting "real" 3:1 moves the optimum to exp(-2r) * 3 = exp(2r - 2)  <=>  r = (2 + ln 3) / 4.
    skewed = optimal_mixture([real, sim], {"real": 3.0, "sim": 1.0})
    assert skewed.proportions[0] == pytest.approx((2.0 + np.log(3.0)) / 4.0, abs=0.01)
    # One target source alone: the pure mixture that source wants.
    assert optimal_mixture([real, sim], "real").proportions[0] > 0.99


def test_proportions_outside_the_simplex_are_refused_naming_the_row():
    with pytest.raises(BadInputError, match=r"row 1 .* summing to 1.1, not 1"):
        check_proportions([[0.5, 0.5], [0.6, 0.5]], ("a", "b"))
    with pytest.raises(BadInputError, match=r"row 0 .* outside \[0, 1\]"):
        check_proportions([[-0.2, 1.2], [0.5, 0.5]], ("a", "b"))


def test_too_few_mixtures_for_the_law_are_refused():
    proportions = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(BadInputError, match="at least 4 mixtures"):
        fit_mixture_law(proportions, [1.0, 0.9, 0.8], ("a", "b"), bootstrap=0)


def test_an_unknown_target_is_refused():
    proportions, loss = _two_source_runs()
    fit = fit_mixture_law(proportions, loss, ("real", "sim"), name="loss_real", bootstrap=0)
    with pytest.raises(BadInputError, match="not a fitted validation source"):
        optimal_mixture([fit], "loss_sim")


def test_an_optimum_beyond_the_trained_mixtures_is_flagged():
    share = np.linspace(0.2, 0.8, 6)  # never trained below 20% or above 80% of "real"
    proportions = np.column_stack([share, 1.0 - share])
    real = fit_mixture_law(proportions, 1.0 + np.exp(-2.0 * share), ("real", "sim"), name="real", bootstrap=0)
    assert real.observed_range[0] == pytest.approx((0.2, 0.8))
    assert optimal_mixture([real]).extrapolated  # the pure "real" mixture
    sim = fit_mixture_law(proportions, 1.0 + np.exp(2.0 * share - 2.0), ("real", "sim"), name="sim", bootstrap=0)
    assert not optimal_mixture([real, sim], {"real": 1.0, "sim": 1.0}).extrapolated  # r = 0.5
