"""The success analysis on hand-made evaluations with known answers."""

import pandas as pd
import pytest

from roboscale.study.success import success_analysis


def evaluated(alpha=0.3, A=20.0):
    """Runs whose best success per budget follows 1 - success = A C^-alpha exactly."""
    rows = []
    for budget in (1e10, 1e11, 1e12, 1e13):
        for N, penalty in ((1e4, 0.1), (3e4, 0.0), (1e5, 0.05)):
            rate = max(0.0, 1 - A * budget**-alpha - penalty)
            rows.append(dict(run_id=f"{budget:g}-{N:g}", seed=0, N=N, D=budget / (6 * N), C=budget, budget=budget))
            rows[-1].update(loss=2.0 - rate, success=rate, ci_low=max(rate - 0.1, 0), ci_high=min(rate + 0.1, 1))
    frame = pd.DataFrame(rows)
    finished = frame[["run_id", "seed", "N", "D", "C", "budget", "loss"]]
    evaluations = frame[["run_id", "success", "ci_low", "ci_high"]].assign(
        episodes=50, mean_return=0.0, mean_length=1.0
    )
    return finished, evaluations


def test_failure_law_and_correlation_are_recovered():
    finished, evaluations = evaluated()
    success = success_analysis(finished, evaluations, bootstrap=200, seed=0)
    law = success["failure_law"]
    assert law["alpha"] == pytest.approx(0.3, rel=1e-3) and law["A"] == pytest.approx(20.0, rel=1e-2)
    assert [b["N"] for b in success["best_per_budget"]] == [3e4] * 4
    assert success["correlation"]["pearson"] == pytest.approx(-1.0)  # loss = 2 - success here
    assert success["correlation"]["n"] == 12
    intrinsic = success["intrinsic"]
    assert len(intrinsic["runs"]) == 12 and intrinsic["frontier"][-1]["success"] == max(evaluations["success"])


def test_nothing_evaluated_gives_no_section_and_no_spread_gives_reasons():
    finished, evaluations = evaluated()
    assert success_analysis(finished, evaluations.iloc[0:0], bootstrap=10, seed=0) is None
    flat = evaluations.assign(success=0.0, ci_low=0.0, ci_high=0.2)
    result = success_analysis(finished, flat, bootstrap=10, seed=0)
    assert "no spread" in result["correlation"]["error"]
    assert "error" in result["intrinsic"] and "error" in result["failure_law"]
