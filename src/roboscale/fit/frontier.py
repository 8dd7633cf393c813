"""Approach 1 of Hoffmann et al. (2022), the frontier (envelope) method.

From learning curves (one row per evaluation: run id, FLOPs so far, tokens seen,
loss), the lowest loss any model reached at each compute level forms the
compute-efficient frontier. Kaplan et al. (2020) and Pearce et al. (2024, for world
models and behaviour cloning) read their laws off it: ``L(C) = E + A C^-alpha``
along the frontier, and which model size holds the frontier at each C gives
``N_opt = k_N C^a`` (and the tokens it had seen, ``D_opt = k_D C^b``).

Without learning curves (one row per run) the frontier is the set of runs that
beat every cheaper run (the Pareto front of loss against compute).

The bootstrap resamples whole runs (curves), so the intervals reflect which model
sizes were trained, the main source of uncertainty of this method.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from roboscale.errors import BadInputError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts
from roboscale.fit.laws import PowerLawObjective, saturating_power_law
from roboscale.fit.power_law import fit_power_law, fit_rows
from roboscale.fit.result import FitResult, bootstrap_fields
from roboscale.fit.runs_table import RunsTable, load_runs

FLOOR_AT_BOUND = 1e-6
"""A fitted floor E below this fraction of the lowest frontier loss is at its lower
bound 0: E is fitted as log E, whose gradient vanishes as E -> 0, so such a value
(1e-13, say) is where the optimiser stopped, not a measured floor."""


@dataclass(frozen=True)
class FrontierFit(FitResult):
    """``L(C) = E + A C^-alpha`` along the frontier, ``N_opt = k_N C^a``, ``D_opt = k_D C^b``.

    ``samples``: (resamples, 7) bootstrap estimates of (E, A, alpha, a, ln k_N, b, ln k_D)."""

    E: float
    A: float
    alpha: float
    a: float
    b: float
    k_N: float
    k_D: float
    frontier_C: np.ndarray = field(repr=False)
    """(points,) compute of each frontier point (FLOPs)."""
    frontier_loss: np.ndarray = field(repr=False)
    frontier_N: np.ndarray = field(repr=False)
    """(points,) parameters of the run holding the frontier there."""
    frontier_D: np.ndarray = field(repr=False)
    frontier_run: tuple[str, ...] = field(repr=False, default=())
    n_runs: int = 0
    from_curves: bool = True
    residual_rms: float = float("nan")
    compute_range: tuple[float, float] = (float("nan"), float("nan"))
    """Smallest and largest compute the curves cover (FLOPs)."""
    flops_per_param_token: float = float("nan")
    """``k`` of the runs' ``C = k N D`` (FLOPs per parameter per token). Only for the
    record: ``D_opt`` is read off the tokens the frontier's runs had seen."""
    E_at_lower_bound: bool = False
    """The fitted floor E sits at its lower bound 0 (the frontier shows no floor);
    ``E`` is then 0.0."""
    E_at_lower_bound_resamples: int = 0
    """Bootstrap resamples whose E sits at the lower bound 0 too."""

    method = "frontier"
    law = "L(C) = E + A * C^-alpha on the frontier; N_opt = k_N * C^a, D_opt = k_D * C^b"

    def predict_loss(self, C):
        """Frontier loss at compute C (FLOPs)."""
        return saturating_power_law(C, self.E, self.A, self.alpha)

    def predict_loss_samples(self, C) -> np.ndarray | None:
        """(resamples, points) bootstrap predictions of the frontier loss, or None."""
        columns = self.sample_columns(3)
        return None if columns is None else saturating_power_law(np.atleast_1d(C)[None, :], *columns)

    def allocate(self, C):
        C = np.asarray(C, dtype=np.float64)
        return self.k_N * C**self.a, self.k_D * C**self.b, self.predict_loss(C)

    def allocate_samples(self, C):
        columns = self.sample_columns(7)
        if columns is None:
            return None
        C = np.atleast_1d(np.asarray(C, dtype=np.float64))[None, :]
        E, A, alpha, a, log_k_n, b, log_k_d = columns
        log_c = np.log(C)
        with np.errstate(over="ignore"):  # a runaway resample far beyond the data: inf, not a warning
            return np.exp(log_k_n + a * log_c), np.exp(log_k_d + b * log_c), saturating_power_law(C, E, A, alpha)

    def to_dict(self) -> dict:
        frontier = {
            "C": self.frontier_C,
            "loss": self.frontier_loss,
            "N": self.frontier_N,
            "D": self.frontier_D,
            "run": list(self.frontier_run),
        }
        return self._summary(
            {name: getattr(self, name) for name in ("E", "A", "alpha", "a", "b", "k_N", "k_D")},
            {
                "residual_rms": self.residual_rms,
                "n_runs": self.n_runs,
                "from_curves": self.from_curves,
                "compute_range": self.compute_range,
                "flops_per_param_token": self.flops_per_param_token,
                "E_at_lower_bound": self.E_at_lower_bound,
                "E_at_lower_bound_resamples": self.E_at_lower_bound_resamples,
            },
            {"frontier": frontier},
        )


