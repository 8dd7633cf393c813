"""Batched L-BFGS: minimise many small smooth problems at once.

A scaling-law fit minimises the same low-dimensional objective from thousands of
starting points (the Hoffmann/Epoch grid has 4,500) and again for every bootstrap
resample. Calling ``scipy.optimize.minimize`` once per start spends almost all of
its time in Python overhead, because each objective evaluation touches only a few
hundred numbers. Here every start is a row of one array: the objective, its
gradient, the two-loop recursion and the line search all run on whole arrays, and
rows drop out of the computation as they converge.

The algorithm is textbook L-BFGS (Nocedal & Wright, Algorithm 7.4/7.5) with a
backtracking Armijo line search that interpolates a quadratic on rejection; a
curvature pair is stored only when ``s·y > 0`` so the inverse-Hessian estimate stays
positive definite without a Wolfe search.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from roboscale.files import available_cpus

ValueAndGrad = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``value_and_grad(x, rows) -> (f, g)``: ``x`` is (b, P) parameters for problem rows
``rows`` (b,) of the batch; returns the objective (b,) and its gradient (b, P)."""


class Status(IntEnum):
    """Why one row of a batched minimisation stopped."""

    RUNNING = 0
    GRADIENT = 1  # max |gradient| fell below gtol
    STALLED = 2  # relative decrease of the objective fell below ftol
    LINE_SEARCH = 3  # no step along the search direction decreased the objective
    MAX_ITER = 4  # iteration limit reached
    NOT_FINITE = 5  # the objective or gradient was not finite at the start


@dataclass(frozen=True)
class BatchedMinimum:
    """Result of :func:`minimize_lbfgs`, one row per problem."""

    x: np.ndarray
    """(B, P) parameters where each row stopped."""
    value: np.ndarray
    """(B,) objective at ``x``."""
    grad_max: np.ndarray
    """(B,) largest absolute gradient component at ``x``."""
    iterations: np.ndarray
    """(B,) L-BFGS iterations taken."""
    status: np.ndarray
    """(B,) :class:`Status` codes."""
    evaluations: int
    """Total number of row evaluations of the objective (the cost measure)."""

    @property
    def converged(self) -> np.ndarray:
        """(B,) True where a row stopped at a stationary point, not at a limit."""
        return np.isin(self.status, (Status.GRADIENT, Status.STALLED, Status.LINE_SEARCH))


def minimize_lbfgs(
    value_and_grad: ValueAndGrad,
    x0: np.ndarray,
    *,
    history: int = 10,
    max_iter: int = 2000,
    gtol: float = 1e-10,
    ftol: float = 1e-13,
    max_line_search: int = 40,
    block_rows: int = 256,
    threads: int | None = None,
) -> BatchedMinimum:
    """Minimise B independent problems from starts ``x0`` (B, P) with L-BFGS.

    Rows stop independently when ``max|g| <= gtol``, when one iteration lowers the
    objective by less than ``ftol * |f|`` (relative), when the line search cannot
    decrease the objective any further (the minimum is resolved to round-off), or at
    ``max_iter``. Stopped rows are no longer evaluated.

    The objective is called on blocks of at most ``block_rows`` rows (temporaries
    stay in cache) spread over ``threads`` threads (numpy releases the GIL inside
    array operations); default: the CPUs this process may use. Blocks are fixed by
    row position, so the result does not depend on the thread count.
    """
    with _BlockEvaluator(value_and_grad, block_rows, threads) as evaluate:
        return _minimize(evaluate, x0, history, max_iter, gtol, ftol, max_line_search)


def multistart(
    value_and_grad: ValueAndGrad,
    starts: np.ndarray,
    *,
    polish: int = 32,
    explore_iter: int = 100,
    explore_ftol: float = 1e-5,
    polish_iter: int = 5000,
    threads: int | None = None,
) -> BatchedMinimum:
    """Global search from many starts: explore all, then polish the best few.

    Every start runs to a loose tolerance (``explore_ftol``, at most
    ``explore_iter`` iterations), which is enough to tell the basins apart; the
    ``polish`` lowest distinct end points then run to round-off (at most
    ``polish_iter`` iterations). Starts that crawl
    towards infinity (a constant drifting to 0 or a coefficient to inf) stop at
    ``explore_iter`` instead of holding the whole batch for thousands of
    iterations. Returns the polished rows, lowest objective first.
    """
    explored = minimize_lbfgs(value_and_grad, starts, ftol=explore_ftol, max_iter=explore_iter, threads=threads)
    candidates = distinct_lowest(explored, polish)
    if len(candidates) == 0:
        return explored
    polished = minimize_lbfgs(value_and_grad, candidates, ftol=1e-14, gtol=1e-12, max_iter=polish_iter, threads=threads)
    order = np.argsort(np.where(np.isfinite(polished.value), polished.value, np.inf), kind="stable")
    return BatchedMinimum(
        x=polished.x[order],
        value=polished.value[order],
        grad_max=polished.grad_max[order],
        iterations=polished.iterations[order],
        status=polished.status[order],
        evaluations=explored.evaluations + polished.evaluations,
    )


