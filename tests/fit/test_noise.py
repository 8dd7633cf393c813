"""The noise budget: estimator SE and seed SD per IsoFLOP point, on a hand-built runs table."""

import math

import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import noise_budget

RUNS = pd.DataFrame(
    {
        "budget": [1e11, 1e11, 1e11, 1e11, 2e11, 2e11],
        "d_model": [8, 8, 8, 16, 8, 8],
        "seed": [0, 1, 2, 0, 0, 1],
        "loss": [2.0, 2.2, 2.4, 1.9, 1.0, 1.1],
        "loss_se": [0.03, 0.04, 0.05, 0.02, math.nan, math.nan],  # NaN: measured before loss_se existed
    }
)


def test_seed_sd_and_estimator_se_per_point_by_hand():
    budget = noise_budget(RUNS)
    points = {(p["budget"], p["d_model"]): p for p in budget["points"]}
    assert list(points) == [(1e11, 8), (1e11, 16), (2e11, 8)]
    three = points[(1e11, 8)]
    assert three["seeds"] == 3 and three["loss_mean"] == pytest.approx(2.2)
    assert three["seed_sd"] == pytest.approx(0.2)  # sqrt(((-0.2)^2 + 0 + 0.2^2) / 2)
    assert three["estimator_se"] == pytest.approx(math.sqrt((0.03**2 + 0.04**2 + 0.05**2) / 3))
    assert three["ratio"] == pytest.approx(three["estimator_se"] / 0.2)
    one = points[(1e11, 16)]
    assert one["seeds"] == 1 and math.isnan(one["seed_sd"]) and one["estimator_se"] == pytest.approx(0.02)
    assert math.isnan(one["ratio"])
    unmeasured = points[(2e11, 8)]
    assert unmeasured["seed_sd"] == pytest.approx(0.1 / math.sqrt(2)) and math.isnan(unmeasured["estimator_se"])
    # medians over the points that have the value: SE of (0.0408, 0.02), SD of (0.2, 0.0707)
    assert budget["estimator_se_median"] == pytest.approx((three["estimator_se"] + 0.02) / 2)
    assert budget["seed_sd_median"] == pytest.approx((0.2 + 0.1 / math.sqrt(2)) / 2)
    assert budget["ratio"] == pytest.approx(budget["estimator_se_median"] / budget["seed_sd_median"])
    assert budget["target_ratio"] == 0.25


def test_runs_without_a_standard_error_column_or_seeds():
    budget = noise_budget(RUNS.drop(columns="loss_se").query("seed == 0"))
    assert all(math.isnan(p["estimator_se"]) and math.isnan(p["seed_sd"]) for p in budget["points"])
    assert math.isnan(budget["ratio"])
    with pytest.raises(BadInputError, match="no d_model column"):
        noise_budget(RUNS.drop(columns="d_model"))
