"""Approach 2 of Hoffmann et al. (2022): IsoFLOP profiles.

Runs are grouped by compute budget. Within each budget a parabola of loss against
ln N is fitted around the lowest loss; its vertex is the budget's compute-optimal
model size. Then ``N_opt = k_N C^a`` and ``D_opt = k_D C^b`` are fitted by
(weighted) least squares in log-log space. Uncertainty comes from a bootstrap of
the runs inside each budget: it gives every vertex a spread (its weight in the
exponent fit, as in Porian et al. 2024) and the exponents their intervals.

When a budget holds several runs (seeds) of the same model size, the seed spread
is the noise model instead: each size enters as its mean loss with its standard
error (the seed variance pooled over the budget's sizes, divided by the seed
count), the parabola is fitted with weights 1/SE^2, the vertex spread comes from
redrawing the means within their standard errors, and a budget whose lowest mean
is not separated from either neighbour by more than their combined standard error
is flagged flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval
from roboscale.fit.compute import DEFAULT_FLOPS_PER_PARAM_TOKEN
from roboscale.fit.isoflop_optima import MIN_LOG_STD, BudgetOptima, optima_from_profiles, optima_from_table
from roboscale.fit.parabolas import (
    FLAT_T_STATISTIC,
    IsoFlopProfile,
    fit_profiles,
    group_budgets,
    weighted_line,
)
from roboscale.fit.power_law import PowerLawFit, fit_power_law
from roboscale.fit.result import FitResult, bootstrap_fields
from roboscale.fit.runs_table import RunsTable, load_runs

__all__ = [
    "FLAT_T_STATISTIC",
    "MIN_LOG_STD",
    "IsoFlopFit",
    "IsoFlopProfile",
    "fit_isoflop",
    "group_budgets",
    "isoflop_profiles",
]


@dataclass(frozen=True)
class IsoFlopFit(FitResult):
    """``N_opt = k_N C^a`` and ``D_opt = k_D C^b`` from IsoFLOP profile minima.

    ``samples``: (resamples, 4) bootstrap estimates of (a, ln k_N, b, ln k_D)."""

    a: float
    b: float
    k_N: float
    k_D: float
    profiles: tuple[IsoFlopProfile, ...]
    weighted: bool
    n_runs: int
    window: int | None
    loss_law: PowerLawFit | None = None
    """``loss_opt = E + A C^-alpha`` over the usable budgets, when there are enough."""
    flops_per_param_token: float = float("nan")
    """``k`` of the runs' ``C = k N D`` (FLOPs per parameter per token). Only for the
    record: each budget's ``D_opt`` is read off the runs' own D, not ``C / (k N_opt)``."""
    compute_range: tuple[float, float] = (float("nan"), float("nan"))
    """Smallest and largest compute budget (FLOPs)."""

    method = "isoflop"
    law = "N_opt = k_N * C^a, D_opt = k_D * C^b"

    @property
    def usable_profiles(self) -> tuple[IsoFlopProfile, ...]:
        return tuple(p for p in self.profiles if p.usable)

    @property
    def flat_profiles(self) -> tuple[IsoFlopProfile, ...]:
        return tuple(p for p in self.profiles if p.usable and p.flat)

    def allocate(self, C):
        """Compute-optimal ``(N_opt, D_opt, loss)`` at budgets C (FLOPs); loss is NaN
        without a loss law."""
        C = np.asarray(C, dtype=np.float64)
        loss = self.loss_law.predict(C) if self.loss_law is not None else np.full(C.shape, np.nan)
        return self.k_N * C**self.a, self.k_D * C**self.b, loss

    def allocate_samples(self, C):
        columns = self.sample_columns(4)
        if columns is None:
            return None
        log_c = np.log(np.atleast_1d(np.asarray(C, dtype=np.float64)))[None, :]
        a, log_k_n, b, log_k_d = columns
        # The loss law has its own bootstrap (over budgets): its rows are not paired
        # with these, which is fine for per-quantity intervals.
        loss = self.loss_law.predict_samples(np.exp(log_c[0])) if self.loss_law is not None else None
        with np.errstate(over="ignore"):  # a runaway resample far beyond the data: inf, not a warning
            return np.exp(log_k_n + a * log_c), np.exp(log_k_d + b * log_c), loss

    def to_dict(self) -> dict:
        return self._summary(
            {"a": self.a, "b": self.b, "k_N": self.k_N, "k_D": self.k_D},
            {
                "weighted": self.weighted,
                "window": self.window,
                "n_runs": self.n_runs,
                "n_budgets": len(self.profiles),
                "n_usable_budgets": len(self.usable_profiles),
                "flat_budgets": [p.C for p in self.flat_profiles],
                "flops_per_param_token": self.flops_per_param_token,
            },
            {
                "loss_law": None if self.loss_law is None else self.loss_law.to_dict(),
                "compute_range": self.compute_range,
                "profiles": [p.to_dict() for p in self.profiles],
            },
        )


def fit_isoflop(
    runs=None,
    *,
    optima: pd.DataFrame | None = None,
    budget: str | None = None,
    budget_tolerance: float = 0.1,
    window: int | None = 3,
    weighted: bool = True,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    **load_options,
) -> IsoFlopFit:
    """Fit compute-optimal exponents from IsoFLOP profiles.

    From runs (a path, DataFrame or :class:`RunsTable`): runs are grouped into
    budgets by the ``budget`` column if given, else by C, joining values within
    ``budget_tolerance`` decades; each profile's parabola uses the ``window`` model
    sizes on each side of its lowest loss (``None``: all). A profile whose lowest
    loss is at its smallest or largest model, or whose parabola opens downward, is
    reported and left out.

    From ``optima`` (a DataFrame with columns ``C``, ``N_opt`` and optionally
    ``D_opt``, ``loss_opt``, ``N_opt_log_std``, ``D_opt_log_std``): the per-budget
    minima are taken as given and only the exponents are fitted (weights
    ``1/log_std^2`` when ``weighted``); the bootstrap then resamples budgets. A
    missing ``D_opt`` is ``C / (k N_opt)`` with ``k`` the ``flops_per_param_token``
    load option (default 6).

    Each budget's ``D_opt`` comes from its runs' own D: within a budget ln D is a
    line in ln N (slope -1 when ``C = k N D`` with one k), fitted over the
    parabola's window and read at the vertex, so no FLOP convention is assumed.
    """
    check_bootstrap_options(bootstrap, ci_level, seed)
    if window is not None and window < 1:
        raise BadInputError(f"--window {window}: must be >= 1 model size on each side of the minimum (or 0 for all)")
    if (runs is None) == (optima is None):
        raise BadInputError("give either runs (a runs table) or optima (per-budget minima), not both or neither")
    if optima is not None:
        k = load_options.get("flops_per_param_token") or DEFAULT_FLOPS_PER_PARAM_TOKEN
        found = optima_from_table(optima, weighted=weighted, bootstrap=bootstrap, seed=seed, flops_per_param_token=k)
        resampling = {"bootstrap": bootstrap, "seed": seed, "ci_level": ci_level}
        return _exponent_fit(found, n_runs=0, window=None, flops_per_param_token=k, **resampling)

    table = runs if isinstance(runs, RunsTable) and not load_options else load_runs(runs, **load_options)
    if np.unique(table.N).size < 3:
        raise BadInputError(
            f"{np.unique(table.N).size} distinct model size(s): IsoFLOP profiles need at least 3 per budget"
        )
    profiles, vertex_samples = fit_profiles(table, budget, budget_tolerance, window, bootstrap, seed)
    n_usable = sum(p.usable for p in profiles)
    if n_usable < 2:
        reasons = "; ".join(f"C={p.C:.3g}: {p.reason}" for p in profiles if not p.usable) or "only one budget"
        raise BadInputError(
            f"{n_usable} usable IsoFLOP profile(s) of {len(profiles)}: need at least 2 budgets with a "
            f"bracketed minimum ({reasons}); add budgets or model sizes around the minimum"
        )
    found = optima_from_profiles(profiles, vertex_samples, weighted=weighted, bootstrap=bootstrap)
    k = table.flops_per_param_token
    resampling = {"bootstrap": bootstrap, "seed": seed, "ci_level": ci_level}
    return _exponent_fit(found, n_runs=len(table), window=window, flops_per_param_token=k, **resampling)


def isoflop_profiles(
    runs,
    *,
    budget: str | None = None,
    budget_tolerance: float = 0.1,
    window: int | None = 3,
    bootstrap: int = 0,
    seed: int = 0,
) -> list[IsoFlopProfile]:
    """The per-budget parabolas alone (no exponent fit), one profile per budget."""
    check_bootstrap_options(bootstrap, 0.95, seed)
    table = runs if isinstance(runs, RunsTable) else load_runs(runs)
    return fit_profiles(table, budget, budget_tolerance, window, bootstrap, seed)[0]


def _exponent_fit(
    optima: BudgetOptima,
    *,
    n_runs: int,
    window: int | None,
    flops_per_param_token: float,
    bootstrap: int,
    seed: int,
    ci_level: float,
) -> IsoFlopFit:
    """The exponent lines through the per-budget optima, their intervals and the loss law;
    ``flops_per_param_token``: the runs' k of C = k N D, kept with the fit."""
    a, log_k_n = weighted_line(optima.log_c, optima.log_n, optima.weights_n)
    b, log_k_d = weighted_line(optima.log_c, optima.log_d, optima.weights_d)
    samples = optima.samples
    ci = {} if samples is None else _exponent_intervals(samples, ci_level)
    usable = [p for p in optima.profiles if p.usable]
    return IsoFlopFit(
        a=float(a),
        b=float(b),
        k_N=float(np.exp(log_k_n)),
        k_D=float(np.exp(log_k_d)),
        profiles=optima.profiles,
        weighted=optima.weighted,
        n_runs=n_runs,
        window=window,
        loss_law=_loss_law(usable, bootstrap, seed),
        flops_per_param_token=float(flops_per_param_token),
        compute_range=(min(p.C for p in optima.profiles), max(p.C for p in optima.profiles)),
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level, reason=optima.drop_reason),
    )


def _exponent_intervals(samples: np.ndarray, level: float) -> dict[str, tuple[float, float]]:
    ci = {"a": percentile_interval(samples[:, 0], level), "b": percentile_interval(samples[:, 2], level)}
    for name, column in (("k_N", 1), ("k_D", 3)):
        low, high = percentile_interval(samples[:, column], level)
        ci[name] = (float(np.exp(low)), float(np.exp(high)))
    return ci


def _loss_law(profiles: list[IsoFlopProfile], bootstrap: int, seed: int) -> PowerLawFit | None:
    """``loss_opt(C) = E + A C^-alpha`` through the budgets' minima, if 4+ budgets."""
    C = np.array([p.C for p in profiles])
    loss = np.array([p.loss_opt for p in profiles])
    if len(C) < 4 or not np.all(np.isfinite(loss) & (loss > 0)):
        return None
    try:
        return fit_power_law(C, loss, bootstrap=bootstrap, seed=seed, x_name="C", y_name="loss_opt")
    except (BadInputError, FitDidNotConvergeError):
        return None
