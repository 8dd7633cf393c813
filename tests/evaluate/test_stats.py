import pytest
from scipy.stats import binomtest

from roboscale.evaluate import wilson_interval

# By hand, z = 1.959964: p = k/n, shrink = 1 + z^2/n, centre = (p + z^2/2n) / shrink,
# half = z sqrt(p(1-p)/n + z^2/4n^2) / shrink. E.g. 45/50: shrink 1.076829, centre 0.871451,
# half 0.085063.
HAND = {
    (0, 10): (0.0, 0.277533),
    (10, 10): (0.722467, 1.0),
    (5, 10): (0.236593, 0.763407),
    (45, 50): (0.786398, 0.956524),
    (1, 1): (0.206549, 1.0),
}


@pytest.mark.parametrize("counts", sorted(HAND))
def test_wilson_interval_matches_hand_values_and_scipy(counts):
    low, high = wilson_interval(*counts)
    assert (low, high) == pytest.approx(HAND[counts], abs=1e-6)
    reference = binomtest(*counts).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-12)


def test_all_or_nothing_bounds_are_exact_and_the_interval_narrows_with_trials():
    assert wilson_interval(0, 7)[0] == 0.0 and wilson_interval(7, 7)[1] == 1.0
    widths = [high - low for low, high in (wilson_interval(n // 2, n) for n in (10, 40, 160))]
    assert widths[0] > widths[1] > widths[2] and widths[2] == pytest.approx(widths[1] / 2, rel=0.05)


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="between 0 and trials"):
        wilson_interval(11, 10)
