"""Intrinsic performance: the least frontier compute that reaches a run's score."""

import numpy as np

from roboscale.fit import compute_frontier, intrinsic_performance


def test_intrinsic_performance_by_hand():
    C = np.array([1.0, 2.0, 4.0, 8.0])
    success = np.array([0.1, 0.3, 0.2, 0.6])
    _, frontier_s = compute_frontier(C, success)
    assert frontier_s.tolist() == [0.1, 0.3, 0.3, 0.6]
    # 0.2 lies halfway between the frontier's 0.1 (C=1) and 0.3 (C=2): log-linear, sqrt(2)
    np.testing.assert_allclose(intrinsic_performance(C, success), [1.0, 2.0, np.sqrt(2.0), 8.0])


def test_a_run_on_the_frontier_is_its_own_compute_and_ties_take_the_cheapest():
    C = np.array([4.0, 1.0, 2.0])  # unsorted on purpose
    success = np.array([0.5, 0.5, 0.2])
    frontier_c, frontier_s = compute_frontier(C, success)
    assert frontier_c.tolist() == [1.0, 2.0, 4.0]
    assert frontier_s.tolist() == [0.5, 0.5, 0.5]
    # 0.5 is first reached at C=1, so the C=4 run is worth only 1 FLOP of frontier compute
    np.testing.assert_allclose(intrinsic_performance(C, success), [1.0, 1.0, 1.0])
