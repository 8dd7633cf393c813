"""IsoFLOP profiles: per compute budget, a parabola of loss against ln N and its vertex.

Without seeds the parabola is a least-squares fit to the budget's runs and the
vertex spread comes from a bootstrap of those runs. With several runs (seeds) of a
model size, each size enters as its mean loss with its standard error (see
:mod:`roboscale.fit.isoflop`), and the spread comes from redrawing the means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError
from roboscale.fit.bootstrap import percentile_interval, resample_counts, to_jsonable
from roboscale.fit.runs_table import RunsTable

FLAT_T_STATISTIC = 2.0
"""A profile whose curvature is less than this many standard errors above zero is
flagged flat: its minimum is not resolved by the data."""


@dataclass(frozen=True)
class IsoFlopProfile:
    """One compute budget: its runs, the parabola's vertex and how sure it is."""

    C: float
    """Compute budget in FLOPs."""
    n_runs: int
    usable: bool
    reason: str = ""
    """Why the profile was left out of the exponent fit ("" when usable)."""
    N_opt: float = float("nan")
    D_opt: float = float("nan")
    loss_opt: float = float("nan")
    log_n_opt_std: float = float("nan")
    """Bootstrap standard deviation of ln N_opt."""
    n_opt_ci: tuple[float, float] = (float("nan"), float("nan"))
    flat: bool = False
    """True when the data cannot place the minimum: the curvature is within two
    standard errors of zero, or the bootstrap minima spread over most of the window."""
    curvature: float = float("nan")
    """Second derivative of the parabola, d^2 loss / d(ln N)^2."""
    window: tuple[float, float] = (float("nan"), float("nan"))
    """Smallest and largest N (parameters) in the parabola fit."""
    seeds: int = 1
    """Most runs of one model size in this budget (>1: the seed spread is the noise model)."""
    points: tuple[tuple[float, float, float, int], ...] = ()
    """With seeds: (N, mean loss, standard error, runs) of every model size."""
    separation: float = float("nan")
    """With seeds: how far the lowest mean lies below the higher of its two neighbours,
    in their combined standard errors (at most 1: neither neighbour is separated from
    the minimum by more than the noise, and the profile is flagged flat)."""

    def predict(self, N):
        """The fitted parabola's loss at model sizes N (parameters)."""
        u = np.log(np.asarray(N, dtype=np.float64)) - np.log(self.N_opt)
        return self.loss_opt + 0.5 * self.curvature * u * u

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


def fit_profiles(table, budget, tolerance, window, bootstrap, seed):
    """Profiles and, per profile, bootstrap samples of (ln N_opt, ln D_opt)."""
    budgets = budget_labels(table, budget, tolerance)
    profiles, vertex_samples = [], []
    for index, label in enumerate(np.unique(budgets)):
        part = table.subset(budgets == label)
        profile, log_n_samples, log_d_samples = _fit_profile(part, float(label), window, bootstrap, seed + index)
        profiles.append(profile)
        vertex_samples.append((log_n_samples, log_d_samples))
    return profiles, vertex_samples


def group_budgets(flops: np.ndarray, tolerance_decades: float) -> np.ndarray:
    """Label each compute value with its budget: the geometric mean of a cluster of
    values whose neighbours lie within ``tolerance_decades`` of each other."""
    log_c = np.log10(np.asarray(flops, dtype=np.float64))
    order = np.argsort(log_c, kind="stable")
    cluster = np.concatenate([[0], np.cumsum(np.diff(log_c[order]) > tolerance_decades)])
    labels = np.empty(len(log_c))
    for k in np.unique(cluster):
        members = order[cluster == k]
        labels[members] = 10 ** np.mean(log_c[members])
    return labels


def budget_labels(table: RunsTable, budget: str | None, tolerance: float) -> np.ndarray:
    if budget is None:
        if tolerance < 0:
            raise BadInputError(f"budget_tolerance={tolerance}: must be >= 0 decades")
        return group_budgets(table.C, tolerance)
    values = pd.to_numeric(table.column(budget), errors="coerce").to_numpy(np.float64)
    if not np.all(np.isfinite(values) & (values > 0)):
        raise BadInputError(f"budget column {budget!r} has missing or non-positive values: every run needs its budget")
    return values


