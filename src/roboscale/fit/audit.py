"""Extrapolation audit: would this law have predicted the largest runs?

The fit is redone without the runs of the largest compute budget(s) and its
predictions for those runs are compared with what was measured. A law that cannot
forecast one budget ahead inside the study should not be trusted 100x beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError
from roboscale.fit import AUDIT_METHODS
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, to_jsonable
from roboscale.fit.frontier import fit_frontier
from roboscale.fit.isoflop import fit_isoflop, isoflop_profiles
from roboscale.fit.parabolas import group_budgets
from roboscale.fit.parametric import fit_parametric
from roboscale.fit.runs_table import RunsTable, load_runs

METHODS = AUDIT_METHODS


@dataclass(frozen=True)
class ExtrapolationAudit:
    """Predictions of a law fitted below ``threshold_C`` for the runs above it."""

    method: str
    threshold_C: float
    """Largest compute (FLOPs) the refit saw."""
    held_out_budgets: tuple[float, ...]
    n_train: int
    n_test: int
    points: pd.DataFrame = field(repr=False)
    """Held-out points: C, N, D, observed, predicted, predicted_lo, predicted_hi,
    relative_error ((predicted - observed) / observed)."""
    optimum: pd.DataFrame | None = field(default=None, repr=False)
    """IsoFLOP only: per held-out budget, observed vs predicted N_opt."""
    ci_level: float = 0.95

    @property
    def mean_abs_relative_error(self) -> float:
        return float(np.mean(np.abs(self.points["relative_error"])))

    @property
    def max_abs_relative_error(self) -> float:
        return float(np.max(np.abs(self.points["relative_error"])))

    @property
    def bias(self) -> float:
        """Mean signed relative error: > 0 means the law predicted too high a loss."""
        return float(np.mean(self.points["relative_error"]))

    @property
    def coverage(self) -> float:
        """Fraction of held-out observations inside the predicted interval (NaN without one)."""
        lo, hi = self.points["predicted_lo"], self.points["predicted_hi"]
        if not np.all(np.isfinite(lo)):
            return float("nan")
        return float(np.mean((self.points["observed"] >= lo) & (self.points["observed"] <= hi)))

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "method": self.method,
                "threshold_C": self.threshold_C,
                "held_out_budgets": list(self.held_out_budgets),
                "n_train": self.n_train,
                "n_test": self.n_test,
                "mean_abs_relative_error": self.mean_abs_relative_error,
                "max_abs_relative_error": self.max_abs_relative_error,
                "bias": self.bias,
                "coverage": self.coverage,
                "ci_level": self.ci_level,
                "points": self.points.to_dict(orient="list"),
                "optimum": None if self.optimum is None else self.optimum.to_dict(orient="list"),
            }
        )


def audit_extrapolation(
    runs,
    method: str = "parametric",
    *,
    holdout: int = 1,
    holdout_decades: float = 0.5,
    budget_tolerance: float = 0.1,
    bootstrap: int = 200,
    seed: int = 0,
    fit_options: dict | None = None,
    **load_options,
) -> ExtrapolationAudit:
    """Refit ``method`` without the ``holdout`` largest compute budgets and score
    its predictions of them.

    Budgets are clusters of C within ``budget_tolerance`` decades. For the
    frontier of learning curves, which have no budgets, the top
    ``holdout_decades`` of the compute range are held out instead: every curve is
    cut there and the refit forecasts the frontier beyond. ``fit_options`` go to the
    fit function.
    """
    if method not in METHODS:
        raise BadInputError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    if holdout < 1:
        raise BadInputError(f"--holdout {holdout}: hold out at least 1 budget")
    check_bootstrap_options(bootstrap, (fit_options or {}).get("ci_level", 0.95), seed)
    table = runs if isinstance(runs, RunsTable) and not load_options else load_runs(runs, **load_options)
    options = dict(fit_options or {})
    options.update(bootstrap=bootstrap, seed=seed)

    if method == "frontier" and table.has_curves:
        # Learning curves: hold out the top of the compute range on every curve.
        span = float(np.log10(table.C.max() / table.C.min()))
        if not 0 < holdout_decades < span:
            raise BadInputError(
                f"--holdout-decades {holdout_decades:g}: must be > 0 and below the {span:.3g} decades of compute "
                "the curves cover (the refit needs the compute below the held-out part)"
            )
        threshold = float(table.C.max() / 10**holdout_decades)
        return _audit_frontier(table, threshold, (float(table.C.max()),), options)

    budgets = group_budgets(table.C, budget_tolerance)
    levels = np.unique(budgets)
    if len(levels) <= holdout + 1:
        raise BadInputError(
            f"{len(levels)} compute budget(s): holding out {holdout} leaves too few to fit; "
            "the audit needs at least holdout + 2 budgets"
        )
    held = levels[-holdout:]
    threshold = float(table.C[budgets < held[0]].max())
    if method == "frontier":
        return _audit_frontier(table, threshold, tuple(held), options)
    train = table.subset(budgets < held[0])
    test = table.subset(budgets >= held[0])
    if method == "parametric":
        return _audit_parametric(train, test, threshold, tuple(held), options)
    return _audit_isoflop(train, test, threshold, tuple(held), budget_tolerance, options)


def _points(C, N, D, observed, predicted, samples, level) -> pd.DataFrame:
    intervals = (
        np.array([percentile_interval(samples[:, j], level) for j in range(len(observed))])
        if samples is not None and len(samples)
        else np.full((len(observed), 2), np.nan)
    )
    return pd.DataFrame(
        {
            "C": C,
            "N": N,
            "D": D,
            "observed": observed,
            "predicted": predicted,
            "predicted_lo": intervals[:, 0],
            "predicted_hi": intervals[:, 1],
            "relative_error": (predicted - observed) / observed,
        }
    )


def _audit_parametric(train, test, threshold, held, options) -> ExtrapolationAudit:
    fit = fit_parametric(train, **options)
    samples = fit.predict_loss_samples(test.N, test.D)
    points = _points(test.C, test.N, test.D, test.loss, fit.predict_loss(test.N, test.D), samples, fit.ci_level)
    return ExtrapolationAudit("parametric", threshold, held, len(train), len(test), points, ci_level=fit.ci_level)


def _audit_isoflop(train, test, threshold, held, tolerance, options) -> ExtrapolationAudit:
    fit = fit_isoflop(train, budget_tolerance=tolerance, **options)
    profiles = isoflop_profiles(test, budget_tolerance=tolerance, window=options.get("window", 3))
    rows = []
    for profile in profiles:
        N_pred, _, loss_pred = fit.allocate(profile.C)
        rows.append(
            {
                "C": profile.C,
                "usable": profile.usable,
                "N_opt_observed": profile.N_opt,
                "N_opt_predicted": float(N_pred),
                "D_opt_observed": profile.D_opt,
                "log10_ratio": float(np.log10(N_pred / profile.N_opt)) if profile.usable else float("nan"),
                "loss_opt_observed": profile.loss_opt,
                "loss_opt_predicted": float(loss_pred),
            }
        )
    optimum = pd.DataFrame(rows)
    usable = optimum[optimum["usable"]]
    if usable.empty:
        raise BadInputError(
            "the held-out budget has no bracketed minimum, so there is no optimum to predict: "
            "hold out a budget whose loss has an interior minimum"
        )
    predicted = usable["loss_opt_predicted"].to_numpy()
    samples = fit.loss_law.predict_samples(usable["C"].to_numpy()) if fit.loss_law is not None else None
    points = _points(
        usable["C"].to_numpy(),
        usable["N_opt_observed"].to_numpy(),
        usable["D_opt_observed"].to_numpy(),
        usable["loss_opt_observed"].to_numpy(),
        predicted,
        samples,
        fit.ci_level,
    )
    return ExtrapolationAudit(
        "isoflop", threshold, held, len(train), len(test), points, optimum=optimum, ci_level=fit.ci_level
    )


def _audit_frontier(table: RunsTable, threshold: float, held, options) -> ExtrapolationAudit:
    train = table.subset(table.C <= threshold)
    fit = fit_frontier(train, **options)
    full = fit_frontier(table, **{**options, "bootstrap": 0})
    beyond = full.frontier_C > threshold
    if not beyond.any():
        raise BadInputError("no frontier points beyond the held-out threshold: hold out more budgets")
    C = full.frontier_C[beyond]
    points = _points(
        C,
        full.frontier_N[beyond],
        full.frontier_D[beyond],
        full.frontier_loss[beyond],
        fit.predict_loss(C),
        fit.predict_loss_samples(C),
        fit.ci_level,
    )
    return ExtrapolationAudit(
        "frontier", threshold, held, len(train), len(table) - len(train), points, ci_level=fit.ci_level
    )
