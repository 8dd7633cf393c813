"""Does lower loss make a better robot? Closed-loop success of a group's bc runs.

From the evaluated runs of one (task, tokenizer) group:

- ``runs``: each run's N, C, validation loss and success rate with its Wilson 95%
  interval;
- ``correlation``: Pearson and Spearman correlation between validation loss and
  success (negative: lower loss, more success), with a bootstrap interval over
  runs for Pearson's r;
- ``best_per_budget``: the most successful run of every budget, and
  ``failure_law``: the failure rate ``1 - success`` of those against compute as a
  power law ``A C^-alpha``;
- ``intrinsic``: intrinsic performance (Hilton et al. 2023). The compute frontier
  of success is the most success any run reached with at most C FLOPs; a run's
  intrinsic performance is the least compute on that frontier that reaches the
  run's own success (log-linear between frontier points). It is in FLOPs, so it can
  be fitted like compute: ``intrinsic = k N^slope`` over the runs, by least squares
  in log-log space with a bootstrap interval.

Too few runs (or no spread in success) give ``{"error": why}`` for that part.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from roboscale.errors import result_or_reason
from roboscale.fit import compute_frontier, fit_power_law, intrinsic_performance

MIN_RUNS = 3


def success_analysis(finished: pd.DataFrame, evaluations: pd.DataFrame, *, bootstrap: int, seed: int) -> dict | None:
    """The success section of a group, or None when none of its runs was evaluated."""
    rows = finished.merge(evaluations, on="run_id", how="inner")
    if rows.empty:
        return None
    rows = rows.sort_values(["budget", "N"]).reset_index(drop=True)
    columns = ["run_id", "seed", "N", "D", "C", "budget", "loss", "success", "ci_low", "ci_high", "episodes"]
    out = {
        "runs": rows[columns + ["mean_return", "mean_length"]].to_dict(orient="records"),
        "episodes": int(rows["episodes"].min()),
        "correlation": result_or_reason(lambda: _correlation(rows, bootstrap, seed)),
    }
    best = rows.loc[rows.groupby("budget")["success"].idxmax()].sort_values("budget")
    out["best_per_budget"] = best[columns].to_dict(orient="records")
    out["failure_law"] = result_or_reason(lambda: _failure_law(best, bootstrap, seed))
    out["intrinsic"] = result_or_reason(lambda: _intrinsic(rows, bootstrap, seed))
    return out


def _correlation(rows: pd.DataFrame, bootstrap: int, seed: int) -> dict:
    loss, success = rows["loss"].to_numpy(float), rows["success"].to_numpy(float)
    if len(rows) < MIN_RUNS or np.ptp(loss) == 0 or np.ptp(success) == 0:
        raise ValueError(f"{len(rows)} evaluated run(s) with no spread in loss or success: no correlation")
    pearson = float(np.corrcoef(loss, success)[0, 1])
    spearman = float(pd.Series(loss).corr(pd.Series(success), method="spearman"))
    draws = np.random.default_rng(seed).integers(0, len(rows), size=(max(bootstrap, 0), len(rows)))
    samples = [np.corrcoef(loss[i], success[i])[0, 1] for i in draws if np.ptp(loss[i]) and np.ptp(success[i])]
    interval = [float(v) for v in np.percentile(samples, [2.5, 97.5])] if len(samples) > 10 else None
    return {"pearson": pearson, "pearson_ci": interval, "spearman": spearman, "n": len(rows)}


def _failure_law(best: pd.DataFrame, bootstrap: int, seed: int) -> dict:
    if len(best) < MIN_RUNS:
        raise ValueError(f"{len(best)} budget(s) with evaluated runs: a failure-rate law needs {MIN_RUNS}")
    if np.ptp(best["success"].to_numpy(float)) == 0:
        raise ValueError("the best success rate is the same at every budget: no failure-rate law")
    fit = fit_power_law(
        best["C"].to_numpy(float),
        best["success"].to_numpy(float),
        offset=False,
        complement=1.0,
        bootstrap=bootstrap,
        seed=seed,
        x_name="C",
        y_name="failure rate",
    )
    return {**fit.to_dict(), "law": "1 - success = A * C^-alpha"}


def _intrinsic(rows: pd.DataFrame, bootstrap: int, seed: int) -> dict:
    C, success, N = (rows[key].to_numpy(float) for key in ("C", "success", "N"))
    if len(rows) < MIN_RUNS or np.ptp(success) == 0 or np.unique(N).size < 2:
        raise ValueError("intrinsic performance needs 3 evaluated runs of 2 sizes with different success")
    performance = intrinsic_performance(C, success)
    reached = success > 0  # a run that never succeeds has no intrinsic performance
    if reached.sum() < MIN_RUNS or np.unique(N[reached]).size < 2:
        raise ValueError("fewer than 3 evaluated runs with any success: no intrinsic-performance law")
    x, y = np.log(N[reached]), np.log(performance[reached])
    slope, intercept = np.polyfit(x, y, 1)
    draws = np.random.default_rng(seed).integers(0, len(x), size=(max(bootstrap, 0), len(x)))
    slopes = [np.polyfit(x[i], y[i], 1)[0] for i in draws if np.unique(x[i]).size > 1]
    interval = [float(v) for v in np.percentile(slopes, [2.5, 97.5])] if len(slopes) > 10 else None
    frontier_c, frontier_s = compute_frontier(C, success)
    return {
        "law": "intrinsic performance (FLOPs) = k * N^slope",
        "slope": float(slope),
        "slope_ci": interval,
        "k": float(np.exp(intercept)),
        "runs": [
            {"run_id": run_id, "N": float(n), "intrinsic_flops": float(p), "success": float(s)}
            for run_id, n, p, s in zip(rows["run_id"], N, performance, success, strict=True)
        ],
        "frontier": [{"C": float(c), "success": float(s)} for c, s in zip(frontier_c, frontier_s, strict=True)],
    }
