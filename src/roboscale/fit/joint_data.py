"""A joint law in model size and data per source:
``L(N, D) = E + A N^-alpha + B (sum_s w_s D_s)^-beta``, ``w_reference = 1``.

``w_s`` is what one unit (episode) of source ``s`` is worth in reference units, at
every model size and amount (a constant exchange rate, unlike the per-level worth of
:mod:`.effective_data`). Fitted like the parametric law (:mod:`.parametric`): in log
space with log-sum-exp terms, a Huber loss (delta 1e-3) on log loss summed over runs,
batched L-BFGS from a grid of starts, bootstrap over runs refitted from the best
minima. ``w_s = exp(log w_s)`` keeps the weights positive (0 is the limit).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts
from roboscale.fit.laws import huber
from roboscale.fit.optimize import Status, best_per_problem, distinct_lowest, minimize_lbfgs, multistart
from roboscale.fit.result import FitResult, bootstrap_fields

JOINT_NAMES = ("E", "A", "alpha", "B", "beta")

EXPONENT_STARTS = (0.1, 0.4, 1.0)
SHARE_STARTS = (0.1, 0.5)
"""Starting sizes of the N and D terms, as fractions of the lowest loss."""
FLOOR_STARTS = (0.2, 0.6, 0.9)
WEIGHT_STARTS = (0.05, 0.3, 1.0, 3.0)


@dataclass(frozen=True)
class JointDataFit(FitResult):
    """A fitted ``L = E + A N^-alpha + B (sum_s w_s D_s)^-beta`` (N parameters, D_s
    episodes of source s). ``samples``: (resamples, 5 + sources) bootstrap estimates
    of (E, A, alpha, B, beta, w per source)."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    weights: dict[str, float]
    """Source -> worth of one of its units in reference units (reference: 1)."""
    reference: str
    objective: float
    """Sum over runs of Huber(log predicted - log observed loss) at the optimum."""
    residual_rms: float
    """Root-mean-square of log(predicted/observed) over runs."""
    n_runs: int
    huber_delta: float = 1e-3
    starts: int = 0

    method = "joint-data"

    @property
    def law(self) -> str:
        total = " + ".join(f"w_{name} D_{name}" for name in self.weights)
        return f"L = E + A N^-alpha + B ({total})^-beta, w_{self.reference} = 1"

    def predict(self, N, D_by_source) -> np.ndarray:
        """Predicted loss for N (runs,) parameters and D_by_source (runs, sources)."""
        w = np.array(list(self.weights.values()))
        effective = np.atleast_2d(np.asarray(D_by_source, dtype=np.float64)) @ w
        return self.E + self.A * np.asarray(N, dtype=np.float64) ** -self.alpha + self.B * effective**-self.beta

    def to_dict(self) -> dict:
        return self._summary(
            {**{name: getattr(self, name) for name in JOINT_NAMES}, "w": self.weights},
            {
                "objective": self.objective,
                "residual_rms": self.residual_rms,
                "n_runs": self.n_runs,
                "huber_delta": self.huber_delta,
                "starts": self.starts,
            },
            {"reference": self.reference},
        )


def fit_joint_data_law(
    N,
    D_by_source,
    loss,
    source_names: Sequence[str],
    reference: str,
    *,
    huber_delta: float = 1e-3,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
) -> JointDataFit:
    """Fit the joint law to runs with N (runs,) parameters, D_by_source (runs,
    sources) amounts per source and their ``loss`` (runs,); ``reference`` names the
    source whose weight is 1."""
    check_bootstrap_options(bootstrap, ci_level, seed)
    names = [str(name) for name in source_names]
    n, amounts, y = _validated(N, D_by_source, loss, names, reference)
    order = [names.index(reference)] + [i for i, name in enumerate(names) if name != reference]
    amounts = amounts[:, order]  # the reference first: its log weight is the fixed 0
    objective = JointDataObjective(np.log(n), amounts, np.log(y), huber_delta)
    starts = joint_starts(n, amounts, y)
    minima = multistart(objective, starts, polish=16)
    if not minima.converged[0]:
        raise FitDidNotConvergeError(
            f"the joint data law did not converge from {len(starts)} starts "
            f"({Status(minima.status[0]).name.lower()}): check the runs for outliers"
        )
    best = _natural(minima.x[:1])[0]

    samples, ci = None, {}
    if bootstrap:
        counts = resample_counts(len(y), bootstrap, seed)
        seeds = distinct_lowest(minima, 2)
        resampled = JointDataObjective(
            np.log(n), amounts, np.log(y), huber_delta, weights=np.repeat(counts, len(seeds), axis=0)
        )
        result = minimize_lbfgs(resampled, np.tile(seeds, (bootstrap, 1)), ftol=1e-12, gtol=1e-11, max_iter=1000)
        chosen, found = best_per_problem(result, bootstrap)
        samples = _natural(chosen[found])
        samples = samples[np.all(np.isfinite(samples), axis=1)]
        labels = (*JOINT_NAMES, *(f"w_{names[i]}" for i in order))
        ci = {label: percentile_interval(samples[:, j], ci_level) for j, label in enumerate(labels)}
        ci.pop(f"w_{reference}")

    weights_in_order = dict(zip((names[i] for i in order), (float(v) for v in best[5:])))
    fitted = _log_prediction(minima.x[:1], np.log(n), amounts)[0]
    return JointDataFit(
        **dict(zip(JOINT_NAMES, (float(v) for v in best[:5]))),
        weights={name: weights_in_order[name] for name in names},
        reference=reference,
        objective=float(minima.value[0]),
        residual_rms=float(np.sqrt(np.mean((fitted - np.log(y)) ** 2))),
        n_runs=len(y),
        huber_delta=huber_delta,
        starts=len(starts),
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level),
    )


