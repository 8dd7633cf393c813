"""Per-budget optima, the input of the IsoFLOP exponent fit, from either source.

The exponents ``N_opt = k_N C^a`` and ``D_opt = k_D C^b`` are weighted lines in
log-log space through one optimum per budget. The optima come either from this
study's IsoFLOP profiles (their vertices, with the runs' bootstrap) or, in the
optima-only mode, from a published table of per-budget minima (the bootstrap then
resamples budgets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError
from roboscale.fit.bootstrap import resample_counts
from roboscale.fit.parabolas import IsoFlopProfile

MIN_LOG_STD = 0.01
"""Floor on a vertex's log-spread when it becomes a weight (1/sigma^2): a budget
whose few resamples happened to agree must not outweigh all others."""

OPTIONAL_COLUMNS = ("D_opt", "loss_opt", "N_opt_log_std", "D_opt_log_std")


@dataclass(frozen=True)
class BudgetOptima:
    """One optimum per budget, ready for the exponent fit (arrays over the usable budgets)."""

    profiles: tuple[IsoFlopProfile, ...]
    """Every budget, usable or not."""
    log_c: np.ndarray
    """ln C (FLOPs) of the usable budgets."""
    log_n: np.ndarray
    """ln N_opt (parameters)."""
    log_d: np.ndarray
    """ln D_opt (tokens)."""
    weights_n: np.ndarray
    """Weight of each budget in the N_opt line (1/log-spread^2, or 1)."""
    weights_d: np.ndarray
    weighted: bool
    samples: np.ndarray | None
    """(resamples, 4) bootstrap estimates of (a, ln k_N, b, ln k_D), or None."""
    drop_reason: str
    """Why a resample may give no exponents (for the fit's bootstrap summary)."""


def optima_from_profiles(profiles, vertex_samples, *, weighted: bool, bootstrap: int) -> BudgetOptima:
    """The vertices of the usable profiles; weights from their bootstrap spread."""
    usable = [i for i, p in enumerate(profiles) if p.usable]
    chosen = [profiles[i] for i in usable]
    sigma = np.array([p.log_n_opt_std for p in chosen])
    use_weights = weighted and bootstrap > 0 and np.all(np.isfinite(sigma))
    weights = 1.0 / np.maximum(sigma, MIN_LOG_STD) ** 2 if use_weights else np.ones(len(chosen))
    log_c = np.log([p.C for p in chosen])
    samples = None
    if bootstrap:
        n_samples = np.stack([vertex_samples[i][0] for i in usable], axis=1)  # (K, budgets)
        d_samples = np.stack([vertex_samples[i][1] for i in usable], axis=1)
        a, log_k_n = lines(log_c, n_samples, np.broadcast_to(weights, n_samples.shape))
        b, log_k_d = lines(log_c, d_samples, np.broadcast_to(weights, d_samples.shape))
        samples = _finite_rows(np.column_stack([a, log_k_n, b, log_k_d]))
    return BudgetOptima(
        profiles=tuple(profiles),
        log_c=log_c,
        log_n=np.log([p.N_opt for p in chosen]),
        log_d=np.log([p.D_opt for p in chosen]),
        weights_n=weights,
        weights_d=weights,
        weighted=bool(use_weights),
        samples=samples,
        drop_reason="had an interior minimum in fewer than 2 budgets",
    )


def optima_from_table(
    optima: pd.DataFrame, *, weighted: bool, bootstrap: int, seed: int, flops_per_param_token: float
) -> BudgetOptima:
    """Published per-budget minima: columns ``C``, ``N_opt`` and optionally
    ``D_opt`` (default ``C / (k N_opt)``, ``k = flops_per_param_token``), ``loss_opt``, ``N_opt_log_std``,
    ``D_opt_log_std`` (weights ``1/log_std^2`` when ``weighted``). The bootstrap
    resamples budgets."""
    frame = _valid_optima(optima)
    C = frame["C"].to_numpy(np.float64)
    N = frame["N_opt"].to_numpy(np.float64)
    D = frame["D_opt"].to_numpy(np.float64) if "D_opt" in frame else C / (flops_per_param_token * N)
    loss = frame["loss_opt"].to_numpy(np.float64) if "loss_opt" in frame else np.full(len(C), np.nan)
    sigma_n = frame["N_opt_log_std"].to_numpy(np.float64) if "N_opt_log_std" in frame else None
    sigma_d = frame["D_opt_log_std"].to_numpy(np.float64) if "D_opt_log_std" in frame else sigma_n
    use_weights = weighted and sigma_n is not None and np.all(np.isfinite(sigma_n) & (sigma_n > 0))
    w_n = 1.0 / np.maximum(sigma_n, MIN_LOG_STD) ** 2 if use_weights else np.ones(len(C))
    w_d = 1.0 / np.maximum(sigma_d, MIN_LOG_STD) ** 2 if use_weights and sigma_d is not None else w_n
    log_c = np.log(C)
    spreads = sigma_n if sigma_n is not None else np.full(len(C), np.nan)
    profiles = tuple(
        IsoFlopProfile(
            C=float(budget),
            n_runs=0,
            usable=True,
            N_opt=float(n_opt),
            D_opt=float(d_opt),
            loss_opt=float(loss_opt),
            log_n_opt_std=float(spread),
        )
        for budget, n_opt, d_opt, loss_opt, spread in zip(C, N, D, loss, spreads)
    )
    samples = None
    if bootstrap:
        counts = resample_counts(len(C), bootstrap, seed)
        a, log_k_n = lines(log_c, np.broadcast_to(np.log(N), counts.shape), counts * w_n)
        b, log_k_d = lines(log_c, np.broadcast_to(np.log(D), counts.shape), counts * w_d)
        samples = _finite_rows(np.column_stack([a, log_k_n, b, log_k_d]))
    return BudgetOptima(
        profiles=profiles,
        log_c=log_c,
        log_n=np.log(N),
        log_d=np.log(D),
        weights_n=w_n,
        weights_d=w_d,
        weighted=bool(use_weights),
        samples=samples,
        drop_reason="drew fewer than 2 distinct budgets",
    )


def _valid_optima(optima: pd.DataFrame) -> pd.DataFrame:
    """The rows with a finite, positive C and N_opt (columns checked first)."""
    missing = [col for col in ("C", "N_opt") if col not in optima.columns]
    if missing:
        raise BadInputError(
            f"optima table lacks column(s) {', '.join(missing)}; it needs C and N_opt "
            f"(optional {', '.join(OPTIONAL_COLUMNS)}); has: {', '.join(map(str, optima.columns))}"
        )
    frame = optima.copy()
    for col in ("C", "N_opt"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame = frame[np.isfinite(frame["C"]) & np.isfinite(frame["N_opt"]) & (frame["C"] > 0) & (frame["N_opt"] > 0)]
    if len(frame) < 2:
        raise BadInputError(f"{len(frame)} budget(s) with a finite optimum: need at least 2 to fit an exponent")
    return frame


def _finite_rows(samples: np.ndarray) -> np.ndarray:
    return samples[np.all(np.isfinite(samples), axis=1)]


def lines(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise weighted lines for (K, m) ``y`` and ``w`` over shared ``x``; NaN y is skipped."""
    w = np.where(np.isfinite(y), w, 0.0)
    y = np.where(np.isfinite(y), y, 0.0)
    sw, sx, sy = w.sum(1), (w * x).sum(1), (w * y).sum(1)
    sxx, sxy = (w * x * x).sum(1), (w * x * y).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
        icpt = (sy - slope * sx) / sw
    enough = (w > 0).sum(1) >= 2
    return np.where(enough, slope, np.nan), np.where(enough, icpt, np.nan)
