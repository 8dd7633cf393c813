"""The persistence baseline (predict that nothing moves) and the rule that flags a world model losing to it."""

import numpy as np
import pytest

from roboscale.evaluate.world_model import HorizonError, WorldModelEvaluation, persistence_mse_normalised


def test_persistence_error_matches_a_hand_computation():
    states = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0], [3.0, 5.0]])
    start, scale = np.array([0, 1]), np.array([1.0, 2.0])
    # h = 1: (s1 - s0) / scale = (1, 1), (s2 - s1) / scale = (2, 0): squares 1, 1, 4, 0.
    assert persistence_mse_normalised(states, start, 1, scale) == pytest.approx(6 / 4)
    # h = 2: (s2 - s0) / scale = (3, 1), (s3 - s1) / scale = (2, 1.5): squares 9, 1, 4, 2.25.
    assert persistence_mse_normalised(states, start, 2, scale) == pytest.approx(16.25 / 4)


def _evaluation(*errors: tuple[int, float, float]) -> WorldModelEvaluation:
    horizons = [HorizonError(h, 10, model, 0.5 * model, baseline) for h, model, baseline in errors]
    return WorldModelEvaluation("run", 100, "finished", "validation", 3, [(0, 0)], horizons, 1.0)


def test_a_model_worse_than_persistence_is_flagged_at_those_horizons_only():
    evaluation = _evaluation((1, 2.29, 0.0046), (5, 0.3, 0.9), (20, 4.0, 3.5))
    assert [error.worse_than_persistence for error in evaluation.horizons] == [True, False, True]
    assert evaluation.persistence_warning == (
        "worse than predicting no change at horizons 1, 20: normalised MSE 2.29 vs 0.0046, 4 vs 3.5"
    )
    out = evaluation.to_dict()
    assert out["worse_than_persistence_at"] == [1, 20]
    assert [error["worse_than_persistence"] for error in out["horizons"]] == [True, False, True]


def test_a_model_that_beats_persistence_everywhere_has_no_warning():
    evaluation = _evaluation((1, 0.0042, 0.0046), (5, 0.5, 0.5))  # a tie is not a loss
    assert evaluation.persistence_warning is None
    assert evaluation.to_dict()["worse_than_persistence_at"] == []
    single = _evaluation((1, 0.01, 0.001))
    assert single.persistence_warning == "worse than predicting no change at horizon 1: normalised MSE 0.01 vs 0.001"
