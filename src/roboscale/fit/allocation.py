"""Compute-optimal allocation: how big a model and how much data for a FLOP budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError
from roboscale.fit.bootstrap import percentile_interval, to_jsonable

DEFAULT_EXTRAPOLATION = (1.0, 10.0, 100.0, 1000.0)
"""Default budgets: the largest compute in the data times these factors."""


@dataclass(frozen=True)
class ComputeOptimal:
    """Compute-optimal N, D and loss at a list of budgets, with bootstrap intervals.

    Arrays are indexed by budget; intervals are (budgets, 2) and NaN when the fit
    had no bootstrap (or, for the loss, no loss law).
    """

    method: str
    C: np.ndarray
    """Budgets in FLOPs."""
    N_opt: np.ndarray
    """Compute-optimal model size (parameters)."""
    D_opt: np.ndarray
    """Compute-optimal training data (tokens or samples)."""
    loss: np.ndarray
    """Predicted loss of the compute-optimal model."""
    N_opt_ci: np.ndarray
    D_opt_ci: np.ndarray
    loss_ci: np.ndarray
    ci_level: float
    extrapolation: np.ndarray
    """Budget divided by the largest compute in the fitted data (1 = in range)."""

    @property
    def tokens_per_param(self) -> np.ndarray:
        """D_opt / N_opt: tokens (or samples) per parameter at the optimum."""
        return self.D_opt / self.N_opt

    def to_frame(self) -> pd.DataFrame:
        """One row per budget, for pandas users and CSV export."""
        return pd.DataFrame(
            {
                "C": self.C,
                "extrapolation": self.extrapolation,
                "N_opt": self.N_opt,
                "N_opt_lo": self.N_opt_ci[:, 0],
                "N_opt_hi": self.N_opt_ci[:, 1],
                "D_opt": self.D_opt,
                "D_opt_lo": self.D_opt_ci[:, 0],
                "D_opt_hi": self.D_opt_ci[:, 1],
                "tokens_per_param": self.tokens_per_param,
                "loss": self.loss,
                "loss_lo": self.loss_ci[:, 0],
                "loss_hi": self.loss_ci[:, 1],
            }
        )

    def to_dict(self) -> dict:
        rows = self.to_frame().to_dict(orient="records")
        return to_jsonable({"method": self.method, "ci_level": self.ci_level, "budgets": rows})


def compute_optimal(fit, budgets=None, *, ci_level: float | None = None) -> ComputeOptimal:
    """Compute-optimal ``N_opt(C)``, ``D_opt(C)`` and loss from any fitted law.

    ``fit``: a parametric, IsoFLOP or frontier fit. ``budgets``: FLOPs (default:
    the largest compute in the fit's data times 1, 10, 100 and 1000). Intervals come
    from the fit's bootstrap samples at ``ci_level`` (default: the fit's own).
    """
    if not hasattr(fit, "allocate"):
        raise BadInputError(
            f"{type(fit).__name__} has no compute allocation: use a parametric, isoflop or frontier fit"
        )
    if budgets is None:
        largest = fit.compute_range[1]
        budgets = largest * np.asarray(DEFAULT_EXTRAPOLATION)
    C = np.atleast_1d(np.asarray(budgets, dtype=np.float64))
    if C.size == 0 or not np.all(np.isfinite(C) & (C > 0)):
        raise BadInputError(f"budgets {budgets!r}: every compute budget must be a finite number of FLOPs > 0")
    level = fit.ci_level if ci_level is None else ci_level
    N, D, loss = (np.broadcast_to(np.asarray(v, dtype=np.float64), C.shape) for v in fit.allocate(C))
    intervals = [np.full((C.size, 2), np.nan) for _ in range(3)]
    samples = fit.allocate_samples(C)
    if samples is not None:
        for interval, values in zip(intervals, samples):
            if values is not None:
                interval[:] = [percentile_interval(values[:, j], level) for j in range(C.size)]
    return ComputeOptimal(
        method=fit.method,
        C=C,
        N_opt=np.array(N),
        D_opt=np.array(D),
        loss=np.array(loss),
        N_opt_ci=intervals[0],
        D_opt_ci=intervals[1],
        loss_ci=intervals[2],
        ci_level=level,
        extrapolation=C / fit.compute_range[1],
    )
