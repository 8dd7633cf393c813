"""Approach 3 of Hoffmann et al. (2022): the parametric law ``L(N, D) = E + A/N^alpha + B/D^beta``.

Fitted as Hoffmann et al. and Besiroglu et al. (2024, Epoch's replication) describe:
in log space with log-sum-exp, a Huber loss (delta 1e-3) on log loss summed over
runs, and L-BFGS from a grid of starting points keeping the best. Two things make
it fast and sure: all starts run as one batched L-BFGS (:mod:`.optimize`), first to
a loose tolerance, then the best distinct candidates are polished to round-off; and
the bootstrap refits every resample at once, starting from the best minima found.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts
from roboscale.fit.laws import ParametricObjective, optimal_allocation, parametric_loss
from roboscale.fit.optimize import Status, best_per_problem, distinct_lowest, minimize_lbfgs, multistart
from roboscale.fit.result import FitResult, bootstrap_fields
from roboscale.fit.runs_table import RunsTable, load_runs

PARAMETER_NAMES = ("E", "A", "B", "alpha", "beta")

HOFFMANN_GRID = {
    "log_E": tuple(np.arange(-1.0, 1.01, 0.5)),
    "log_A": tuple(np.arange(0.0, 25.1, 5.0)),
    "log_B": tuple(np.arange(0.0, 25.1, 5.0)),
    "alpha": tuple(np.arange(0.0, 2.01, 0.5)),
    "beta": tuple(np.arange(0.0, 2.01, 0.5)),
}
"""The Hoffmann/Epoch grid of starting points: 5 x 6 x 6 x 5 x 5 = 4,500 starts."""


def start_grid(grid: dict[str, tuple[float, ...]] | None = None) -> np.ndarray:
    """(starts, 5) array of ``(log E, log A, log B, alpha, beta)`` starting points."""
    grid = HOFFMANN_GRID if grid is None else {**HOFFMANN_GRID, **grid}
    axes = [np.asarray(grid[key], dtype=np.float64) for key in ("log_E", "log_A", "log_B", "alpha", "beta")]
    return np.array(list(itertools.product(*axes)))


@dataclass(frozen=True)
class ParametricFit(FitResult):
    """A fitted ``L(N, D) = E + A/N^alpha + B/D^beta`` (N in parameters, D in tokens).

    ``samples``: (resamples, 5) bootstrap estimates of (E, A, B, alpha, beta)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    """Sum over runs of Huber(log predicted - log observed loss) at the optimum."""
    residual_rms: float
    """Root-mean-square of log(predicted/observed) over runs (0.01 ~ 1% error)."""
    n_runs: int
    huber_delta: float
    flops_per_param_token: float
    starts: int
    fixed_E: bool = False
    compute_range: tuple[float, float] = (float("nan"), float("nan"))
    """Smallest and largest training compute among the runs (FLOPs)."""

    method = "parametric"
    law = "L(N, D) = E + A / N^alpha + B / D^beta"

    @property
    def a(self) -> float:
        """Exponent of the compute-optimal model size, ``N_opt ∝ C^a``."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of the compute-optimal data size, ``D_opt ∝ C^b``."""
        return self.alpha / (self.alpha + self.beta)

    def predict_loss(self, N, D):
        """Predicted loss for N parameters trained on D tokens."""
        return parametric_loss(N, D, self.E, self.A, self.B, self.alpha, self.beta)

    def predict_loss_samples(self, N, D) -> np.ndarray | None:
        """(resamples, points) bootstrap predictions of the loss, or None."""
        columns = self.sample_columns(5)
        if columns is None:
            return None
        return parametric_loss(np.atleast_1d(N)[None, :], np.atleast_1d(D)[None, :], *columns)

    def allocate(self, C) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compute-optimal ``(N_opt, D_opt, loss)`` for budgets C in FLOPs."""
        N, D = optimal_allocation(C, self.A, self.B, self.alpha, self.beta, self.flops_per_param_token)
        return N, D, self.predict_loss(N, D)

    def allocate_samples(self, C):
        """Bootstrap distribution of :meth:`allocate`: three (resamples, budgets) arrays."""
        columns = self.sample_columns(5)
        if columns is None:
            return None
        E, A, B, alpha, beta = columns
        C = np.atleast_1d(np.asarray(C, dtype=np.float64))[None, :]
        N, D = optimal_allocation(C, A, B, alpha, beta, self.flops_per_param_token)
        return N, D, parametric_loss(N, D, E, A, B, alpha, beta)

    def to_dict(self) -> dict:
        return self._summary(
            {**{name: getattr(self, name) for name in PARAMETER_NAMES}, "a": self.a, "b": self.b},
            {
                "objective": self.objective,
                "residual_rms": self.residual_rms,
                "n_runs": self.n_runs,
                "huber_delta": self.huber_delta,
                "flops_per_param_token": self.flops_per_param_token,
                "starts": self.starts,
            },
            {"fixed_E": self.fixed_E, "compute_range": self.compute_range},
        )


def fit_parametric(
    runs,
    *,
    huber_delta: float = 1e-3,
    grid: dict[str, tuple[float, ...]] | None = None,
    fixed_E: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    polish_starts: int = 32,
    bootstrap_starts: int = 2,
    max_iter: int = 5000,
    threads: int | None = None,
    **load_options,
) -> ParametricFit:
    """Fit ``L(N, D) = E + A/N^alpha + B/D^beta`` to a runs table.

    ``runs``: a path, DataFrame or :class:`RunsTable` (``load_options`` go to
    :func:`load_runs`). ``grid`` overrides axes of the starting grid (keys
    ``log_E, log_A, log_B, alpha, beta``). ``fixed_E`` holds the irreducible loss at
    a known value (e.g. the entropy of injected label noise). ``bootstrap``
    resamples of the runs (with replacement, seeded by ``seed``) give the
    ``ci_level`` percentile intervals; each resample starts from the
    ``bootstrap_starts`` best distinct minima of the full fit. ``max_iter`` caps
    the L-BFGS iterations of the final (polishing) stage.

    Raises :class:`FitDidNotConvergeError` if no start reached a minimum.
    """
    check_bootstrap_options(bootstrap, ci_level, seed)
    if max_iter < 1:
        raise BadInputError(f"--max-iter {max_iter}: the final L-BFGS stage needs at least 1 iteration (default 5000)")
    table = runs if isinstance(runs, RunsTable) and not load_options else load_runs(runs, **load_options)
    if not huber_delta > 0:
        raise BadInputError(f"huber_delta={huber_delta}: must be > 0 (1e-3 is the Hoffmann et al. choice)")
    if fixed_E is not None and not fixed_E > 0:
        raise BadInputError(f"fixed_E={fixed_E}: the irreducible loss must be > 0")
    n_free = 4 if fixed_E is not None else 5
    _check_design(table, n_free)

    log_n, log_d, log_loss = np.log(table.N), np.log(table.D), np.log(table.loss)
    fixed = np.array([fixed_E is not None, False, False, False, False])
    starts = start_grid(grid)
    if fixed_E is not None:
        starts = np.unique(np.column_stack([np.full(len(starts), np.log(fixed_E)), starts[:, 1:]]), axis=0)
    objective = ParametricObjective(log_n, log_d, log_loss, huber_delta, fixed=fixed)
    minima = multistart(objective, starts, polish=polish_starts, polish_iter=max_iter, threads=threads)
    best = 0
    if not minima.converged[best]:
        raise FitDidNotConvergeError(
            f"the parametric fit did not converge ({Status(minima.status[best]).name.lower()} after "
            f"{minima.iterations[best]} iterations, objective {minima.value[best]:.6g}): "
            "raise --max-iter, or check the runs for outliers (--drop-highest-loss)"
        )
    x = minima.x[best]
    natural = _natural(x[None, :])[0]
    prediction = np.log(parametric_loss(table.N, table.D, *natural))

    samples = None
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap:
        seeds_for_resamples = distinct_lowest(minima, bootstrap_starts)
        samples = _bootstrap(objective, log_n, log_d, log_loss, seeds_for_resamples, bootstrap, seed, threads)
        columns = {name: samples[:, i] for i, name in enumerate(PARAMETER_NAMES)}
        columns["a"] = samples[:, 4] / (samples[:, 3] + samples[:, 4])
        columns["b"] = samples[:, 3] / (samples[:, 3] + samples[:, 4])
        ci = {name: percentile_interval(values, ci_level) for name, values in columns.items()}

    return ParametricFit(
        **dict(zip(PARAMETER_NAMES, (float(v) for v in natural))),
        objective=float(minima.value[best]),
        residual_rms=float(np.sqrt(np.mean((prediction - log_loss) ** 2))),
        n_runs=len(table),
        huber_delta=huber_delta,
        flops_per_param_token=table.flops_per_param_token,
        starts=len(starts),
        fixed_E=fixed_E is not None,
        compute_range=(float(table.C.min()), float(table.C.max())),
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level),
    )


def _check_design(table: RunsTable, n_free: int) -> None:
    if len(table) <= n_free:
        raise BadInputError(
            f"{len(table)} runs cannot determine {n_free} parameters of L(N, D): "
            f"the parametric fit needs at least {n_free + 1} runs"
        )
    if np.unique(table.N).size < 2:
        raise BadInputError("every run has the same model size N: the parametric law needs runs at several model sizes")
    if np.unique(table.D).size < 2:
        raise BadInputError("every run saw the same data size D: the parametric law needs several data sizes")


def _bootstrap(objective, log_n, log_d, log_loss, starts, n_resamples, seed, threads) -> np.ndarray:
    """Refit on ``n_resamples`` resamples of the runs; (converged, 5) natural parameters."""
    counts = resample_counts(len(log_loss), n_resamples, seed)
    n_starts = len(starts)
    weights = np.repeat(counts, n_starts, axis=0)
    resampled = ParametricObjective(
        log_n,
        log_d,
        log_loss,
        objective.delta,
        weights=weights,
        fixed=None if objective.free is None else ~objective.free,
    )
    x0 = np.tile(starts, (n_resamples, 1))
    result = minimize_lbfgs(resampled, x0, ftol=1e-12, gtol=1e-11, max_iter=1000, threads=threads)
    chosen, found = best_per_problem(result, n_resamples)
    return _natural(chosen[found])


def _natural(x: np.ndarray) -> np.ndarray:
    """(rows, 5) ``(log E, log A, log B, alpha, beta)`` -> ``(E, A, B, alpha, beta)``."""
    out = x.copy()
    with np.errstate(over="ignore"):  # a runaway bootstrap refit becomes inf, not a warning
        out[:, :3] = np.exp(x[:, :3])
    return out