def distinct_lowest(minima: BatchedMinimum, count: int, decimals: int = 4) -> np.ndarray:
    """Up to ``count`` lowest finite end points, merging those equal to ``decimals`` places."""
    finite = np.flatnonzero(np.isfinite(minima.value))
    order = finite[np.argsort(minima.value[finite], kind="stable")]
    chosen: list[np.ndarray] = []
    seen: set[tuple] = set()
    for row in order:
        key = tuple(np.round(minima.x[row], decimals))
        if key not in seen:
            seen.add(key)
            chosen.append(minima.x[row])
            if len(chosen) == count:
                break
    return np.array(chosen).reshape(len(chosen), minima.x.shape[1])


def best_per_problem(result: BatchedMinimum, n_problems: int) -> tuple[np.ndarray, np.ndarray]:
    """For rows laid out as ``n_problems`` blocks of equal size (several starts per
    problem), the lowest finite end point of each problem: (x (n_problems, P),
    found (n_problems,)). Used by bootstraps, where each resample is a problem that
    starts near the full-data optimum, so a row stopped at the iteration limit is
    still a usable estimate."""
    per = len(result.value) // n_problems
    value = np.where(np.isfinite(result.value), result.value, np.inf).reshape(n_problems, per)
    best = np.argmin(value, axis=1)
    x = result.x.reshape(n_problems, per, -1)[np.arange(n_problems), best]
    return x, np.isfinite(value[np.arange(n_problems), best])


class _BlockEvaluator:
    """Evaluate an objective block by block, on a small thread pool."""

    def __init__(self, value_and_grad: ValueAndGrad, block_rows: int, threads: int | None):
        self.value_and_grad = value_and_grad
        self.block_rows = max(1, int(block_rows))
        self.threads = max(1, threads if threads is not None else available_cpus())
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def __enter__(self) -> ValueAndGrad:
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __call__(self, x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(rows)
        if n <= self.block_rows:
            return self.value_and_grad(x, rows)
        starts = range(0, n, self.block_rows)
        blocks = [slice(i, i + self.block_rows) for i in starts]
        if self.pool is None:
            parts = [self.value_and_grad(x[b], rows[b]) for b in blocks]
        else:
            parts = list(self.pool.map(lambda b: self.value_and_grad(x[b], rows[b]), blocks))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _minimize(value_and_grad, x0, history, max_iter, gtol, ftol, max_line_search) -> BatchedMinimum:
    x = np.array(x0, dtype=np.float64, copy=True)
    if x.ndim != 2:
        raise ValueError(f"x0 has shape {x.shape}: expected (starts, parameters)")
    n_rows, n_params = x.shape
    all_rows = np.arange(n_rows)

    f, g = value_and_grad(x, all_rows)
    evaluations = n_rows
    status = np.zeros(n_rows, dtype=np.int8)
    iterations = np.zeros(n_rows, dtype=np.int64)
    status[~(np.isfinite(f) & np.all(np.isfinite(g), axis=1))] = Status.NOT_FINITE

    s_hist = np.zeros((n_rows, history, n_params))
    y_hist = np.zeros((n_rows, history, n_params))
    rho_hist = np.zeros((n_rows, history))  # 0 marks an empty or rejected slot
    # Initial inverse-Hessian scale: the first step has unit length.
    gamma = 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-300)
    gamma[~np.isfinite(gamma)] = 1.0

    for iteration in range(max_iter):
        active = np.flatnonzero(status == Status.RUNNING)
        if active.size == 0:
            break
        small_gradient = np.max(np.abs(g[active]), axis=1) <= gtol
        status[active[small_gradient]] = Status.GRADIENT
        active = active[~small_gradient]
        if active.size == 0:
            break

        slots = [(iteration - 1 - j) % history for j in range(min(iteration, history))]
        direction = -_two_loop(g[active], s_hist[active], y_hist[active], rho_hist[active], gamma[active], slots)
        slope = np.einsum("bp,bp->b", g[active], direction)
        bad = ~(slope < 0) | ~np.all(np.isfinite(direction), axis=1)
        if bad.any():  # lost positive definiteness: restart from steepest descent
            rows = active[bad]
            rho_hist[rows] = 0.0
            gamma[rows] = 1.0 / np.maximum(np.linalg.norm(g[rows], axis=1), 1e-300)
            direction[bad] = -gamma[rows, None] * g[rows]
            slope[bad] = np.einsum("bp,bp->b", g[rows], direction[bad])

        step_found, x_new, f_new, g_new, n_eval = _backtracking_line_search(
            value_and_grad, active, x[active], f[active], direction, slope, max_line_search
        )
        evaluations += n_eval
        iterations[active] += 1
        status[active[~step_found]] = Status.LINE_SEARCH

        moved = active[step_found]
        s = x_new[step_found] - x[moved]
        y = g_new[step_found] - g[moved]
        sy = np.einsum("bp,bp->b", s, y)
        yy = np.einsum("bp,bp->b", y, y)
        curvature_ok = (sy > 1e-12 * np.sqrt(np.einsum("bp,bp->b", s, s) * yy)) & (yy > 0)
        slot = iteration % history
        s_hist[moved, slot] = s
        y_hist[moved, slot] = y
        rho_hist[moved, slot] = np.where(curvature_ok, 1.0 / np.where(curvature_ok, sy, 1.0), 0.0)
        gamma[moved] = np.where(curvature_ok, sy / np.where(yy > 0, yy, 1.0), gamma[moved])

        decrease = f[moved] - f_new[step_found]
        x[moved], f[moved], g[moved] = x_new[step_found], f_new[step_found], g_new[step_found]
        stalled = decrease <= ftol * np.maximum(np.abs(f[moved]), 1e-300)
        status[moved[stalled]] = Status.STALLED

    status[status == Status.RUNNING] = Status.MAX_ITER
    grad_max = np.max(np.abs(g), axis=1)
    return BatchedMinimum(
        x=x, value=f, grad_max=grad_max, iterations=iterations, status=status, evaluations=evaluations
    )


