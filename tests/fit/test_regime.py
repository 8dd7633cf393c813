"""Regime detection: clean power laws raise nothing; a break, a notch, a late drop are found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roboscale.fit import simulate_learning_curves
from roboscale.fit.laws import broken_power_law
from roboscale.fit.regime import (
    NOTCH_RELATIVE_DEPTH,
    curve_steepening,
    detect_regime,
    frontier_break,
    profile_notch,
)

WIDTHS = np.array([8, 16, 24, 32])
"""The issue's world-model IsoFLOP profile at 6e11 FLOPs: widths and their losses (nats)."""
NOTCH_LOSSES = [1.69, 1.10, 1.59, 1.76]
DEMO_LAYERS = 3


def ladder_params(widths) -> np.ndarray:
    """Parameters of a ladder width: 12 d^2 per layer (attention and MLP matrices)."""
    return 12 * np.asarray(widths, float) ** 2 * DEMO_LAYERS


def test_the_issues_notch_is_a_notch_and_a_parabola_is_not():
    notch = profile_notch(6e11, pd.DataFrame({"N": ladder_params(WIDTHS), "loss": NOTCH_LOSSES}))
    # Parabola in ln N through widths 8, 24, 32: 1.489 at width 16, against the 1.10 observed.
    assert notch["notch"] and notch["loss_expected"] == pytest.approx(1.4887, abs=1e-3)
    assert notch["depth"] == pytest.approx((1.4887 - 1.10) / 1.10, abs=1e-3)
    log_n = np.log(ladder_params([4, 8, 16, 24, 32]))
    valley = 1.2 + 0.05 * (log_n - np.log(ladder_params(16))) ** 2
    clean = profile_notch(
        6e11, pd.DataFrame({"N": np.exp(log_n), "loss": valley * (1 + 0.005 * np.array([1, -1, 1, -1, 1]))})
    )
    assert not clean["notch"] and abs(clean["depth"]) < NOTCH_RELATIVE_DEPTH / 5


def test_a_profile_with_its_minimum_at_the_edge_or_three_sizes_is_not_judged():
    edge = profile_notch(1e11, pd.DataFrame({"N": ladder_params(WIDTHS), "loss": [1.0, 1.2, 1.3, 1.4]}))
    three = profile_notch(1e11, pd.DataFrame({"N": ladder_params([8, 16, 24]), "loss": [1.5, 1.0, 1.5]}))
    assert edge["depth"] is None and three["depth"] is None and not edge["notch"] and not three["notch"]


def test_a_clean_frontier_has_no_break_and_a_broken_one_has():
    rng = np.random.default_rng(0)
    C = np.geomspace(1e9, 1e12, 40)
    noise = np.exp(0.005 * rng.standard_normal(C.size))
    clean = frontier_break(C, (1.2 + 80 * C**-0.2) * noise)
    assert not clean["significant"] and clean["delta_bic"] < 10
    # Slope 0.1 below 1e11 FLOPs, 0.7 above: the break the test must find, where it is.
    broken = frontier_break(C, broken_power_law(C, 0.2, 30, 0.1, 0.6, 1e11, 0.1) * noise)
    assert broken["significant"] and broken["delta_bic"] > 100
    assert broken["break_C"] == pytest.approx(1e11, rel=0.3)
    assert broken["slope_after"] / broken["slope_before"] > 4


def test_the_issues_transition_curves_steepen_and_only_the_unfinished_one_late():
    # The 6e12-FLOP width-32 world-model run of the issue (validation loss at FLOPs so far):
    # it falls through the transition at 18% of its compute and is flat again by its end.
    transition = pd.DataFrame({"C": [8.4e10, 1.9e11, 4.6e11, 1.1e12, 6e12], "loss": [4.74, 2.68, 1.70, 0.36, 0.22]})
    found = curve_steepening("wm-6e12-w32", transition)
    assert found["steepening"] and not found["late"] and found["at_C"] == pytest.approx(4.6e11)
    assert found["slope"] == pytest.approx(np.log(0.36 / 1.70) / np.log(1.1e12 / 4.6e11))
    # The 6e11 width-16 run (the notch): 1.54 at 3e11, 1.10 at 6e11, after a typical start.
    notch_run = pd.DataFrame({"C": [6e9, 2e10, 6e10, 1.5e11, 3e11, 6e11], "loss": [3.5, 2.6, 2.1, 1.8, 1.54, 1.10]})
    late = curve_steepening("wm-6e11-w16", notch_run)
    assert late["late"] and late["at_C"] == pytest.approx(3e11)
    assert late["slope"] == pytest.approx(np.log(1.10 / 1.54) / np.log(2)) and late["slope_before"] == pytest.approx(
        np.log(1.8 / 2.1) / np.log(2.5)
    )
    C = np.geomspace(1e9, 1e12, 12)
    assert not curve_steepening("clean", pd.DataFrame({"C": C, "loss": 1.2 + 80 * C**-0.2}))["steepening"]


