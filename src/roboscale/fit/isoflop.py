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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts, to_jsonable
from roboscale.fit.power_law import PowerLawFit, fit_power_law
from roboscale.fit.runs_table import RunsTable, load_runs

FLAT_T_STATISTIC = 2.0
"""A profile whose curvature is less than this many standard errors above zero is
flagged flat: its minimum is not resolved by the data."""

MIN_LOG_STD = 0.01
"""Floor on a vertex's log-spread when it becomes a weight (1/sigma^2): a budget
whose few resamples happened to agree must not outweigh all others."""


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


@dataclass(frozen=True)
class IsoFlopFit:
    """``N_opt = k_N C^a`` and ``D_opt = k_D C^b`` from IsoFLOP profile minima."""

    a: float
    b: float
    k_N: float
    k_D: float
    profiles: tuple[IsoFlopProfile, ...]
    weighted: bool
    n_runs: int
    window: int | None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_level: float = 0.95
    bootstrap: int = 0
    bootstrap_converged: int = 0
    loss_law: PowerLawFit | None = None
    """``loss_opt = E + A C^-alpha`` over the usable budgets, when there are enough."""
    compute_range: tuple[float, float] = (float("nan"), float("nan"))
    """Smallest and largest compute budget (FLOPs)."""
    samples: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(resamples, 4) bootstrap estimates of (a, ln k_N, b, ln k_D)."""

    method = "isoflop"

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
        if self.samples is None or len(self.samples) == 0:
            return None
        log_c = np.log(np.atleast_1d(np.asarray(C, dtype=np.float64)))[None, :]
        a, log_k_n, b, log_k_d = (self.samples[:, i : i + 1] for i in range(4))
        # The loss law has its own bootstrap (over budgets): its rows are not paired
        # with these, which is fine for per-quantity intervals.
        loss = self.loss_law.predict_samples(np.exp(log_c[0])) if self.loss_law is not None else None
        return np.exp(log_k_n + a * log_c), np.exp(log_k_d + b * log_c), loss

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "method": self.method,
                "law": "N_opt = k_N * C^a, D_opt = k_D * C^b",
                "a": self.a,
                "b": self.b,
                "k_N": self.k_N,
                "k_D": self.k_D,
                "ci": self.ci,
                "ci_level": self.ci_level,
                "weighted": self.weighted,
                "window": self.window,
                "n_runs": self.n_runs,
                "n_budgets": len(self.profiles),
                "n_usable_budgets": len(self.usable_profiles),
                "flat_budgets": [p.C for p in self.flat_profiles],
                "bootstrap": self.bootstrap,
                "bootstrap_converged": self.bootstrap_converged,
                "loss_law": None if self.loss_law is None else self.loss_law.to_dict(),
                "compute_range": self.compute_range,
                "profiles": [p.to_dict() for p in self.profiles],
                "converged": True,
            }
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
    ``1/log_std^2`` when ``weighted``); the bootstrap then resamples budgets.
    """
    check_bootstrap_options(bootstrap, ci_level)
    if window is not None and window < 1:
        raise BadInputError(f"window={window}: must be >= 1 model size on each side of the minimum (or None for all)")
    if (runs is None) == (optima is None):
        raise BadInputError("give either runs (a runs table) or optima (per-budget minima), not both or neither")
    if optima is not None:
        return _fit_from_optima(optima, weighted, bootstrap, seed, ci_level)

    table = runs if isinstance(runs, RunsTable) and not load_options else load_runs(runs, **load_options)
    if np.unique(table.N).size < 3:
        raise BadInputError(
            f"{np.unique(table.N).size} distinct model size(s): IsoFLOP profiles need at least 3 per budget"
        )
    profiles, vertex_samples = _profiles(table, budget, budget_tolerance, window, bootstrap, seed)
    usable = [i for i, p in enumerate(profiles) if p.usable]
    if len(usable) < 2:
        reasons = "; ".join(f"C={p.C:.3g}: {p.reason}" for p in profiles if not p.usable) or "only one budget"
        raise BadInputError(
            f"{len(usable)} usable IsoFLOP profile(s) of {len(profiles)}: need at least 2 budgets with a "
            f"bracketed minimum ({reasons}); add budgets or model sizes around the minimum"
        )
    chosen = [profiles[i] for i in usable]
    log_c = np.log([p.C for p in chosen])
    log_n = np.log([p.N_opt for p in chosen])
    log_d = np.log([p.D_opt for p in chosen])
    sigma = np.array([p.log_n_opt_std for p in chosen])
    use_weights = weighted and bootstrap > 0 and np.all(np.isfinite(sigma))
    weights = 1.0 / np.maximum(sigma, MIN_LOG_STD) ** 2 if use_weights else np.ones(len(chosen))
    a, log_k_n = _weighted_line(log_c, log_n, weights)
    b, log_k_d = _weighted_line(log_c, log_d, weights)

    samples, ci = None, {}
    if bootstrap:
        n_samples = np.stack([vertex_samples[i][0] for i in usable], axis=1)  # (K, budgets)
        d_samples = np.stack([vertex_samples[i][1] for i in usable], axis=1)
        samples = _exponent_samples(log_c, n_samples, d_samples, weights)
        ci = _exponent_intervals(samples, ci_level)

    return IsoFlopFit(
        a=float(a),
        b=float(b),
        k_N=float(np.exp(log_k_n)),
        k_D=float(np.exp(log_k_d)),
        profiles=tuple(profiles),
        weighted=bool(use_weights),
        n_runs=len(table),
        window=window,
        ci=ci,
        ci_level=ci_level,
        bootstrap=bootstrap,
        bootstrap_converged=0 if samples is None else len(samples),
        loss_law=_loss_law(chosen, bootstrap, seed),
        compute_range=(min(p.C for p in profiles), max(p.C for p in profiles)),
        samples=samples,
    )


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
    table = runs if isinstance(runs, RunsTable) else load_runs(runs)
    return _profiles(table, budget, budget_tolerance, window, bootstrap, seed)[0]


