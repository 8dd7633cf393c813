"""The noise budget of an IsoFLOP study: how much of a point's loss noise the validation
set makes, and how much the seed (initialisation and data order) makes.

At each IsoFLOP point, a (budget, width) pair:

- the estimator standard error is the noise of the finite validation set (each run's
  ``loss_se``, clustered by episode when measured; see
  :mod:`roboscale.train.validation`), combined over the point's seeds as a root mean
  square: the typical standard error of one run's loss;
- the seed standard deviation is the spread of the final loss across seeds (sample
  standard deviation, ddof 1; NaN with one seed). Every seed is measured on the same
  validation windows, so the validation set's own error, shared by the seeds, is
  mostly not in it.

A validation set is large enough when its standard error is at most a quarter of the
seed standard deviation (:data:`TARGET_RATIO`): then it adds at most 3% to the total
noise, sqrt(1 + 1/16) = 1.03.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError

TARGET_RATIO = 0.25
"""Largest estimator standard error, as a fraction of the seed standard deviation."""


def noise_budget(
    runs: pd.DataFrame,
    *,
    point: tuple[str, ...] = ("budget", "d_model"),
    loss: str = "loss",
    loss_se: str = "loss_se",
) -> dict:
    """Estimator and seed noise at every IsoFLOP point of ``runs`` (one row per run).

    ``point``: the columns that make an IsoFLOP point; ``loss``: the final validation
    loss (nats); ``loss_se``: its standard error (nats; a missing column, or runs
    from before it was measured, count as NaN). Returns ``{"points": [...],
    "estimator_se_median", "seed_sd_median", "ratio", "target_ratio"}``: per point its
    keys, ``seeds``, ``loss_mean``, ``estimator_se``, ``seed_sd`` and ``ratio`` (=
    estimator_se / seed_sd); the medians are over the points that have the value, and
    ``ratio`` is the ratio of the medians (NaN when either is unknown).
    """
    missing = [name for name in (*point, loss) if name not in runs.columns]
    if missing:
        raise BadInputError(
            f"the runs table has no {', '.join(missing)} column: the noise budget needs one row per run "
            f"with {', '.join((*point, loss))}"
        )
    errors = runs[loss_se] if loss_se in runs.columns else pd.Series(np.nan, index=runs.index)
    frame = runs.assign(_loss=pd.to_numeric(runs[loss], errors="coerce"), _se=pd.to_numeric(errors, errors="coerce"))
    points = [_point(dict(zip(point, keys, strict=True)), part) for keys, part in _by_point(frame, list(point))]
    se_median = _median([p["estimator_se"] for p in points])
    sd_median = _median([p["seed_sd"] for p in points])
    return {
        "points": points,
        "estimator_se_median": se_median,
        "seed_sd_median": sd_median,
        "ratio": se_median / sd_median if sd_median > 0 else math.nan,
        "target_ratio": TARGET_RATIO,
    }


def _by_point(frame: pd.DataFrame, columns: list[str]):
    for keys, part in frame.groupby(columns, sort=True):
        yield (keys if isinstance(keys, tuple) else (keys,)), part


def _point(keys: dict, part: pd.DataFrame) -> dict:
    """One IsoFLOP point's noise: its runs' finite losses and standard errors."""
    losses = part["_loss"].to_numpy(np.float64)
    losses = losses[np.isfinite(losses)]
    errors = part["_se"].to_numpy(np.float64)
    errors = errors[np.isfinite(errors)]
    estimator_se = float(np.sqrt(np.mean(errors**2))) if errors.size else math.nan
    seed_sd = float(np.std(losses, ddof=1)) if losses.size >= 2 else math.nan
    return {
        **{key: _plain(value) for key, value in keys.items()},
        "seeds": int(losses.size),
        "loss_mean": float(losses.mean()) if losses.size else math.nan,
        "estimator_se": estimator_se,
        "seed_sd": seed_sd,
        "ratio": estimator_se / seed_sd if seed_sd > 0 else math.nan,
    }


def _median(values: list[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return float(np.median(finite)) if finite else math.nan


def _plain(value):
    """A point's key as a JSON-ready Python number (not a numpy scalar)."""
    return value.item() if hasattr(value, "item") else value
