"""The report's noise-budget table and its verdict."""

from roboscale.report.analysis import GroupData
from roboscale.report.tables import noise_budget_table

POINT = {
    "budget": 1e11,
    "d_model": 8,
    "seeds": 3,
    "loss_mean": 2.2,
    "estimator_se": 0.01,
    "seed_sd": 0.08,
    "ratio": 0.125,
}


def html(budget) -> str:
    return str(noise_budget_table(GroupData({"noise_budget": budget}, "g", [])))


def test_the_table_shows_both_noises_and_the_verdict():
    budget = {
        "points": [POINT],
        "estimator_se_median": 0.01,
        "seed_sd_median": 0.08,
        "ratio": 0.125,
        "target_ratio": 0.25,
    }
    page = html(budget)
    assert "<td>0.01</td><td>0.08</td><td>0.12</td>" in page.replace("\n", "")
    assert "ratio 0.12, within the target of 0.25" in page
    above = html({**budget, "ratio": 0.5})
    assert "above the target" in above and "more validation episodes" in above


def test_missing_seeds_or_budget_are_said():
    one_seed = {
        "points": [POINT],
        "estimator_se_median": 0.01,
        "seed_sd_median": None,
        "ratio": None,
        "target_ratio": 0.25,
    }
    assert "fewer than 2 seeds per point" in html(one_seed)
    assert "No noise budget: not measured" in html(None)