@dataclass(frozen=True)
class _Curves:
    """Learning curves on a shared log-spaced compute grid (runs x grid)."""

    grid: np.ndarray  # (G,) FLOPs
    loss: np.ndarray  # (R, G), +inf where a run does not reach that compute
    log_d: np.ndarray  # (R, G) ln tokens seen at that compute
    n_params: np.ndarray  # (R,)
    run_ids: tuple[str, ...]


def fit_frontier(
    runs,
    *,
    grid_points: int = 100,
    huber_delta: float = 1e-3,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    **load_options,
) -> FrontierFit:
    """Fit the compute frontier of learning curves (or of final runs).

    ``runs``: a path, DataFrame or :class:`RunsTable` with a run-id column
    (``run``) and several rows per run for learning curves, or one row per run.
    Curves are compared on ``grid_points`` log-spaced compute values, interpolating
    each curve linearly in ln C.
    """
    check_bootstrap_options(bootstrap, ci_level, seed)
    if grid_points < 4:
        raise BadInputError(f"--grid-points {grid_points}: need at least 4 compute values to fit L(C)")
    table = runs if isinstance(runs, RunsTable) and not load_options else load_runs(runs, **load_options)
    curves = _curves(table, grid_points) if _has_curves(table) else _single_points(table)
    everyone = np.ones(len(curves.n_params))
    C, loss, N, log_d, holder = _envelope(curves, everyone)
    if np.unique(N).size < 2:
        raise BadInputError(
            f"the compute frontier is held by a single model size (N={N[0]:.4g}) over the whole range: "
            "train a wider range of model sizes, or more compute per size"
        )
    if len(C) < 4:
        raise BadInputError(f"only {len(C)} points on the compute frontier: the loss law needs at least 4")
    law = fit_power_law(C, loss, huber_delta=huber_delta, bootstrap=0, x_name="C", y_name="loss")
    log_c = np.log(C)
    a, log_k_n = np.polyfit(log_c, np.log(N), 1)
    b, log_k_d = np.polyfit(log_c, log_d, 1)

    floor_bound = FLOOR_AT_BOUND * float(loss.min())
    samples, ci, dropped = None, {}, {}
    if bootstrap:
        starts = _bootstrap_starts(law.E, law.A, law.alpha, C, loss, floor_bound)
        samples, dropped = _bootstrap(curves, bootstrap, seed, starts, huber_delta)
        samples[samples[:, 0] < floor_bound, 0] = 0.0
        ci = _intervals(samples, ci_level)
    E_at_bound = law.E < floor_bound
    return FrontierFit(
        E=0.0 if E_at_bound else law.E,
        A=law.A,
        alpha=law.alpha,
        a=float(a),
        b=float(b),
        k_N=float(np.exp(log_k_n)),
        k_D=float(np.exp(log_k_d)),
        frontier_C=C,
        frontier_loss=loss,
        frontier_N=N,
        frontier_D=np.exp(log_d),
        frontier_run=tuple(curves.run_ids[i] for i in holder),
        n_runs=len(curves.n_params),
        from_curves=bool(_has_curves(table)),
        residual_rms=law.residual_rms,
        compute_range=(float(curves.grid.min()), float(curves.grid.max())),
        flops_per_param_token=table.flops_per_param_token,
        E_at_lower_bound=bool(E_at_bound),
        E_at_lower_bound_resamples=0 if samples is None else int(np.sum(samples[:, 0] == 0.0)),
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level, dropped=dropped),
    )


def _has_curves(table: RunsTable) -> bool:
    return table.has_curves


def _curves(table: RunsTable, grid_points: int) -> _Curves:
    frame = table.frame
    log_c_all = np.log(table.C)
    grid = np.linspace(log_c_all.min(), log_c_all.max(), grid_points)
    run_ids, losses, log_ds, sizes = [], [], [], []
    for run_id, part in frame.groupby("run", sort=True):
        n_values = part["N"].unique()
        if n_values.size != 1:
            raise BadInputError(
                f"run {run_id!r} has {n_values.size} different model sizes N: a learning curve belongs to one model"
            )
        part = part.sort_values("C")
        log_c = np.log(part["C"].to_numpy(np.float64))
        inside = (grid >= log_c[0]) & (grid <= log_c[-1])
        loss = np.full(grid_points, np.inf)
        log_d = np.full(grid_points, np.nan)
        loss[inside] = np.interp(grid[inside], log_c, part["loss"].to_numpy(np.float64))
        log_d[inside] = np.interp(grid[inside], log_c, np.log(part["D"].to_numpy(np.float64)))
        run_ids.append(str(run_id))
        losses.append(loss)
        log_ds.append(log_d)
        sizes.append(float(n_values[0]))
    return _Curves(np.exp(grid), np.array(losses), np.array(log_ds), np.array(sizes), tuple(run_ids))