def _fit_profile(part: RunsTable, C: float, window: int | None, bootstrap: int, seed: int):
    """Parabola through one budget's runs; returns (profile, ln N_opt samples, ln D_opt samples)."""
    order = np.argsort(part.N, kind="stable")
    log_n, log_d, loss = np.log(part.N[order]), np.log(part.D[order]), part.loss[order]
    missing = np.full(bootstrap, np.nan)
    sizes = np.unique(log_n)
    if sizes.size < len(log_n) and sizes.size >= 3:
        return _replicated_profile(C, log_n, log_d, loss, window, bootstrap, seed)
    if sizes.size < 3:
        return IsoFlopProfile(C, len(loss), False, f"{sizes.size} model size(s): a parabola needs 3"), missing, missing
    lowest = int(np.argmin(loss))
    if log_n[lowest] == sizes[0] or log_n[lowest] == sizes[-1]:
        side = "smallest" if log_n[lowest] == sizes[0] else "largest"
        reason = f"lowest loss at the {side} model size: the minimum is not bracketed"
        return IsoFlopProfile(C, len(loss), False, reason), missing, missing
    if window is None:
        keep = np.ones(len(loss), dtype=bool)
    else:
        rank = np.searchsorted(sizes, log_n)
        centre = np.searchsorted(sizes, log_n[lowest])
        keep = np.abs(rank - centre) <= window
    x, y, xd = log_n[keep], loss[keep], log_d[keep]
    shift = np.mean(x)
    coef = _parabolas(x - shift, y, np.ones((1, len(x))))[0]
    c0, c1, c2 = coef
    base = dict(C=C, n_runs=len(loss), curvature=float(2 * c2), window=(float(np.exp(x.min())), float(np.exp(x.max()))))
    if not c2 > 0:
        return IsoFlopProfile(usable=False, reason="the parabola opens downward: no minimum", **base), missing, missing
    vertex = -c1 / (2 * c2)
    if not x.min() - shift <= vertex <= x.max() - shift:
        reason = "the parabola's minimum lies outside the fitted model sizes"
        return IsoFlopProfile(usable=False, reason=reason, **base), missing, missing
    curvature_t = _curvature_t_statistic(x - shift, y, coef)
    d_slope, d_icpt = weighted_line(x - shift, xd, np.ones(len(x)))
    log_n_opt = vertex + shift
    loss_opt = c0 - c1 * c1 / (4 * c2)

    log_n_samples, log_d_samples = missing, missing
    spread = dict(_NO_SPREAD)
    if bootstrap:
        coefs = _parabolas(x - shift, y, resample_counts(len(x), bootstrap, seed))
        vertices, spread = _vertex_spread(coefs, x, shift)
        log_n_samples = vertices + shift
        log_d_samples = d_icpt + d_slope * vertices
    # The curvature is not distinguishable from zero given the scatter of the
    # points around the parabola: the loss does not rise measurably on either side.
    spread["flat"] = spread["flat"] or curvature_t < FLAT_T_STATISTIC
    profile = IsoFlopProfile(
        usable=True,
        N_opt=float(np.exp(log_n_opt)),
        D_opt=float(np.exp(d_icpt + d_slope * vertex)),
        loss_opt=float(loss_opt),
        **spread,
        **base,
    )
    return profile, log_n_samples, log_d_samples


_NO_SPREAD = {"log_n_opt_std": float("nan"), "n_opt_ci": (float("nan"), float("nan")), "flat": False}


def _vertex_spread(coefs: np.ndarray, x: np.ndarray, shift: float) -> tuple[np.ndarray, dict]:
    """Vertices of resampled parabolas ``coefs`` (K, 3) fitted to ``x - shift``
    (NaN where a parabola has no minimum inside the window), and the profile fields
    they give: the log-spread of N_opt, its 95% interval and whether it is flat."""
    with np.errstate(divide="ignore", invalid="ignore"):
        vertices = -coefs[:, 1] / (2 * coefs[:, 2])
    valid = (coefs[:, 2] > 0) & (vertices >= x.min() - shift) & (vertices <= x.max() - shift)
    vertices = np.where(valid, vertices, np.nan)
    log_n_samples = vertices + shift
    finite = log_n_samples[np.isfinite(log_n_samples)]
    low, high = percentile_interval(log_n_samples, 0.95)
    return vertices, {
        "log_n_opt_std": float(np.std(finite)) if finite.size > 1 else float("inf"),
        "n_opt_ci": (float(np.exp(low)), float(np.exp(high))),
        # The resampled minima wander over most of the window, or most resamples
        # have no interior minimum at all.
        "flat": bool(valid.mean() < 0.5 or (high - low) > 0.75 * (x.max() - x.min())),
    }


def _seed_means(log_n: np.ndarray, log_d: np.ndarray, loss: np.ndarray):
    """Per distinct model size: ln N, mean ln D, mean loss, its standard error and the
    run count. The seed variance is pooled over the sizes (a few seeds per size give
    a poor variance each)."""
    sizes, inverse, counts = np.unique(log_n, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=loss) / counts
    mean_log_d = np.bincount(inverse, weights=log_d) / counts
    deviations = loss - means[inverse]
    dof = len(loss) - len(sizes)
    pooled = float(deviations @ deviations) / dof
    floor = 1e-9 * float(np.abs(means).max())  # identical seeds: still a finite weight
    se = np.maximum(np.sqrt(pooled / counts), floor)
    return sizes, mean_log_d, means, se, counts


