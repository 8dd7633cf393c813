"""Regime detection: are the runs in the power-law regime a fitted law assumes?

A scaling law extrapolates only when the runs it was fitted on already follow it. Three
signs that they do not yet, each checked here from run records alone:

- the compute frontier bends: a broken power law (Caballero et al. 2022) fits the
  frontier of the learning curves much better than a single saturating power law
  (:data:`BREAK_MIN_DELTA_BIC`), and the measured log-log slopes on the two sides of
  the break differ by more than :data:`BREAK_SLOPE_FACTOR`;
- an IsoFLOP profile is a notch, not a valley: its lowest loss lies far
  (:data:`NOTCH_RELATIVE_DEPTH`) below the parabola through the budget's other sizes,
  or the profiles' curvature changes by more than :data:`CURVATURE_CHANGE_FACTOR`
  between neighbouring budgets;
- a learning curve steepens late: its local slope d ln L / d ln C grows by more than
  :data:`STEEPENING_FACTOR` (and :data:`STEEPENING_MIN_CHANGE`) in the last half of its
  compute (:data:`LATE_FRACTION`), a final loss still dropping through a transition.

Each warning names what would fix it.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from roboscale.errors import result_or_reason
from roboscale.fit.bootstrap import to_jsonable
from roboscale.fit.laws import BrokenPowerLawObjective, broken_power_law, saturating_power_law
from roboscale.fit.optimize import multistart
from roboscale.fit.power_law import broken_power_law_starts, fit_power_law

BREAK_MIN_DELTA_BIC = 10.0
"""The broken power law must lower the Bayesian information criterion of the frontier
(n ln(RSS/n) + k ln n, residuals in log loss) by more than this (10: "very strong"
evidence on Kass and Raftery's scale) before a break counts."""

BREAK_SLOPE_FACTOR = 2.0
"""A break counts when the frontier's measured slope d ln L / d ln C after it is more than
this factor steeper or shallower than before it."""

BREAK_MIN_SLOPE_CHANGE = 0.05
"""... and the two slopes differ by at least this much (in d ln L / d ln C)."""

LOG_NOISE_FLOOR = 0.003
"""Residuals (in ln loss) below this are measurement noise: each point's squared residual
is at least this squared in the BIC, so two near-perfect fits are not told apart by
round-off."""

LEAST_SQUARES_DELTA = 10.0
"""Huber delta of the break test's fits: far above any residual in ln loss, so the fits
are least squares and their residuals feed the BIC as it assumes."""

MIN_FRONTIER_POINTS = 8
"""Fewer frontier points than this: the break test is not made (6 parameters to fit)."""

BREAK_INTERIOR = (0.1, 0.9)
"""A break counts only inside this fraction of the frontier's ln C range (one at the edge
is a bend of the last point or two, not a regime)."""

NOTCH_RELATIVE_DEPTH = 0.10
"""An IsoFLOP profile is a notch when its lowest loss lies more than this fraction (10%,
ten times a typical seed spread) below the parabola through its other sizes."""

CURVATURE_CHANGE_FACTOR = 4.0
"""Neighbouring budgets whose IsoFLOP curvatures (d^2 L / d (ln N)^2) differ by more than
this factor: the profile's shape is changing, not only its position."""

LATE_DECADES = 1.5
"""The part of a learning curve whose local slopes are compared: its last 1.5 decades of
compute (FLOPs)."""

LATE_FRACTION = 0.5
"""A steepening is late when its interval ends in the run's last half of compute: the run
ends inside the transition. (One that ends earlier, with the curve flat again by the end,
is recorded per curve but is no warning: the final loss lies past it.)"""

FRONTIER_DECADES_BELOW = 0.5
"""The break test looks at the frontier from this many decades below the smallest fitted
budget up: lower, the frontier is made of the first steps of the smallest runs (warmup,
the initial plateau), which no law fitted on final losses extrapolates from."""

STEEPENING_FACTOR = 2.5
"""A curve steepens late when a local slope d ln L / d ln C in its late part is more than
this factor steeper than the shallowest slope before it (cosine learning-rate decay alone
steepens the end of a curve by less)."""

STEEPENING_LOOKBACK = 2
"""A slope is compared with the two intervals before it: the curve accelerates there. (Against
every earlier slope, the flat start of a run under learning-rate warmup would make each
interval after the initial drop look steep.)"""

STEEPENING_MIN_CHANGE = 0.2
"""... and steeper by at least this much (a flat curve's slope of 0.02 doubling is noise)."""

FIX_MORE_COMPUTE = "train 10x more compute before fitting, so that the fitted budgets lie past the change"
FIX_REPRESENTATION = "or try a different tokenizer / wm_target=delta so that the transition happens at a smaller scale"
FIX_LONGER_RUNS = "longer runs (more tokens per parameter), so that every run ends past the transition"
FIX_MORE_SIZES = "more seeds and model sizes around the minimum, to tell a notch from noise"


def detect_regime(
    curves: pd.DataFrame,
    runs: pd.DataFrame,
    frontier: dict | None = None,
    profiles: list[dict] | None = None,
    smallest_budget: float | None = None,
) -> dict:
    """Regime checks of one (task, tokenizer) group.

    ``curves``: learning curves, columns run (id), C (FLOPs so far), loss, optionally
    holdout (bool); ``runs``: the fitted runs, columns N (parameters), loss, budget
    (FLOPs); ``frontier``: the frontier fit's dict (its "frontier" C and loss) or None;
    ``profiles``: the IsoFLOP fit's profile dicts (their C and curvature) or None;
    ``smallest_budget``: the smallest fitted budget (FLOPs), see :data:`FRONTIER_DECADES_BELOW`.

    Returns ``{"warnings": [{"kind", "message", "fix"}], "frontier": {...},
    "local_slopes": [...], "profiles": [...], "curves": [...]}``."""
    frontier_test = _frontier_break(frontier, smallest_budget)
    notches = [profile_notch(budget, part) for budget, part in runs.groupby("budget", sort=True)]
    curvature = _curvature_changes(profiles or [])
    steep = [curve_steepening(run, part) for run, part in curves.groupby("run", sort=True)]
    warnings = _frontier_warnings(frontier_test) + _notch_warnings(notches) + curvature["warnings"]
    warnings += _steepening_warnings(steep, curves)
    return to_jsonable(
        {
            "warnings": warnings,
            "frontier": frontier_test,
            "local_slopes": frontier_test.get("local_slopes", []),
            "profiles": notches,
            "curvature": curvature["ratios"],
            "curves": steep,
        }
    )


# Frontier ------------------------------------------------------------------------------------------------------------


def local_slopes(C: np.ndarray, loss: np.ndarray, width_decades: float = 0.5) -> list[dict]:
    """d ln L / d ln C in consecutive windows ``width_decades`` wide (least-squares line of
    ln loss on ln C over each window's points; windows with fewer than 2 points are skipped)."""
    log_c, log_loss = np.log10(C), np.log(loss)
    edges = np.arange(log_c.min(), log_c.max() + width_decades, width_decades)
    out = []
    for low, high in itertools.pairwise(edges):
        inside = (log_c >= low) & (log_c <= high)
        if inside.sum() < 2 or np.ptp(log_c[inside]) == 0:
            continue
        slope = np.polyfit(log_c[inside] * math.log(10), log_loss[inside], 1)[0]
        out.append({"C_low": 10**low, "C_high": 10**high, "slope": float(slope)})
    return out


def _bic(residuals: np.ndarray, n_params: int) -> float:
    n = len(residuals)
    rss = float(np.sum(np.maximum(residuals**2, LOG_NOISE_FLOOR**2)))
    return n * math.log(rss / n) + n_params * math.log(n)


def _measured_slope(log_c: np.ndarray, log_loss: np.ndarray) -> float:
    return float(np.polyfit(log_c, log_loss, 1)[0]) if len(log_c) >= 2 and np.ptp(log_c) > 0 else math.nan


def frontier_break(C, loss) -> dict:
    """The break test on frontier points (C in FLOPs, loss): single saturating power law
    against a one-break broken power law, compared by BIC, and the measured slopes
    d ln L / d ln C on each side of the fitted break. "significant": the break counts
    (see :data:`BREAK_MIN_DELTA_BIC`, :data:`BREAK_SLOPE_FACTOR`, :data:`BREAK_INTERIOR`)."""
    C, loss = np.asarray(C, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    test = (
        f"BIC of a broken vs a single saturating power law (improvement > {BREAK_MIN_DELTA_BIC:g}), break inside "
        f"the range, measured slopes on its two sides differing by more than {BREAK_SLOPE_FACTOR:g}x"
    )
    out = {"test": test, "n_points": len(C), "local_slopes": local_slopes(C, loss) if len(C) >= 2 else []}
    if len(C) < MIN_FRONTIER_POINTS:
        return {**out, "significant": False, "note": f"{len(C)} frontier points: the test needs {MIN_FRONTIER_POINTS}"}
    single = result_or_reason(lambda: fit_power_law(C, loss, bootstrap=0, x_name="C", y_name="loss"))
    if isinstance(single, dict):
        return {**out, "significant": False, "note": f"the single power law did not converge: {single['error']}"}
    broken = best_broken_power_law(C, loss)
    log_c, log_loss = np.log(C), np.log(loss)
    residual_single = np.log(saturating_power_law(C, single.E, single.A, single.alpha)) - log_loss
    residual_broken = np.log(broken_power_law(C, **broken)) - log_loss
    delta_bic = _bic(residual_single, 3) - _bic(residual_broken, 6)
    log_break = _sharpest_bend(log_c, broken)
    before, after = log_c <= log_break, log_c > log_break
    slope_before = _measured_slope(log_c[before], log_loss[before])
    slope_after = _measured_slope(log_c[after], log_loss[after])
    ratio = slope_after / slope_before if slope_before else math.inf
    changed = (
        math.isfinite(slope_before)
        and math.isfinite(slope_after)
        and abs(slope_after - slope_before) >= BREAK_MIN_SLOPE_CHANGE
        and not (1 / BREAK_SLOPE_FACTOR <= ratio <= BREAK_SLOPE_FACTOR)
    )
    significant = bool(delta_bic > BREAK_MIN_DELTA_BIC and changed)
    return {
        **out,
        "significant": significant,
        "delta_bic": delta_bic,
        "break_C": math.exp(log_break),
        "broken_law": broken,
        "slope_before": slope_before,
        "slope_after": slope_after,
        "residual_rms_single": float(np.sqrt(np.mean(residual_single**2))),
        "residual_rms_broken": float(np.sqrt(np.mean(residual_broken**2))),
    }


def _sharpest_bend(log_c: np.ndarray, broken: dict[str, float]) -> float:
    """ln C where the fitted broken law's slope d ln L / d ln C changes fastest, inside the
    :data:`BREAK_INTERIOR` of the data's range (the law's d1 can lie outside the data when
    its bend is wide; where the slope turns is what the two sides are measured around)."""
    low, high = log_c.min() + np.array(BREAK_INTERIOR) * np.ptp(log_c)
    grid = np.linspace(low, high, 200)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # inf where the bend overflows
        slope = np.gradient(np.log(broken_power_law(np.exp(grid), **broken)), grid)
        bend = np.abs(np.gradient(slope, grid))
    if not np.isfinite(bend).any():
        return float(grid[len(grid) // 2])
    return float(grid[np.nanargmax(bend)])


def best_broken_power_law(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The lowest least-squares (in ln y) broken power law found from the usual grid of
    starts: ``{"E", "A", "c0", "c1", "d1", "f1"}``. Unlike :func:`fit_broken_power_law`
    it keeps the best point when the optimiser stops on its iteration limit (a sharp
    break drives f1 towards 0 without end): for a model comparison the best fit found is
    what counts, and an unfinished one only makes the test more conservative."""
    objective = BrokenPowerLawObjective(x, y, LEAST_SQUARES_DELTA)
    minima = multistart(objective, broken_power_law_starts(x, y), polish=8, explore_iter=200, polish_iter=2000)
    e, a, c0, c1, log_d1, log_f1 = minima.x[0]
    natural = (math.exp(e), math.exp(a), c0, c1, math.exp(log_d1), math.exp(log_f1))
    return dict(zip(("E", "A", "c0", "c1", "d1", "f1"), (float(value) for value in natural), strict=True))


def _frontier_break(frontier: dict | None, smallest_budget: float | None) -> dict:
    points = (frontier or {}).get("frontier") or {}
    C, loss = np.asarray(points.get("C") or [], float), np.asarray(points.get("loss") or [], float)
    if smallest_budget is not None and math.isfinite(smallest_budget):
        keep = C >= smallest_budget / 10**FRONTIER_DECADES_BELOW
        C, loss = C[keep], loss[keep]
    if not len(C):
        return {"significant": False, "note": "no compute frontier (the frontier fit was not made)", "local_slopes": []}
    return frontier_break(C, loss)


def _frontier_warnings(test: dict) -> list[dict]:
    if not test.get("significant"):
        return []
    steeper = abs(test["slope_after"]) > abs(test["slope_before"])
    message = (
        f"the compute frontier's slope d ln L / d ln C changes from {test['slope_before']:.2f} to "
        f"{test['slope_after']:.2f} at {test['break_C']:.2g} FLOPs (a broken power law fits better by "
        f"BIC {test['delta_bic']:.0f})"
    )
    fix = FIX_MORE_COMPUTE + ("; " + FIX_REPRESENTATION if steeper else "")
    return [{"kind": "frontier_break", "message": message, "fix": fix}]


# IsoFLOP profiles ----------------------------------------------------------------------------------------------------


def profile_notch(budget: float, runs: pd.DataFrame) -> dict:
    """How far one budget's lowest loss (mean over seeds) lies below the parabola in ln N
    through its other sizes: ``depth`` = (parabola - lowest) / lowest; None when the
    minimum is at an edge or fewer than 3 other sizes are there. ``runs``: columns N, loss."""
    sizes = runs.groupby("N", sort=True)["loss"].mean()
    log_n, loss = np.log(sizes.index.to_numpy(np.float64)), sizes.to_numpy(np.float64)
    lowest = int(np.argmin(loss))
    out = {"budget": float(budget), "n_sizes": len(loss), "depth": None, "notch": False}
    if lowest in (0, len(loss) - 1) or len(loss) < 4:
        return out
    others = np.arange(len(loss)) != lowest
    parabola = np.polyfit(log_n[others], loss[others], 2)
    expected = float(np.polyval(parabola, log_n[lowest]))
    depth = (expected - loss[lowest]) / loss[lowest]
    return {
        **out,
        "N_lowest": float(np.exp(log_n[lowest])),
        "loss_lowest": float(loss[lowest]),
        "loss_expected": expected,
        "depth": float(depth),
        "notch": bool(depth > NOTCH_RELATIVE_DEPTH),
    }


def _notch_warnings(notches: list[dict]) -> list[dict]:
    out = []
    for notch in notches:
        if not notch["notch"]:
            continue
        message = (
            f"the IsoFLOP profile at {notch['budget']:.2g} FLOPs is a notch, not a valley: its lowest loss "
            f"{notch['loss_lowest']:.3g} (N = {notch['N_lowest']:.3g}) lies {100 * notch['depth']:.0f}% below "
            f"the parabola through its other sizes ({notch['loss_expected']:.3g})"
        )
        fix = f"{FIX_MORE_COMPUTE}; {FIX_REPRESENTATION}; {FIX_MORE_SIZES}"
        out.append({"kind": "isoflop_notch", "message": message, "fix": fix})
    return out


def _curvature_changes(profiles: list[dict]) -> dict:
    """Ratios of neighbouring usable profiles' curvatures, and a warning per jump."""
    usable = sorted(
        (p for p in profiles if p.get("usable") and (p.get("curvature") or 0) > 0), key=lambda p: p.get("C") or 0
    )
    ratios, warnings = [], []
    for first, second in itertools.pairwise(usable):
        ratio = second["curvature"] / first["curvature"]
        ratios.append({"C_low": first["C"], "C_high": second["C"], "ratio": ratio})
        if not (1 / CURVATURE_CHANGE_FACTOR <= ratio <= CURVATURE_CHANGE_FACTOR):
            message = (
                f"the IsoFLOP curvature changes {ratio:.2g}x between {first['C']:.2g} and {second['C']:.2g} FLOPs "
                f"(more than {CURVATURE_CHANGE_FACTOR:g}x): the profiles change shape, not only position"
            )
            warnings.append(
                {"kind": "isoflop_curvature", "message": message, "fix": f"{FIX_MORE_COMPUTE}; {FIX_MORE_SIZES}"}
            )
    return {"ratios": ratios, "warnings": warnings}


# Learning curves -----------------------------------------------------------------------------------------------------


def curve_steepening(run: str, curve: pd.DataFrame) -> dict:
    """One learning curve's local slopes d ln L / d ln C between consecutive evaluations over
    its last :data:`LATE_DECADES` decades (columns C in FLOPs, loss), and its steepenings: an
    interval more than :data:`STEEPENING_FACTOR` steeper than the shallowest of the :data:`STEEPENING_LOOKBACK` before it.
    "steepening": the loss fell through a transition during the run; "late": the (last)
    steep interval ends in the run's last part (:data:`LATE_FRACTION` of its compute on),
    so its final loss is still in the transition."""
    curve = curve[(curve["C"] > 0) & (curve["loss"] > 0)].sort_values("C")
    log_c, log_loss = np.log(curve["C"].to_numpy(np.float64)), np.log(curve["loss"].to_numpy(np.float64))
    out = {"run_id": str(run), "steepening": False, "late": False, "slopes": [], "C": []}
    if len(log_c) < 3:
        return out
    window = log_c >= log_c[-1] - LATE_DECADES * math.log(10)
    log_c, log_loss = log_c[window], log_loss[window]
    steps = np.diff(log_c) > 0
    slopes = (np.diff(log_loss)[steps] / np.diff(log_c)[steps]).tolist()
    starts, ends = np.exp(log_c[:-1][steps]).tolist(), np.exp(log_c[1:][steps]).tolist()
    out.update(slopes=slopes, C=starts)
    steep = [j for j in range(1, len(slopes)) if slopes[j] < 0 and _steeper(slopes[j], _shallowest_before(slopes, j))]
    if not steep:
        return out
    j = steep[-1]
    return {
        **out,
        "steepening": True,
        "late": bool(ends[j] >= LATE_FRACTION * ends[-1]),
        "at_C": starts[j],
        "slope": slopes[j],
        "slope_before": _shallowest_before(slopes, j),
    }


def _shallowest_before(slopes: list[float], j: int) -> float:
    """The shallowest of the :data:`STEEPENING_LOOKBACK` slopes before interval ``j`` (slopes
    are negative while the loss falls: the shallowest is the largest)."""
    return max(slopes[max(0, j - STEEPENING_LOOKBACK) : j])


def _steeper(slope: float, before: float) -> bool:
    magnitude_before = max(-before, 0.0)
    return -slope - magnitude_before >= STEEPENING_MIN_CHANGE and -slope > STEEPENING_FACTOR * magnitude_before


def _steepening_warnings(steep: list[dict], curves: pd.DataFrame) -> list[dict]:
    flagged = [curve for curve in steep if curve["late"]]
    if not flagged:
        return []
    held = set(curves.loc[curves["holdout"].astype(bool), "run"]) if "holdout" in curves else set()
    examples = "; ".join(
        f"run {curve['run_id']}{' (held out)' if curve['run_id'] in held else ''}: slope {curve['slope_before']:.2f} "
        f"then {curve['slope']:.2f} from {curve['at_C']:.2g} FLOPs"
        for curve in flagged[:3]
    )
    more = f" and {len(flagged) - 3} more" if len(flagged) > 3 else ""
    message = (
        f"{len(flagged)} learning curve(s) steepen late (their final loss is still dropping through a "
        "transition): "
        f"{examples}{more}"
    )
    fix = f"{FIX_LONGER_RUNS}; {FIX_MORE_COMPUTE}; {FIX_REPRESENTATION}"
    return [{"kind": "late_steepening", "message": message, "fix": fix}]