def _single_points(table: RunsTable) -> _Curves:
    """One-point 'curves': the grid is every distinct compute value."""
    grid, position = np.unique(table.C, return_inverse=True)
    loss = np.full((len(table), len(grid)), np.inf)
    log_d = np.full((len(table), len(grid)), np.nan)
    rows = np.arange(len(table))
    loss[rows, position] = table.loss
    log_d[rows, position] = np.log(table.D)
    run_ids = tuple(table.frame["run"].astype(str)) if table.has_runs else tuple(str(i) for i in rows)
    return _Curves(grid, loss, log_d, table.N, run_ids)


def _envelope(curves: _Curves, counts: np.ndarray):
    """Frontier of the runs with ``counts > 0``: (C, loss, N, ln D, holder index),
    keeping only points that improve on every cheaper point."""
    masked = np.where(counts[:, None] > 0, curves.loss, np.inf)
    holder = np.argmin(masked, axis=0)
    best = masked[holder, np.arange(masked.shape[1])]
    previous_best = np.concatenate([[np.inf], np.minimum.accumulate(best)[:-1]])
    keep = np.isfinite(best) & (best < previous_best)
    holder = holder[keep]
    return (
        curves.grid[keep],
        best[keep],
        curves.n_params[holder],
        curves.log_d[holder, np.flatnonzero(keep)],
        holder,
    )


def _bootstrap_starts(E: float, A: float, alpha: float, C: np.ndarray, loss: np.ndarray, floor_bound: float):
    """Starts ``(log E, log A, alpha)`` of the bootstrap refits: the point estimate and,
    when its floor is at the bound 0, one with the floor at half the lowest loss (A
    matching the cheapest point): from E ~ 0 a refit cannot climb to a floor its
    resample does have, since the gradient in log E vanishes there."""
    starts = [(np.log(max(E, floor_bound)), np.log(A), alpha)]
    if E < floor_bound:
        floor = 0.5 * float(loss.min())
        starts.append((np.log(floor), np.log(float(loss[0]) - floor) + alpha * np.log(float(C[0])), alpha))
    return np.array(starts)


def _bootstrap(curves: _Curves, n_resamples: int, seed: int, law_starts: np.ndarray, delta: float):
    """Resample runs; per resample the frontier, its loss law (refitted from each of
    ``law_starts``, the best kept) and its N/D exponents.

    Returns (samples (kept, 7), {why a resample was left out: how many})."""
    counts = resample_counts(len(curves.n_params), n_resamples, seed)
    grid_size = len(curves.grid)
    loss_rows = np.ones((n_resamples, grid_size))
    weight_rows = np.zeros((n_resamples, grid_size))
    lines = np.full((n_resamples, 4), np.nan)
    log_grid = np.log(curves.grid)
    too_few_points = one_size = 0
    for k in range(n_resamples):
        C, loss, N, log_d, _ = _envelope(curves, counts[k])
        if len(C) < 4 or np.unique(N).size < 2:
            too_few_points += len(C) < 4
            one_size += len(C) >= 4
            continue
        at = np.searchsorted(curves.grid, C)
        loss_rows[k, at] = loss
        weight_rows[k, at] = 1.0
        log_c = log_grid[at]
        lines[k, :2] = np.polyfit(log_c, np.log(N), 1)
        lines[k, 2:] = np.polyfit(log_c, log_d, 1)
    dropped = {
        "had fewer than 4 frontier points": too_few_points,
        "had one model size holding the whole frontier": one_size,
    }
    usable = np.all(np.isfinite(lines), axis=1)
    samples = np.empty((0, 7))
    if usable.any():
        law = fit_rows(PowerLawObjective, curves.grid, loss_rows[usable], weight_rows[usable], law_starts, None, delta)
        law[:, :2] = np.exp(law[:, :2])
        samples = np.column_stack([law, lines[usable]])
        samples = samples[np.all(np.isfinite(samples), axis=1)]
    dropped["loss-law refits did not converge"] = int(usable.sum()) - len(samples)
    return samples, {why: int(count) for why, count in dropped.items() if count}


def _intervals(samples: np.ndarray, level: float) -> dict[str, tuple[float, float]]:
    names = ("E", "A", "alpha", "a", "k_N", "b", "k_D")
    ci = {}
    for i, name in enumerate(names):
        low, high = percentile_interval(samples[:, i], level)
        ci[name] = (float(np.exp(low)), float(np.exp(high))) if name.startswith("k_") else (low, high)
    return ci
