"""The forecast check: the fitted laws against runs trained beyond the fitted budgets.

A study with ``holdout_budget = true`` trains one budget 10x its largest and keeps
those runs out of every fit. Here each law forecasts them from the fitted runs alone:

- parametric: the loss of every held-out run from its own N and D, with the
  bootstrap interval of :meth:`ParametricFit.predict_loss_samples`;
- IsoFLOP: the loss law's optimal loss at the held-out budget against the best
  held-out run (when the study has the 4+ budgets the loss law needs), and N_opt
  against the held-out budget's best observed size, as a ratio;
- frontier: the frontier loss at the held-out budget against the best held-out run.

:func:`verdict` then turns a group's forecast check, its built-in audit (refit
without the largest fitted budget) and its regime warnings into one word a user
can act on: the law ``holds``, ``fails`` or is ``unchecked`` beyond its budgets.
Only run records and fit results are read here.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from roboscale.fit.bootstrap import percentile_interval, to_jsonable
from roboscale.fit.parabolas import group_budgets

MAX_MEAN_RELATIVE_ERROR = 0.05
"""A law fails its forecast check when the mean |predicted - observed| / observed loss of
the held-out runs exceeds this (5%, the issue's bar for a forecast one can spend on)."""

MAX_AUDIT_RELATIVE_ERROR = 0.05
"""A law fails when the built-in audit (parametric law refitted without the largest fitted
budget, forecasting it) is off by more than this mean |relative error| (5%)."""

VERDICT_LAWS = ("parametric", "isoflop")
"""The laws whose forecast decides the verdict: the ones the headline reports (the IsoFLOP
exponents and the parametric forecast). The frontier law is checked and shown, not judged:
its envelope of a few learning curves is too coarse to judge a study by."""

BUDGET_TOLERANCE_DECADES = 0.01
"""Held-out runs whose compute budgets lie within this many decades form one budget."""

MAX_FLOOR_DIFFERENCE = 0.05
"""nats: a parametric law whose fitted E lies further than this from the data's exactly known
floor (roboscale.data.floors, kind "exact") has not found the data's irreducible loss."""

MAX_EXPONENT_HALF_WIDTH = 0.1
"""A law fails when its IsoFLOP N_opt exponent's 95% interval is wider than +-this: an
exponent known only to within +-0.1 does not say how to spend a budget 10x larger."""

MIN_BUDGETS_FOR_AN_INTERVAL = 3
"""Below this many usable IsoFLOP budgets the exponent's bootstrap interval collapses (every
resample of 2 points gives the same line), so the exponent is not pinned down whatever it says."""

EXTRAPOLATION_CHECKS = ("forecast", "audit", "regime")
"""Failed checks that mean the law does not extrapolate (the others mean it is not pinned down)."""

STATUSES = ("holds", "fails", "unchecked")
"""The verdict's states, in report order."""


def forecast_check(fitted: dict, held_out: pd.DataFrame, largest_fitted_budget: float) -> dict:
    """Every law of ``fitted`` ({"parametric": ParametricFit, "isoflop": IsoFlopFit,
    "frontier": FrontierFit}; a value that is a dict is a failed fit and is skipped)
    against the ``held_out`` runs (columns run_id, N, D, C, loss, budget, d_model; N in
    parameters, D in tokens, C and budget in FLOPs). ``largest_fitted_budget``: FLOPs.

    Returns ``{"held_out_budgets", "largest_fitted_budget", "factor", "n_held_out",
    "laws": {law: {"points": [...], "mean_abs_relative_error", "bias", "n_outside",
    "ci_level", ...} or {"error": why}}}``; "laws" is empty without held-out runs."""
    held_out = held_out.dropna(subset=["N", "D", "C", "loss"])
    levels = _budget_levels(held_out["budget"].to_numpy(np.float64)) if len(held_out) else []
    budgets = sorted({float(f"{level:.6g}") for level in levels})
    out = {
        "held_out_budgets": budgets,
        "largest_fitted_budget": largest_fitted_budget,
        "factor": budgets[-1] / largest_fitted_budget if budgets and largest_fitted_budget > 0 else None,
        "n_held_out": len(held_out),
        "laws": {},
    }
    if held_out.empty:
        return to_jsonable(out)
    checks = {"parametric": _parametric_check, "isoflop": _isoflop_check, "frontier": _frontier_check}
    for law, check in checks.items():
        fit = fitted.get(law)
        if fit is None or isinstance(fit, dict):
            reason = (fit or {}).get("error", "not fitted")
            out["laws"][law] = {"error": f"the {law} law was not fitted ({reason})"}
            continue
        out["laws"][law] = check(fit, held_out)
    return to_jsonable(out)


def _budget_levels(budget: np.ndarray) -> np.ndarray:
    return group_budgets(budget, BUDGET_TOLERANCE_DECADES)


def _loss_summary(points: list[dict], ci_level: float) -> dict:
    """The points and their summary: mean |relative error|, mean signed error (bias),
    how many observations fall outside their interval (None without intervals)."""
    errors = np.array([point["relative_error"] for point in points], dtype=np.float64)
    inside = [point["inside"] for point in points]
    has_interval = bool(points) and all(value is not None for value in inside)
    return {
        "points": points,
        "n_points": len(points),
        "mean_abs_relative_error": float(np.mean(np.abs(errors))) if len(errors) else None,
        "bias": float(np.mean(errors)) if len(errors) else None,
        "n_outside": sum(not value for value in inside) if has_interval else None,
        "ci_level": ci_level,
    }


def _loss_point(observed: float, predicted: float, samples, scatter: float, ci_level: float, **identity) -> dict:
    """One forecast: observed and predicted loss, the law's bootstrap interval ("law_lo",
    "law_hi"), the prediction interval for one run ("predicted_lo", "predicted_hi"; None
    without bootstrap samples), the relative error (predicted - observed) / observed, and
    whether the observation lies inside the prediction interval.

    The prediction interval widens the law's interval by the fitted runs' own scatter
    around the law (``scatter``: their rms of ln(predicted / observed)), added in quadrature
    in log space: one held-out run scatters around the law as much as the fitted runs did,
    so a law that holds exactly still has 5% of single runs outside the law's interval alone."""
    low, high = percentile_interval(samples, ci_level) if samples is not None else (math.nan, math.nan)
    has_interval = math.isfinite(low) and math.isfinite(high) and low > 0 and predicted > 0
    point = {
        **identity,
        "observed": float(observed),
        "predicted": float(predicted),
        "law_lo": low if has_interval else None,
        "law_hi": high if has_interval else None,
        "predicted_lo": None,
        "predicted_hi": None,
        "relative_error": float((predicted - observed) / observed),
        "inside": None,
    }
    if has_interval:
        z = NormalDist().inv_cdf(0.5 + ci_level / 2)
        spread = z * (scatter if math.isfinite(scatter) else 0.0)
        below = math.hypot(math.log(predicted / min(low, predicted)), spread)
        above = math.hypot(math.log(max(high, predicted) / predicted), spread)
        point.update(predicted_lo=predicted * math.exp(-below), predicted_hi=predicted * math.exp(above))
        point["inside"] = bool(point["predicted_lo"] <= observed <= point["predicted_hi"])
    return point


def _parametric_check(fit, held_out: pd.DataFrame) -> dict:
    N, D = held_out["N"].to_numpy(np.float64), held_out["D"].to_numpy(np.float64)
    return _checked_runs(fit, held_out, fit.predict_loss(N, D), fit.predict_loss_samples(N, D), with_tokens=True)


def _checked_runs(fit, rows: pd.DataFrame, predicted, samples, *, with_tokens: bool) -> dict:
    """Each run of ``rows`` (run_id, budget, C, N, [D], d_model, loss) against the law's
    ``predicted`` loss and its bootstrap ``samples`` (resamples x runs, or None), summarised."""
    points = []
    for i, row in enumerate(rows.itertuples()):
        fields = {"run_id": row.run_id, "budget": float(row.budget), "C": float(row.C), "N": float(row.N)}
        if with_tokens:
            fields["D"] = float(row.D)
        fields["d_model"] = int(row.d_model)
        draws = None if samples is None else samples[:, i]
        points.append(_loss_point(row.loss, predicted[i], draws, fit.residual_rms, fit.ci_level, **fields))
    return _loss_summary(points, fit.ci_level)


def best_runs(held_out: pd.DataFrame) -> pd.DataFrame:
    """Per held-out budget, the model size with the lowest loss (mean over seeds): columns
    budget, N, d_model, loss, run_id (one of its runs), C (mean FLOPs of its runs)."""
    levels = _budget_levels(held_out["budget"].to_numpy(np.float64))
    frame = held_out.assign(level=[float(f"{level:.6g}") for level in levels])
    sizes = frame.groupby(["level", "N"], sort=True).agg(
        loss=("loss", "mean"), C=("C", "mean"), d_model=("d_model", "first"), run_id=("run_id", "first")
    )
    best = sizes.loc[sizes.groupby(level="level")["loss"].idxmin()].reset_index()
    return best.rename(columns={"level": "budget"})


def _isoflop_check(fit, held_out: pd.DataFrame) -> dict:
    best = best_runs(held_out)
    C = best["budget"].to_numpy(np.float64)
    N_pred, _, loss_pred = fit.allocate(C)
    drawn = fit.allocate_samples(C)
    optimum = []
    for i, row in enumerate(best.itertuples()):
        low, high = percentile_interval(drawn[0][:, i], fit.ci_level) if drawn is not None else (math.nan, math.nan)
        optimum.append(
            {
                "budget": float(row.budget),
                "N_opt_predicted": float(N_pred[i]),
                "N_opt_lo": low if math.isfinite(low) else None,
                "N_opt_hi": high if math.isfinite(high) else None,
                "N_best_observed": float(row.N),
                "d_model_best": int(row.d_model),
                "ratio": float(N_pred[i] / row.N),
            }
        )
    out = {"optimum": optimum}
    if fit.loss_law is None:
        out.update(_loss_summary([], fit.ci_level))
        out["note"] = "no IsoFLOP loss law (it needs 4 or more usable budgets): only N_opt is checked"
        return out
    samples = fit.loss_law.predict_samples(C)
    points = [
        _loss_point(
            row.loss,
            loss_pred[i],
            None if samples is None else samples[:, i],
            fit.loss_law.residual_rms,
            fit.ci_level,
            run_id=row.run_id,
            budget=float(row.budget),
            N=float(row.N),
            d_model=int(row.d_model),
        )
        for i, row in enumerate(best.itertuples())
    ]
    return {**out, **_loss_summary(points, fit.ci_level)}


def _frontier_check(fit, held_out: pd.DataFrame) -> dict:
    best = best_runs(held_out)
    C = best["C"].to_numpy(np.float64)
    return _checked_runs(fit, best, fit.predict_loss(C), fit.predict_loss_samples(C), with_tokens=False)


# Verdict ------------------------------------------------------------------------------------------------------------


def verdict(group: dict) -> dict:
    """``{"status": "holds" | "fails" | "unchecked", "reasons": [...], "checked_laws": [...]}``
    of one analysis group (its "forecast_check", "audit" and "regime" entries).

    fails: a law of :data:`VERDICT_LAWS` misses the held-out runs by more than
    :data:`MAX_MEAN_RELATIVE_ERROR` on average or leaves an observation outside its
    interval; or the parametric audit is off by more than :data:`MAX_AUDIT_RELATIVE_ERROR`;
    or the regime detection raised a warning (the runs are not yet in a power-law regime,
    so no fitted exponent describes what comes next); or the fitted E misses the data's
    exactly known floor by more than :data:`MAX_FLOOR_DIFFERENCE`; or the IsoFLOP N_opt
    exponent's interval is wider than +-:data:`MAX_EXPONENT_HALF_WIDTH`. "failed_checks"
    names which (forecast, audit, regime, floor, precision; see :func:`extrapolates`).
    holds: none of that, and at least one law forecast the held-out runs.
    unchecked: none of that, and nothing was forecast beyond the fitted budgets."""
    check = group.get("forecast_check") or {}
    failed = {
        "forecast": _forecast_reasons(check),
        "audit": _audit_reasons((group.get("audit") or {}).get("parametric")),
        "regime": [f"not in a power-law regime: {warning['message']}" for warning in _regime_warnings(group)],
        "floor": _floor_reasons(group),
        "precision": _precision_reasons(group),
    }
    reasons = [reason for found in failed.values() for reason in found]
    failed_checks = [name for name, found in failed.items() if found]
    checked = [law for law in VERDICT_LAWS if (_law(check, law) or {}).get("n_points")]
    if reasons:
        return {"status": "fails", "reasons": reasons, "checked_laws": checked, "failed_checks": failed_checks}
    if checked:
        return {
            "status": "holds",
            "reasons": [_holds_reason(check, checked)],
            "checked_laws": checked,
            "failed_checks": [],
        }
    why = "not checked beyond the fitted budgets"
    why += (
        " (no law could forecast the held-out runs)"
        if check.get("n_held_out")
        else " (set holdout_budget = true to train a budget 10x the largest and check the forecast)"
    )
    return {"status": "unchecked", "reasons": [why], "checked_laws": [], "failed_checks": []}


def extrapolates(verdict_: dict) -> bool:
    """False when a failed check says the law does not carry beyond its budgets (forecast,
    audit, regime); True when it only failed to pin its numbers down (floor, precision)."""
    failed = verdict_.get("failed_checks")
    if failed is None:  # a verdict from before the checks were named: assume the worst
        return False
    return not any(name in EXTRAPOLATION_CHECKS for name in failed)


def _floor_reasons(group: dict) -> list[str]:
    """The fitted parametric E against the data's exactly known floor (nats)."""
    floor, fit = group.get("known_floor") or {}, group.get("parametric") or {}
    known, fitted = floor.get("loss"), fit.get("E")
    if floor.get("kind") != "exact" or known is None or fitted is None or fit.get("fixed_E"):
        return []
    if abs(fitted - known) <= MAX_FLOOR_DIFFERENCE:
        return []
    difference = fitted - known
    return [f"fitted floor E = {fitted:.3f} nats is {difference:+.3f} from the data's known floor {known:.3f}"]


def _precision_reasons(group: dict) -> list[str]:
    """The IsoFLOP N_opt exponent's interval, when wider than +-MAX_EXPONENT_HALF_WIDTH."""
    isoflop = group.get("isoflop") or {}
    usable = isoflop.get("n_usable_budgets")
    if "a" in isoflop and isinstance(usable, int) and usable < MIN_BUDGETS_FOR_AN_INTERVAL:
        fix = f"fit {MIN_BUDGETS_FOR_AN_INTERVAL} or more budgets with bracketed minima"
        return [f"N_opt exponent from only {usable} usable IsoFLOP budgets, so it has no real interval; {fix}"]
    interval = (isoflop.get("ci") or {}).get("a")
    if not interval or not all(isinstance(v, int | float) and math.isfinite(v) for v in interval):
        return []
    half_width = (interval[1] - interval[0]) / 2
    if half_width <= MAX_EXPONENT_HALF_WIDTH:
        return []
    low, high = interval
    why = f"half-width {half_width:.2f} > {MAX_EXPONENT_HALF_WIDTH:g}"
    return [
        f"N_opt exponent not pinned down: 95% interval [{low:.3f}, {high:.3f}] ({why}); widen the budgets or add seeds"
    ]


def _law(check: dict, law: str) -> dict | None:
    value = (check.get("laws") or {}).get(law)
    return value if isinstance(value, dict) and "error" not in value else None


def _regime_warnings(group: dict) -> list[dict]:
    return list((group.get("regime") or {}).get("warnings") or [])


def _budget_text(check: dict) -> str:
    budgets = check.get("held_out_budgets") or []
    return "held-out " + ", ".join(flops_text(budget) for budget in budgets) + " FLOPs"


def flops_text(value: float) -> str:
    """A compute budget in two significant digits, as people write it: 6e12, 2.5e11."""
    mantissa, _, exponent = f"{value:.2g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def _forecast_reasons(check: dict) -> list[str]:
    reasons = []
    for law in VERDICT_LAWS:
        summary = _law(check, law)
        if not summary or not summary.get("n_points"):
            continue
        error, outside = summary["mean_abs_relative_error"], summary["n_outside"]
        misses = []
        if error > MAX_MEAN_RELATIVE_ERROR:
            misses.append(f"mean |error| > {100 * MAX_MEAN_RELATIVE_ERROR:.0f}%")
        if outside:
            level = f"{100 * summary['ci_level']:.0f}%"
            misses.append(f"{outside} of {summary['n_points']} observed outside the {level} interval")
        if misses:
            reasons.append(f"{law} forecast of the {_budget_text(check)} {off_by(summary)} ({'; '.join(misses)})")
    return reasons


def off_by(summary: dict) -> str:
    """How far a law's forecasts missed: "off by +420%" (the signed mean relative error when
    every miss has the same sign), else "off by 3.1% on average (mean |error|)"."""
    error, bias = summary["mean_abs_relative_error"], summary["bias"]
    if math.isclose(abs(bias), error, rel_tol=1e-9, abs_tol=1e-12):
        return f"off by {100 * bias:+.1f}%"
    return f"off by {100 * error:.1f}% on average (mean |error|)"


def _audit_reasons(audit) -> list[str]:
    if not isinstance(audit, dict) or "mean_abs_relative_error" not in audit:
        return []
    error = audit["mean_abs_relative_error"]
    if error is None or not error > MAX_AUDIT_RELATIVE_ERROR:
        return []
    held = ", ".join(flops_text(c) for c in audit.get("held_out_budgets") or [])
    return [
        (
            f"parametric law refitted without the largest fitted budget ({held} FLOPs) forecasts it "
            f"off by {100 * error:.1f}% (> {100 * MAX_AUDIT_RELATIVE_ERROR:.0f}%)"
        )
    ]


def _holds_reason(check: dict, laws: list[str]) -> str:
    parts = []
    for law in laws:
        summary = _law(check, law)
        parts.append(
            f"{law} forecast of the {_budget_text(check)} off by {100 * summary['mean_abs_relative_error']:.1f}%"
            + (", inside the interval" if summary.get("n_outside") == 0 else "")
        )
    return "; ".join(parts)