def _profiles(table, budget, tolerance, window, bootstrap, seed):
    """Profiles and, per profile, bootstrap samples of (ln N_opt, ln D_opt)."""
    budgets = _budget_labels(table, budget, tolerance)
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


def _budget_labels(table: RunsTable, budget: str | None, tolerance: float) -> np.ndarray:
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
    d_slope, d_icpt = _weighted_line(x - shift, xd, np.ones(len(x)))
    log_n_opt = vertex + shift
    loss_opt = c0 - c1 * c1 / (4 * c2)

    log_n_samples, log_d_samples = missing, missing
    std, ci, flat = float("nan"), (float("nan"), float("nan")), False
    if bootstrap:
        counts = resample_counts(len(x), bootstrap, seed)
        coefs = _parabolas(x - shift, y, counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            vertices = -coefs[:, 1] / (2 * coefs[:, 2])
        valid = (coefs[:, 2] > 0) & (vertices >= x.min() - shift) & (vertices <= x.max() - shift)
        vertices = np.where(valid, vertices, np.nan)
        log_n_samples = vertices + shift
        log_d_samples = d_icpt + d_slope * vertices
        finite = log_n_samples[np.isfinite(log_n_samples)]
        std = float(np.std(finite)) if finite.size > 1 else float("inf")
        low, high = percentile_interval(log_n_samples, 0.95)
        ci = (float(np.exp(low)), float(np.exp(high)))
        # The resampled minima wander over most of the window, or most resamples
        # have no interior minimum at all.
        flat = bool(valid.mean() < 0.5 or (high - low) > 0.75 * (x.max() - x.min()))
    # The curvature is not distinguishable from zero given the scatter of the
    # points around the parabola: the loss does not rise measurably on either side.
    flat = flat or curvature_t < FLAT_T_STATISTIC
    profile = IsoFlopProfile(
        usable=True,
        N_opt=float(np.exp(log_n_opt)),
        D_opt=float(np.exp(d_icpt + d_slope * vertex)),
        loss_opt=float(loss_opt),
        log_n_opt_std=std,
        n_opt_ci=ci,
        flat=flat,
        **base,
    )
    return profile, log_n_samples, log_d_samples


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
    d_slope, d_icpt = _weighted_line(x - shift, xd, np.ones(len(x)))
    log_n_samples, log_d_samples = missing, missing
    std, ci, flat = float("nan"), (float("nan"), float("nan")), False
    if bootstrap:
        # Redraw every mean within its standard error and refit the parabola.
        redrawn = y[None, :] + sigma[None, :] * np.random.default_rng(seed).standard_normal((bootstrap, len(y)))
        coefs = (covariance @ design.T @ (weights[None, :] * redrawn).T).T
        with np.errstate(divide="ignore", invalid="ignore"):
            vertices = -coefs[:, 1] / (2 * coefs[:, 2])
        valid = (coefs[:, 2] > 0) & (vertices >= x.min() - shift) & (vertices <= x.max() - shift)
        log_n_samples = np.where(valid, vertices, np.nan) + shift
        log_d_samples = d_icpt + d_slope * (log_n_samples - shift)
        finite = log_n_samples[np.isfinite(log_n_samples)]
        std = float(np.std(finite)) if finite.size > 1 else float("inf")
        low, high = percentile_interval(log_n_samples, 0.95)
        ci = (float(np.exp(low)), float(np.exp(high)))
        flat = bool(valid.mean() < 0.5 or (high - low) > 0.75 * (x.max() - x.min()))
    curvature_t = float(c2 / np.sqrt(covariance[2, 2])) if covariance[2, 2] > 0 else float("inf")
    flat = flat or curvature_t < FLAT_T_STATISTIC or max(gaps) <= 1.0
    profile = IsoFlopProfile(
        usable=True,
        N_opt=float(np.exp(vertex + shift)),
        D_opt=float(np.exp(d_icpt + d_slope * vertex)),
        loss_opt=float(c0 - c1 * c1 / (4 * c2)),
        log_n_opt_std=std,
        n_opt_ci=ci,
        flat=flat,
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


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the weighted least-squares line ``y = slope x + icpt``."""
    sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    return slope, (sy - slope * sx) / sw


def _lines(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _exponent_samples(log_c, n_samples, d_samples, weights) -> np.ndarray:
    a, log_k_n = _lines(log_c, n_samples, np.broadcast_to(weights, n_samples.shape))
    b, log_k_d = _lines(log_c, d_samples, np.broadcast_to(weights, d_samples.shape))
    samples = np.column_stack([a, log_k_n, b, log_k_d])
    return samples[np.all(np.isfinite(samples), axis=1)]


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


def _fit_from_optima(optima: pd.DataFrame, weighted: bool, bootstrap: int, seed: int, ci_level: float) -> IsoFlopFit:
    required = ("C", "N_opt")
    missing = [col for col in required if col not in optima.columns]
    if missing:
        raise BadInputError(
            f"optima table lacks column(s) {', '.join(missing)}; it needs C and N_opt "
            f"(optional D_opt, loss_opt, N_opt_log_std, D_opt_log_std); has: {', '.join(map(str, optima.columns))}"
        )
    frame = optima.copy()
    for col in ("C", "N_opt"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame = frame[np.isfinite(frame["C"]) & np.isfinite(frame["N_opt"]) & (frame["C"] > 0) & (frame["N_opt"] > 0)]
    if len(frame) < 2:
        raise BadInputError(f"{len(frame)} budget(s) with a finite optimum: need at least 2 to fit an exponent")
    C = frame["C"].to_numpy(np.float64)
    N = frame["N_opt"].to_numpy(np.float64)
    D = frame["D_opt"].to_numpy(np.float64) if "D_opt" in frame else C / (6.0 * N)
    loss = frame["loss_opt"].to_numpy(np.float64) if "loss_opt" in frame else np.full(len(C), np.nan)
    sigma_n = frame["N_opt_log_std"].to_numpy(np.float64) if "N_opt_log_std" in frame else None
    sigma_d = frame["D_opt_log_std"].to_numpy(np.float64) if "D_opt_log_std" in frame else sigma_n
    use_weights = weighted and sigma_n is not None and np.all(np.isfinite(sigma_n) & (sigma_n > 0))
    w_n = 1.0 / np.maximum(sigma_n, MIN_LOG_STD) ** 2 if use_weights else np.ones(len(C))
    w_d = 1.0 / np.maximum(sigma_d, MIN_LOG_STD) ** 2 if use_weights and sigma_d is not None else w_n
    log_c = np.log(C)
    a, log_k_n = _weighted_line(log_c, np.log(N), w_n)
    b, log_k_d = _weighted_line(log_c, np.log(D), w_d)
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
    samples, ci = None, {}
    if bootstrap:
        counts = resample_counts(len(C), bootstrap, seed)
        a_s, kn_s = _lines(log_c, np.broadcast_to(np.log(N), counts.shape), counts * w_n)
        b_s, kd_s = _lines(log_c, np.broadcast_to(np.log(D), counts.shape), counts * w_d)
        samples = np.column_stack([a_s, kn_s, b_s, kd_s])
        samples = samples[np.all(np.isfinite(samples), axis=1)]
        ci = _exponent_intervals(samples, ci_level)
    return IsoFlopFit(
        a=float(a),
        b=float(b),
        k_N=float(np.exp(log_k_n)),
        k_D=float(np.exp(log_k_d)),
        profiles=profiles,
        weighted=bool(use_weights),
        n_runs=0,
        window=None,
        ci=ci,
        ci_level=ci_level,
        bootstrap=bootstrap,
        bootstrap_converged=0 if samples is None else len(samples),
        loss_law=_loss_law(list(profiles), bootstrap, seed),
        samples=samples,
        compute_range=(float(C.min()), float(C.max())),
    )