def _replicated_profile(C: float, log_n, log_d, loss, window: int | None, bootstrap: int, seed: int):
    """One budget with several seeds per model size (see the module docstring)."""
    sizes, size_log_d, means, se, counts = _seed_means(log_n, log_d, loss)
    missing = np.full(bootstrap, np.nan)
    points = tuple(
        (float(np.exp(n)), float(m), float(e), int(c)) for n, m, e, c in zip(sizes, means, se, counts, strict=True)
    )
    common = dict(C=C, n_runs=len(loss), seeds=int(counts.max()), points=points)
    lowest = int(np.argmin(means))
    if lowest in (0, len(sizes) - 1):
        side = "smallest" if lowest == 0 else "largest"
        reason = f"lowest mean loss at the {side} model size: the minimum is not bracketed"
        return IsoFlopProfile(usable=False, reason=reason, **common), missing, missing
    gaps = [(means[j] - means[lowest]) / np.hypot(se[j], se[lowest]) for j in (lowest - 1, lowest + 1)]
    keep = slice(None) if window is None else slice(max(lowest - window, 0), lowest + window + 1)
    x, y, sigma, xd = sizes[keep], means[keep], se[keep], size_log_d[keep]
    shift = float(np.mean(x))
    weights = 1.0 / sigma**2
    design = np.stack([np.ones_like(x), x - shift, (x - shift) ** 2], axis=1)
    covariance = np.linalg.pinv(design.T @ (weights[:, None] * design))  # known noise: no rescaling
    c0, c1, c2 = covariance @ design.T @ (weights * y)
    common.update(curvature=float(2 * c2), window=(float(np.exp(x.min())), float(np.exp(x.max()))))
    common["separation"] = float(max(gaps))
    if not c2 > 0:
        return (
            IsoFlopProfile(usable=False, reason="the parabola opens downward: no minimum", **common),
            missing,
            missing,
        )
    vertex = -c1 / (2 * c2)
    if not x.min() - shift <= vertex <= x.max() - shift:
        reason = "the parabola's minimum lies outside the fitted model sizes"
        return IsoFlopProfile(usable=False, reason=reason, **common), missing, missing
    d_slope, d_icpt = weighted_line(x - shift, xd, np.ones(len(x)))
    log_n_samples, log_d_samples = missing, missing
    spread = dict(_NO_SPREAD)
    if bootstrap:
        # Redraw every mean within its standard error and refit the parabola.
        redrawn = y[None, :] + sigma[None, :] * np.random.default_rng(seed).standard_normal((bootstrap, len(y)))
        coefs = (covariance @ design.T @ (weights[None, :] * redrawn).T).T
        vertices, spread = _vertex_spread(coefs, x, shift)
        log_n_samples = vertices + shift
        log_d_samples = d_icpt + d_slope * (log_n_samples - shift)
    curvature_t = float(c2 / np.sqrt(covariance[2, 2])) if covariance[2, 2] > 0 else float("inf")
    spread["flat"] = spread["flat"] or curvature_t < FLAT_T_STATISTIC or max(gaps) <= 1.0
    profile = IsoFlopProfile(
        usable=True,
        N_opt=float(np.exp(vertex + shift)),
        D_opt=float(np.exp(d_icpt + d_slope * vertex)),
        loss_opt=float(c0 - c1 * c1 / (4 * c2)),
        **spread,
        **common,
    )
    return profile, log_n_samples, log_d_samples


def _curvature_t_statistic(x: np.ndarray, y: np.ndarray, coef: np.ndarray) -> float:
    """Least-squares t statistic of the quadratic coefficient (inf if exact or too few points)."""
    dof = len(x) - 3
    if dof < 1:
        return float("inf")
    design = np.stack([np.ones_like(x), x, x * x], axis=1)
    residual = y - design @ coef
    variance = float(residual @ residual) / dof
    if variance == 0.0:
        return float("inf")
    covariance = variance * np.linalg.pinv(design.T @ design)
    return float(coef[2] / np.sqrt(covariance[2, 2]))


def _parabolas(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares parabolas ``y = c0 + c1 x + c2 x^2``, one per weight row.

    Returns (rows, 3); rows whose points cannot fix a parabola are NaN.
    """
    design = np.stack([np.ones_like(x), x, x * x], axis=1)  # (n, 3)
    normal = np.einsum("kn,ni,nj->kij", weights, design, design)
    rhs = np.einsum("kn,ni,n->ki", weights, design, y)
    distinct = (weights[:, None, :] > 0) & (x[None, None, :] == np.unique(x)[None, :, None])
    enough = distinct.any(axis=2).sum(axis=1) >= 3
    out = np.full((len(weights), 3), np.nan)
    if enough.any():
        out[enough] = np.linalg.solve(normal[enough], rhs[enough][..., None])[..., 0]
    return out


def weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the weighted least-squares line ``y = slope x + icpt``."""
    sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return slope, (sy - slope * sx) / sw
