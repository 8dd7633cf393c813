"""Resampling helpers shared by every fit: seeded resamples and percentile intervals."""

from __future__ import annotations

import numpy as np

from roboscale.errors import BadInputError, check_seed


def resample_counts(n_items: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_items) counts: how often each item is drawn when ``n_items``
    items are resampled with replacement. Row k is the k-th bootstrap resample;
    the same seed always gives the same rows."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    counts = np.zeros((n_resamples, n_items))
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
    return counts


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Central ``level`` percentile interval of finite ``samples`` (NaN if none)."""
    values = np.asarray(samples, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return (float(low), float(high))


def check_bootstrap_options(bootstrap: int, ci_level: float, seed: int = 0) -> None:
    """Reject a negative resample count, a level outside (0, 1) or a seed outside
    [0, 2^63) before any work."""
    check_seed(seed)
    if bootstrap < 0:
        raise BadInputError(f"bootstrap={bootstrap}: must be >= 0 (0 skips confidence intervals)")
    if not 0.0 < ci_level < 1.0:
        raise BadInputError(f"ci_level={ci_level}: must be between 0 and 1, e.g. 0.95")


def to_jsonable(value):
    """Plain Python numbers, lists and dicts from numpy values (NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if np.isfinite(number) else None
    return value
