"""The forecast check against held-out runs, and the verdict built from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roboscale.fit import fit_isoflop, fit_parametric, simulate_isoflop_runs
from roboscale.fit.forecast_check import (
    MAX_AUDIT_RELATIVE_ERROR,
    MAX_MEAN_RELATIVE_ERROR,
    best_runs,
    flops_text,
    forecast_check,
    verdict,
)

LAW = (1.7, 400.0, 410.0, 0.34, 0.28)
"""(E, A, B, alpha, beta) of the simulated L(N, D) = E + A/N^alpha + B/D^beta."""
FITTED_BUDGETS = [1e13, 3e13, 1e14, 3e14]
HELD_OUT_BUDGET = 3e15
SIZES = [1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6, 6.4e6]
SMALL_GRID = {"log_E": (0.0, 0.5), "log_A": (5.0, 10.0), "log_B": (5.0, 10.0), "alpha": (0.3,), "beta": (0.3,)}


def _runs(budgets, seed: int, scale=lambda runs: runs, noise: float = 0.003) -> pd.DataFrame:
    runs = simulate_isoflop_runs(*LAW, budgets=budgets, model_sizes=SIZES, noise=noise, seed=seed)
    runs = scale(runs)
    return runs.assign(
        run_id=[f"r{i}" for i in range(len(runs))], budget=runs["C"], d_model=np.arange(len(runs)) % 7 * 8 + 8
    )


@pytest.fixture(scope="module")
def fitted():
    runs = _runs(FITTED_BUDGETS, seed=0)
    return {
        "parametric": fit_parametric(runs[["N", "D", "C", "loss"]], grid=SMALL_GRID, bootstrap=100),
        "isoflop": fit_isoflop(runs[["N", "D", "C", "loss", "budget"]], budget="budget", bootstrap=100),
        "frontier": {"error": "no learning curves"},
    }


def test_a_law_that_holds_forecasts_the_held_out_runs_inside_its_intervals(fitted):
    # Held-out runs measured to 0.1% (the fitted ones to 0.3%): at 95% per run, seven runs as
    # noisy as the fitted ones would leave one outside 30% of the time although the law holds.
    held = _runs([HELD_OUT_BUDGET], seed=1, noise=0.001)
    check = forecast_check(fitted, held, 3e14)
    assert check["factor"] == pytest.approx(10.0) and check["held_out_budgets"] == [HELD_OUT_BUDGET]
    parametric = check["laws"]["parametric"]
    assert parametric["n_points"] == len(SIZES)
    truth = LAW[0] + LAW[1] / held["N"] ** LAW[3] + LAW[2] / held["D"] ** LAW[4]
    predicted = np.array([point["predicted"] for point in parametric["points"]])
    assert np.max(np.abs(predicted / truth - 1)) < 0.01  # the law recovered, 10x beyond its data
    assert parametric["mean_abs_relative_error"] < 0.01 and parametric["n_outside"] == 0
    for point in parametric["points"]:
        assert (
            point["predicted_lo"] <= point["law_lo"] <= point["predicted"] <= point["law_hi"] <= point["predicted_hi"]
        )
    assert check["laws"]["frontier"] == {"error": "the frontier law was not fitted (no learning curves)"}
    optimum = check["laws"]["isoflop"]["optimum"][0]
    assert optimum["ratio"] == pytest.approx(optimum["N_opt_predicted"] / optimum["N_best_observed"])
    assert 0.5 < optimum["ratio"] < 2  # N_opt forecast within a ladder step of the best held-out size


def test_a_regime_change_beyond_the_fitted_budgets_is_caught(fitted):
    # The loss falls to a fifth at the held-out budget: nothing fitted below predicts it.
    held = _runs([HELD_OUT_BUDGET], seed=1, scale=lambda runs: runs.assign(loss=runs["loss"] / 5))
    parametric = forecast_check(fitted, held, 3e14)["laws"]["parametric"]
    assert parametric["bias"] == pytest.approx(4.0, rel=0.02) and parametric["n_outside"] == len(SIZES)
    result = verdict({"forecast_check": forecast_check(fitted, held, 3e14)})
    assert result["status"] == "fails"
    assert result["reasons"][0].startswith("parametric forecast of the held-out 3e15 FLOPs off by +4")


def test_best_runs_average_seeds_per_size():
    held = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "N": [1e5, 1e5, 2e5, 2e5],
            "C": [1e15] * 4,
            "budget": [1e15] * 4,
            "loss": [2.0, 2.4, 2.1, 2.15],
            "d_model": [8, 8, 16, 16],
        }
    )
    best = best_runs(held)
    assert best["N"].tolist() == [2e5] and best["loss"].tolist() == [pytest.approx(2.125)]


# The verdict on hand-built analyses -------------------------------------------------------------------------------


def _law_summary(errors, outside=0) -> dict:
    errors = list(errors)
    return {
        "points": [{"relative_error": e} for e in errors],
        "n_points": len(errors),
        "mean_abs_relative_error": float(np.mean(np.abs(errors))) if errors else None,
        "bias": float(np.mean(errors)) if errors else None,
        "n_outside": outside,
        "ci_level": 0.95,
    }


def _group(parametric=None, audit_error=0.01, regime=(), held_out=3) -> dict:
    laws = {} if parametric is None else {"parametric": parametric, "isoflop": {"optimum": [], **_law_summary([])}}
    return {
        "forecast_check": {"held_out_budgets": [6e12] if held_out else [], "n_held_out": held_out, "laws": laws},
        "audit": {"parametric": {"mean_abs_relative_error": audit_error, "held_out_budgets": [6e11]}},
        "regime": {"warnings": [{"kind": "isoflop_notch", "message": m, "fix": "f"} for m in regime]},
    }


def test_verdict_holds_when_every_check_passes():
    result = verdict(_group(_law_summary([0.02, -0.01, 0.03])))
    assert result == {
        "status": "holds",
        "reasons": ["parametric forecast of the held-out 6e12 FLOPs off by 2.0%, inside the interval"],
        "checked_laws": ["parametric"],
        "failed_checks": [],
    }


def test_verdict_fails_on_the_mean_error():
    result = verdict(_group(_law_summary([4.2, 4.4, 5.2])))
    assert result["status"] == "fails"
    assert result["reasons"] == ["parametric forecast of the held-out 6e12 FLOPs off by +460.0% (mean |error| > 5%)"]
    just_below = verdict(_group(_law_summary([MAX_MEAN_RELATIVE_ERROR - 1e-3])))
    assert just_below["status"] == "holds"


def test_verdict_fails_on_coverage_alone():
    result = verdict(_group(_law_summary([0.031, 0.068, 0.036], outside=1)))
    assert result["status"] == "fails"
    assert result["reasons"] == [
        "parametric forecast of the held-out 6e12 FLOPs off by +4.5% (1 of 3 observed outside the 95% interval)"
    ]


def test_verdict_fails_on_the_audit_and_on_a_regime_warning():
    audit = verdict(_group(_law_summary([0.01]), audit_error=0.148))
    assert audit["status"] == "fails"
    assert audit["reasons"] == [
        "parametric law refitted without the largest fitted budget (6e11 FLOPs) forecasts it off by 14.8% (> 5%)"
    ]
    assert verdict(_group(None, audit_error=MAX_AUDIT_RELATIVE_ERROR + 0.001, held_out=0))["status"] == "fails"
    regime = verdict(_group(_law_summary([0.01]), regime=["the profile at 6e11 FLOPs is a notch"]))
    assert regime == {
        "status": "fails",
        "reasons": ["not in a power-law regime: the profile at 6e11 FLOPs is a notch"],
        "checked_laws": ["parametric"],
        "failed_checks": ["regime"],
    }


def test_verdict_is_unchecked_without_held_out_runs():
    result = verdict(_group(None, held_out=0))
    assert result["status"] == "unchecked" and result["checked_laws"] == []
    assert result["reasons"][0].startswith("not checked beyond the fitted budgets (set holdout_budget = true")
    failed_laws = verdict(_group(None, held_out=3))
    assert failed_laws["status"] == "unchecked" and "no law could forecast" in failed_laws["reasons"][0]


def test_flops_text():
    assert [flops_text(x) for x in (6e12, 2.5e11, 1e9, 300.0)] == ["6e12", "2.5e11", "1e9", "3e2"]


def test_a_fitted_floor_far_from_the_known_one_fails_but_still_extrapolates():
    from roboscale.fit.forecast_check import extrapolates, verdict

    group = {"parametric": {"E": 3.40}, "known_floor": {"loss": 3.262, "kind": "exact"}, "audit": {}}
    result = verdict(group)
    assert result["status"] == "fails" and result["failed_checks"] == ["floor"]
    assert "+0.138 from the data's known floor 3.262" in result["reasons"][0]
    assert extrapolates(result)
    close = verdict({**group, "parametric": {"E": 3.30}})
    assert close["status"] == "unchecked"
    lower_bound = verdict({**group, "known_floor": {"loss": 0.0, "kind": "lower bound"}})
    assert lower_bound["status"] == "unchecked"


def test_an_exponent_interval_wider_than_a_tenth_fails_the_verdict():
    from roboscale.fit.forecast_check import extrapolates, verdict

    wide = verdict({"isoflop": {"a": 0.266, "ci": {"a": [0.148, 1.170]}}, "audit": {}})
    assert wide["status"] == "fails" and wide["failed_checks"] == ["precision"]
    assert "half-width 0.51" in wide["reasons"][0] and extrapolates(wide)
    narrow = verdict({"isoflop": {"a": 0.45, "ci": {"a": [0.40, 0.52]}}, "audit": {}})
    assert narrow["status"] == "unchecked"
    both = verdict(
        {
            "isoflop": {"ci": {"a": [0.148, 1.170]}},
            "audit": {"parametric": {"mean_abs_relative_error": 0.148, "held_out_budgets": [6e11]}},
        }
    )
    assert both["failed_checks"] == ["audit", "precision"] and not extrapolates(both)


def test_an_exponent_from_two_budgets_is_not_pinned_down_even_with_a_zero_width_interval():
    from roboscale.fit.forecast_check import verdict

    two = verdict({"isoflop": {"a": 0.362, "ci": {"a": [0.362, 0.362]}, "n_usable_budgets": 2}, "audit": {}})
    assert two["status"] == "fails" and two["failed_checks"] == ["precision"]
    assert "only 2 usable IsoFLOP budgets" in two["reasons"][0]
    three = verdict({"isoflop": {"a": 0.45, "ci": {"a": [0.40, 0.52]}, "n_usable_budgets": 3}, "audit": {}})
    assert three["status"] == "unchecked"