def test_simulated_clean_learning_curves_raise_no_warning():
    curves = simulate_learning_curves(1.7, 400.0, 410.0, 0.34, 0.28, model_sizes=[2e5, 5e5, 1e6, 3e6], max_flops=1e15)
    curves = curves.assign(holdout=False)
    runs = pd.DataFrame({"N": curves.groupby("run")["N"].first().to_numpy(), "budget": 1e15})
    runs["loss"] = curves.groupby("run")["loss"].last().to_numpy()
    frontier = _envelope(curves)
    regime = detect_regime(curves[["run", "C", "loss", "holdout"]], runs, {"frontier": frontier}, [])
    assert regime["warnings"] == []
    # The envelope of a few curves is not one power law to 0.3% (the BIC prefers the broken law),
    # but its slope bends by less than the factor 2 that makes a break count.
    test = regime["frontier"]
    assert test["n_points"] >= 8 and 0.5 < test["slope_after"] / test["slope_before"] < 2
    assert not test["significant"]
    assert [s["slope"] < 0 for s in regime["local_slopes"]] == [True] * len(regime["local_slopes"])


def test_a_notch_and_a_late_drop_become_warnings_with_their_fix():
    curves = pd.DataFrame(
        {
            "run": "w16",
            "C": [6e9, 2e10, 6e10, 1.5e11, 3e11, 6e11],
            "loss": [3.5, 2.6, 2.1, 1.8, 1.54, 1.10],
            "holdout": True,
        }
    )
    runs = pd.DataFrame({"N": ladder_params(WIDTHS), "loss": NOTCH_LOSSES, "budget": 6e11})
    regime = detect_regime(curves, runs, None, [])
    kinds = [warning["kind"] for warning in regime["warnings"]]
    assert kinds == ["isoflop_notch", "late_steepening"]
    assert "(held out)" in regime["warnings"][1]["message"]
    assert all("train 10x more compute" in warning["fix"] for warning in regime["warnings"])
    assert "wm_target=delta" in regime["warnings"][0]["fix"]


def test_curvature_jumping_between_budgets_is_a_warning():
    profiles = [
        {"C": 1e11, "usable": True, "curvature": 0.05},
        {"C": 2.5e11, "usable": True, "curvature": 0.06},
        {"C": 6e11, "usable": True, "curvature": 0.6},
    ]
    regime = detect_regime(
        pd.DataFrame(columns=["run", "C", "loss"]), pd.DataFrame(columns=["N", "loss", "budget"]), None, profiles
    )
    assert [w["kind"] for w in regime["warnings"]] == ["isoflop_curvature"]
    assert [round(r["ratio"], 3) for r in regime["curvature"]] == [1.2, 10.0]


def _envelope(curves: pd.DataFrame) -> dict:
    """The lowest loss at each compute value (curves on a shared grid of FLOPs)."""
    grid = np.geomspace(curves["C"].min(), curves["C"].max(), 60)
    best = np.full(grid.size, np.inf)
    for _, part in curves.groupby("run"):
        inside = (grid >= part["C"].min()) & (grid <= part["C"].max())
        best[inside] = np.minimum(best[inside], np.interp(np.log(grid[inside]), np.log(part["C"]), part["loss"]))
    keep = np.isfinite(best) & (best < np.concatenate([[np.inf], np.minimum.accumulate(best)[:-1]]))
    return {"C": grid[keep].tolist(), "loss": best[keep].tolist()}