def _validated(N, D_by_source, loss, names: list[str], reference: str):
    n = np.asarray(N, dtype=np.float64).ravel()
    amounts = np.asarray(D_by_source, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64).ravel()
    if reference not in names:
        raise BadInputError(f"reference {reference!r} is not one of the sources ({', '.join(names)})")
    if amounts.ndim != 2 or amounts.shape != (len(n), len(names)) or y.shape != n.shape:
        raise BadInputError(
            f"N has {n.size} runs, D_by_source shape {amounts.shape}, loss {y.size} runs: "
            f"give one row per run and one amount column per source ({len(names)})"
        )
    n_params = 4 + len(names)
    if len(y) < n_params + 2:
        raise BadInputError(
            f"{len(y)} runs are too few for the joint law's {n_params} parameters: it needs at least {n_params + 2}"
        )
    if not np.all(np.isfinite(n) & (n > 0) & np.isfinite(y) & (y > 0)):
        raise BadInputError("N and the loss must be finite and > 0 in every run")
    if not np.all(np.isfinite(amounts) & (amounts >= 0)) or not np.all(amounts.sum(axis=1) > 0):
        raise BadInputError("amounts must be finite and >= 0, with some data in every run")
    if np.unique(n).size < 2:
        raise BadInputError("every run has the same model size N: the joint law needs runs at several model sizes")
    return n, amounts, y


def joint_starts(n: np.ndarray, amounts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(starts, 5 + others) rows ``(log E, log A, alpha, log B, beta, log w...)`` from the
    data's range: each term starts at a fraction of the lowest loss at the median run."""
    y_min, log_n = float(np.min(y)), float(np.median(np.log(n)))
    rows = []
    for w in itertools.product(WEIGHT_STARTS, repeat=amounts.shape[1] - 1):
        log_d = float(np.median(np.log(amounts @ np.array([1.0, *w]))))
        for floor, alpha, share_n, beta, share_d in itertools.product(
            FLOOR_STARTS, EXPONENT_STARTS, SHARE_STARTS, EXPONENT_STARTS, SHARE_STARTS
        ):
            log_a = np.log(share_n * y_min) + alpha * log_n
            log_b = np.log(share_d * y_min) + beta * log_d
            rows.append((np.log(floor * y_min), log_a, alpha, log_b, beta, *np.log(w)))
    return np.array(rows)


def _terms(params: np.ndarray, log_n: np.ndarray, amounts: np.ndarray):
    """The three terms (b, runs) and the effective data's pieces for parameter rows."""
    log_w = np.column_stack([np.zeros(len(params)), params[:, 5:]])
    weighted = np.exp(log_w)[:, None, :] * amounts[None, :, :]  # (b, runs, sources)
    effective = weighted.sum(axis=2)
    log_effective = np.log(effective)
    term_e = np.exp(params[:, 0:1])
    term_n = np.exp(params[:, 1:2] - params[:, 2:3] * log_n)
    term_d = np.exp(params[:, 3:4] - params[:, 4:5] * log_effective)
    return term_e, term_n, term_d, log_effective, weighted / effective[:, :, None]


def _log_prediction(params: np.ndarray, log_n: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    term_e, term_n, term_d, _, _ = _terms(params, log_n, amounts)
    return np.log(term_e + term_n + term_d)


class JointDataObjective:
    """Sum of Huber losses of the joint law's log prediction against ``log loss``.

    Parameter rows ``(log E, log A, alpha, log B, beta, log w_2..log w_S)``;
    ``amounts`` (runs, sources) with the reference source first. ``weights``
    (rows, runs): per-problem run weights (bootstrap counts), None for ones."""

    def __init__(self, log_n, amounts, log_loss, delta: float, weights=None):
        self.log_n = np.asarray(log_n, dtype=np.float64)
        self.amounts = np.asarray(amounts, dtype=np.float64)
        self.log_loss = np.asarray(log_loss, dtype=np.float64)
        self.delta = float(delta)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)

    def __call__(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # runaway trials: rejected
            return self._value_and_grad(params, rows)

    def _value_and_grad(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        term_e, term_n, term_d, log_effective, shares = _terms(params, self.log_n, self.amounts)
        total = term_e + term_n + term_d
        loss, slope = huber(np.log(total) - self.log_loss, self.delta)
        if self.weights is not None:
            loss, slope = loss * self.weights[rows], slope * self.weights[rows]
        scaled = slope / total
        grad = np.empty_like(params)
        grad[:, 0] = (scaled * term_e).sum(axis=1)
        grad[:, 1] = (scaled * term_n).sum(axis=1)
        grad[:, 2] = -(scaled * term_n) @ self.log_n
        grad[:, 3] = (scaled * term_d).sum(axis=1)
        grad[:, 4] = -(scaled * term_d * log_effective).sum(axis=1)
        # d log(sum_s w_s D_s) / d log w_j = the share of source j in the effective data
        grad[:, 5:] = -params[:, 4:5] * np.einsum("br,brs->bs", scaled * term_d, shares[:, :, 1:])
        return loss.sum(axis=1), grad


def _natural(x: np.ndarray) -> np.ndarray:
    """Log-form rows -> ``(E, A, alpha, B, beta, 1, w_2..w_S)`` (reference weight 1 first)."""
    with np.errstate(over="ignore"):
        return np.column_stack(
            [np.exp(x[:, 0:2]), x[:, 2:3], np.exp(x[:, 3:4]), x[:, 4:5], np.ones(len(x)), np.exp(x[:, 5:])]
        )