def _two_loop(
    grad: np.ndarray,
    s_hist: np.ndarray,
    y_hist: np.ndarray,
    rho_hist: np.ndarray,
    gamma: np.ndarray,
    slots_newest_first: list[int],
) -> np.ndarray:
    """Apply the L-BFGS inverse-Hessian estimate to ``grad``, row by row."""
    q = grad.copy()
    alphas = []
    for slot in slots_newest_first:
        alpha = rho_hist[:, slot] * np.einsum("bp,bp->b", s_hist[:, slot], q)
        q -= alpha[:, None] * y_hist[:, slot]
        alphas.append(alpha)
    r = gamma[:, None] * q
    for slot, alpha in zip(reversed(slots_newest_first), reversed(alphas)):
        beta = rho_hist[:, slot] * np.einsum("bp,bp->b", y_hist[:, slot], r)
        r += s_hist[:, slot] * (alpha - beta)[:, None]
    return r


def _backtracking_line_search(
    value_and_grad: ValueAndGrad,
    rows: np.ndarray,
    x: np.ndarray,
    f: np.ndarray,
    direction: np.ndarray,
    slope: np.ndarray,
    max_trials: int,
    armijo: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Find per-row steps satisfying the Armijo condition, starting from step 1.

    Returns (found, x_new, f_new, g_new, evaluations); rows not ``found`` keep x.
    """
    n = len(rows)
    step = np.ones(n)
    found = np.zeros(n, dtype=bool)
    x_new = x.copy()
    f_new = f.copy()
    g_new = np.zeros_like(x)
    pending = np.arange(n)
    evaluations = 0
    for _ in range(max_trials):
        trial_x = x[pending] + step[pending, None] * direction[pending]
        trial_f, trial_g = value_and_grad(trial_x, rows[pending])
        evaluations += len(pending)
        finite = np.isfinite(trial_f) & np.all(np.isfinite(trial_g), axis=1)
        ok = finite & (trial_f <= f[pending] + armijo * step[pending] * slope[pending])
        accepted = pending[ok]
        x_new[accepted], f_new[accepted], g_new[accepted] = trial_x[ok], trial_f[ok], trial_g[ok]
        found[accepted] = True

        rejected = ~ok
        t = step[pending[rejected]]
        excess = trial_f[rejected] - f[pending[rejected]] - slope[pending[rejected]] * t
        with np.errstate(divide="ignore", invalid="ignore"):
            t_quadratic = -slope[pending[rejected]] * t * t / (2.0 * excess)
        t_next = np.where(np.isfinite(t_quadratic), np.clip(t_quadratic, 0.1 * t, 0.5 * t), 0.1 * t)
        step[pending[rejected]] = t_next
        pending = pending[rejected]
        if pending.size == 0:
            break
        # A step this small cannot change x in float64: the minimum is resolved.
        tiny = step[pending] * np.max(np.abs(direction[pending]), axis=1) <= 1e-16 * (
            1.0 + np.max(np.abs(x[pending]), axis=1)
        )
        pending = pending[~tiny]
        if pending.size == 0:
            break
    return found, x_new, f_new, g_new, evaluations
