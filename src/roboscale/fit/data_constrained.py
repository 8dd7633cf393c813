"""The data-constrained scaling law of Muennighoff et al. (2023): what repeated data is worth.

With ``U_D`` unique tokens seen ``D / U_D`` times, ``R_D = D / U_D - 1`` repetitions beyond
the first epoch are worth ``U_D R*_D (1 - exp(-R_D / R*_D))`` new tokens: the first few
repetitions almost as much as fresh data, later ones less and less, never more than
``R*_D`` epochs' worth. Parameters beyond the compute-optimal size for ``U_D``
(``U_N = min(N_opt(C(U_D)), N)``, ``R_N = N / U_N - 1``) decay the same way with
``R*_N``. The loss is a Chinchilla law in the effective amounts::

    D' = U_D + U_D R*_D (1 - exp(-R_D / R*_D)),  N' = U_N + U_N R*_N (1 - exp(-R_N / R*_N)),
    L = E + A / N'^alpha + B / D'^beta.

Their recipe has two stages: stage 1 fits ``E, A, B, alpha, beta`` on runs without
repetition (:func:`roboscale.fit.fit_parametric`); stage 2, here, holds them fixed and
fits ``R*_D`` and ``R*_N`` by minimising the summed Huber loss (delta 1e-3) of
log-prediction minus log-loss, with L-BFGS from a grid of starts. The objective has
several local minima (on the paper's 182 runs: the published 15.4 / 5.3 and lower ones
near 47 / 2.3 and beyond), so every distinct one found is reported, not only the lowest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts
from roboscale.fit.laws import huber, optimal_allocation, parametric_loss
from roboscale.fit.optimize import best_per_problem, minimize_lbfgs
from roboscale.fit.result import FitResult, bootstrap_fields

PARAMETER_NAMES = ("R_D_star", "R_N_star")

MUENNIGHOFF_C4_STAGE1 = {
    "E": float(np.exp(0.6254804)),
    "A": float(np.exp(6.255414)),
    "B": float(np.exp(7.3049974)),
    "alpha": 0.3526596,
    "beta": 0.3526596,
}
"""Muennighoff et al.'s stage-1 Chinchilla fit on C4 (their ``a, b, e`` are ``log A, log B,
log E``; E = 1.8691, A = 520.82, B = 1487.72 rounded, which moves the objective in the
fifth digit, so the unrounded values are kept)."""

START_GRID = np.geomspace(0.3, 300.0, 9)
"""Starting values of ``R*_D`` and of ``R*_N`` (every pair is a start), in epochs."""

RUNAWAY_FACTOR = 1e3
"""An end point whose ``R*`` exceeds this many times the largest observed ``R`` has
run off to infinity (repeats worth as much as new data): not an optimum."""


@dataclass(frozen=True)
class Stage1Law:
    """The fixed Chinchilla law ``L = E + A / N^alpha + B / D^beta`` of stage 1
    (N in parameters, D in tokens or samples, L in the loss's units)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        for name in ("A", "B", "alpha", "beta"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise BadInputError(f"stage-1 {name}={value}: must be a finite number > 0")
        if not (np.isfinite(self.E) and self.E >= 0):
            raise BadInputError(f"stage-1 E={self.E}: must be a finite number >= 0")

    def optimal_size_for_data(self, unique) -> np.ndarray:
        """``N_opt(C(U))``: the compute-optimal parameter count at the budget whose
        optimal data is ``unique`` tokens (C = 6 N D, as in the paper)."""
        unique = np.asarray(unique, dtype=np.float64)
        total = self.alpha + self.beta
        scale = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / total)  # G of N_opt = G (C/6)^a
        compute = 6.0 * (scale * unique) ** (total / self.alpha)  # C at which D_opt(C) = unique
        n_opt, _ = optimal_allocation(compute, self.A, self.B, self.alpha, self.beta)
        return n_opt

    def to_dict(self) -> dict:
        return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}


@dataclass(frozen=True)
class RepetitionData:
    """The runs in the law's terms: unique amounts and repetitions beyond the first."""

    unique_data: np.ndarray
    """U_D, unique tokens (or samples)."""
    repeats_data: np.ndarray
    """R_D = D / U_D - 1."""
    unique_params: np.ndarray
    """U_N = min(N_opt(C(U_D)), N), parameters."""
    repeats_params: np.ndarray
    """R_N = N / U_N - 1."""

    @classmethod
    def build(cls, N, D, unique, stage1: Stage1Law) -> RepetitionData:
        """From parameters ``N``, tokens ``D`` (repeats included) and ``unique`` tokens."""
        N, D, unique = (np.asarray(v, dtype=np.float64) for v in (N, D, unique))
        unique_params = np.minimum(stage1.optimal_size_for_data(unique), N)
        return cls(unique, D / unique - 1.0, unique_params, N / unique_params - 1.0)

    def predict(self, stage1: Stage1Law, R_D_star: float, R_N_star: float) -> np.ndarray:
        """The law's loss for these runs."""
        n_eff = effective_amount(self.unique_params, self.repeats_params, R_N_star)
        d_eff = effective_amount(self.unique_data, self.repeats_data, R_D_star)
        return stage1.E + stage1.A * n_eff**-stage1.alpha + stage1.B * d_eff**-stage1.beta


def effective_amount(unique, repeats, r_star):
    """``U + U R* (1 - exp(-R / R*))``: what ``unique`` seen ``1 + repeats`` times is worth
    (in the units of ``unique``)."""
    return unique * (1.0 + r_star * -np.expm1(-np.asarray(repeats) / r_star))


def data_constrained_loss(N, D, unique, stage1: Stage1Law, R_D_star: float, R_N_star: float):
    """The law's loss for ``N`` parameters trained on ``D`` tokens of which ``unique`` are unique."""
    return RepetitionData.build(N, D, unique, stage1).predict(stage1, R_D_star, R_N_star)


class DataConstrainedObjective:
    """Sum of Huber(log L - log loss) over runs; parameter rows ``(log R*_D, log R*_N)``.

    Batched like :mod:`roboscale.fit.optimize` expects; ``weights`` (rows, runs) are
    per-row run weights (a bootstrap resample is a row of counts). ``fixed`` masks
    parameters held at their start."""

    def __init__(self, data: RepetitionData, log_loss, stage1: Stage1Law, delta: float, weights=None, fixed=None):
        self.data, self.log_loss, self.stage1, self.delta = data, np.asarray(log_loss), stage1, float(delta)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.free = None if fixed is None else ~np.asarray(fixed, dtype=bool)

    def __call__(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._value_and_grad(params, rows)

    def _term(self, unique, repeats, log_r_star, coefficient, exponent):
        """The term ``coefficient / X'^exponent`` and its derivative in ``log R*``."""
        r_star = np.exp(log_r_star)
        decay = np.exp(-repeats / r_star)
        effective = unique * (1.0 + r_star * (1.0 - decay))
        d_effective = unique * r_star * ((1.0 - decay) - repeats / r_star * decay)  # d X' / d log R*
        term = coefficient * effective**-exponent
        return term, -exponent * term / effective * d_effective

    def _value_and_grad(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data, law = self.data, self.stage1
        term_d, d_term_d = self._term(data.unique_data, data.repeats_data, params[:, 0:1], law.B, law.beta)
        term_n, d_term_n = self._term(data.unique_params, data.repeats_params, params[:, 1:2], law.A, law.alpha)
        prediction = law.E + term_n + term_d
        loss, slope = huber(np.log(prediction) - self.log_loss, self.delta)
        if self.weights is not None:
            loss, slope = loss * self.weights[rows], slope * self.weights[rows]
        scaled = slope / prediction
        grad = np.stack([(scaled * d_term_d).sum(axis=1), (scaled * d_term_n).sum(axis=1)], axis=1)
        if self.free is not None:
            grad *= self.free
        return loss.sum(axis=1), grad


@dataclass(frozen=True)
class DataConstrainedOptimum:
    """One local minimum of the stage-2 objective."""

    R_D_star: float
    R_N_star: float
    objective: float
    r_squared: float

    def to_dict(self) -> dict:
        return {
            "R_D_star": self.R_D_star,
            "R_N_star": self.R_N_star,
            "objective": self.objective,
            "r_squared": self.r_squared,
        }


@dataclass(frozen=True)
class DataConstrainedFit(FitResult):
    """Fitted ``R*_D`` and ``R*_N``, the lowest optimum found. ``R*_D`` is in repetitions:
    the ``R``-th repetition of the data is worth ``exp(-R / R*_D)`` of new data (likewise
    ``R*_N`` for excess parameters, in multiples of ``U_N``).

    ``optima``: every distinct local minimum found, lowest objective first (the first is
    this fit). ``samples``: (resamples, 2) bootstrap estimates of (R*_D, R*_N).
    ``R_N_star`` is NaN when no run has more parameters than ``U_N`` (then it is not
    identifiable and is left out of the fit)."""

    R_D_star: float
    R_N_star: float
    objective: float
    r_squared: float
    """1 - SS_res / SS_tot of the loss (natural units), as the paper reports it."""
    chinchilla_r_squared: float
    """R^2 of the stage-1 law alone in N and D (repeated tokens counted as new)."""
    residual_rms: float
    """Root-mean-square of log(predicted / observed) over runs."""
    n_runs: int
    stage1: Stage1Law
    optima: tuple[DataConstrainedOptimum, ...] = field(default=())
    runaway_starts: int = 0
    unbounded_above: tuple[str, ...] = ()
    """Parameters whose interval has no upper end: enough resamples ran off to infinity
    (more repetitions, or more excess parameters, would be needed to bound them)."""
    """Starts whose R* ran off to infinity (no diminishing returns): not optima."""
    huber_delta: float = 1e-3

    method = "data-constrained"

    @property
    def law(self) -> str:
        return (
            "L = E + A / N'^alpha + B / D'^beta, D' = U_D + U_D R_D_star (1 - exp(-R_D / R_D_star)), "
            "N' = U_N + U_N R_N_star (1 - exp(-R_N / R_N_star))"
        )

    def predict(self, N, D, unique):
        """The loss of ``N`` parameters trained on ``D`` tokens with ``unique`` unique ones."""
        r_n = self.R_N_star if np.isfinite(self.R_N_star) else 1.0  # no excess parameters: R_N = 0
        return data_constrained_loss(N, D, unique, self.stage1, self.R_D_star, r_n)

    def to_dict(self) -> dict:
        return self._summary(
            {"R_D_star": self.R_D_star, "R_N_star": self.R_N_star},
            {
                "objective": self.objective,
                "r_squared": self.r_squared,
                "chinchilla_r_squared": self.chinchilla_r_squared,
                "residual_rms": self.residual_rms,
                "n_runs": self.n_runs,
                "stage1": self.stage1.to_dict(),
                "huber_delta": self.huber_delta,
                "optima": [optimum.to_dict() for optimum in self.optima],
                "runaway_starts": self.runaway_starts,
                "unbounded_above": list(self.unbounded_above),
            },
        )


def fit_data_constrained(
    N,
    D,
    U_D,
    loss,
    *,
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
    huber_delta: float = 1e-3,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
) -> DataConstrainedFit:
    """Stage 2 of Muennighoff et al. (2023): fit ``R*_D`` and ``R*_N`` with the stage-1
    Chinchilla law ``E + A/N^alpha + B/D^beta`` held fixed.

    ``N``: parameters; ``D``: training tokens (or samples) including repeats; ``U_D``:
    unique tokens (same units as D); ``loss``: final validation loss per run.
    ``MUENNIGHOFF_C4_STAGE1`` holds the paper's stage-1 values. Bootstrap resamples runs
    and refits from every optimum found.
    """
    check_bootstrap_options(bootstrap, ci_level, seed)
    stage1 = Stage1Law(E, A, B, alpha, beta)
    N, D, unique, loss = _validate(N, D, U_D, loss)
    data, log_loss = RepetitionData.build(N, D, unique, stage1), np.log(loss)
    fixed = None if np.any(data.repeats_params > 0) else np.array([False, True])
    objective = DataConstrainedObjective(data, log_loss, stage1, huber_delta, fixed=fixed)
    starts = np.log([(r_d, r_n) for r_d in START_GRID for r_n in START_GRID])
    ends = minimize_lbfgs(objective, starts, ftol=1e-15, gtol=1e-13, max_iter=3000)
    optima, runaway = _distinct_optima(ends, data, fixed)
    if len(optima) == 0:
        raise FitDidNotConvergeError(
            f"the data-constrained fit ran off to R* = infinity from all {len(starts)} starts: "
            "repeated data looks as good as new in these runs (add runs with more repetitions)"
        )
    points = np.log([[o[0], o[1] if fixed is None else 1.0] for o in optima])
    samples, ci = _bootstrap(data, log_loss, stage1, huber_delta, points, fixed, bootstrap, seed, ci_level)
    listed = tuple(_optimum(data, loss, stage1, point, value, fixed) for point, value in zip(points, optima[:, 2]))
    best = listed[0]
    chinchilla = parametric_loss(N, D, **stage1.to_dict())  # repeated tokens counted as new
    prediction = data.predict(stage1, *np.exp(points[0]))
    return DataConstrainedFit(
        R_D_star=best.R_D_star,
        R_N_star=best.R_N_star,
        objective=best.objective,
        r_squared=best.r_squared,
        chinchilla_r_squared=_r_squared(chinchilla, loss),
        residual_rms=float(np.sqrt(np.mean((np.log(prediction) - log_loss) ** 2))),
        n_runs=len(loss),
        stage1=stage1,
        optima=listed,
        runaway_starts=runaway,
        unbounded_above=tuple(
            name for name, limit in zip(PARAMETER_NAMES, _runaway_limits(data)) if ci.get(name, (0, 0))[1] > limit
        ),
        huber_delta=huber_delta,
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level),
    )


def _validate(N, D, unique, loss) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in (N, D, unique, loss)]
    names = ("N", "D (tokens)", "U_D (unique tokens)", "loss")
    if len({a.size for a in arrays}) != 1:
        sizes = ", ".join(f"{name} {a.size}" for name, a in zip(names, arrays))
        raise BadInputError(f"N, D, U_D and loss need one value per run; got {sizes}")
    for name, values in zip(names, arrays):
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            raise BadInputError(f"{name} has {int(bad.sum())} non-finite, zero or negative values: all must be > 0")
    N, D, unique, loss = arrays
    fewer = D < unique * (1 - 1e-9)
    if fewer.any():
        raise BadInputError(
            f"{int(fewer.sum())} of {D.size} runs saw fewer tokens than their unique tokens (D < U_D): "
            "D counts every token trained on, repeats included"
        )
    epochs = np.unique(np.round(D / unique, 6))
    if epochs.size < 3:
        raise BadInputError(
            f"the data-constrained law needs at least 3 distinct numbers of epochs (D / U_D), got {epochs.size}: "
            "add runs that repeat their data more (or less)"
        )
    return N, D, unique, loss


def _r_squared(prediction: np.ndarray, observed: np.ndarray) -> float:
    return float(1.0 - np.sum((observed - prediction) ** 2) / np.sum((observed - observed.mean()) ** 2))


def _optimum(data, loss, stage1, log_params, value, fixed) -> DataConstrainedOptimum:
    r_d, r_n = np.exp(log_params)
    return DataConstrainedOptimum(
        R_D_star=float(r_d),
        R_N_star=float("nan") if fixed is not None else float(r_n),
        objective=float(value),
        r_squared=_r_squared(data.predict(stage1, r_d, r_n), loss),
    )


def _runaway_limits(data: RepetitionData) -> np.ndarray:
    """(R*_D, R*_N) beyond which an estimate has run off to infinity."""
    return RUNAWAY_FACTOR * np.maximum([data.repeats_data.max(), data.repeats_params.max()], 1.0)


def _distinct_optima(ends, data: RepetitionData, fixed) -> tuple[np.ndarray, int]:
    """(k, 3) rows ``(R*_D, R*_N, objective)`` of the distinct finite end points, lowest
    first (points within 0.1% of each other merged), and how many starts ran away."""
    values = np.where(np.isfinite(ends.value), ends.value, np.inf)
    r_star = np.exp(ends.x)
    limit = _runaway_limits(data)
    if fixed is not None:
        limit[1] = np.inf
    runaway = ~np.all(r_star <= limit, axis=1) | ~np.isfinite(values)
    kept: list[np.ndarray] = []
    for row in np.argsort(values, kind="stable"):
        if runaway[row]:
            continue
        point = ends.x[row]
        if all(np.max(np.abs(point - other[:2])) > 1e-3 for other in kept):
            kept.append(np.array([*point, values[row]]))
    rows = np.array([[np.exp(k[0]), np.exp(k[1]), k[2]] for k in kept]).reshape(-1, 3)
    return rows, int(runaway.sum())


def _bootstrap(data, log_loss, stage1, delta, points, fixed, bootstrap, seed, ci_level):
    """Refit on resampled runs from every optimum found; (samples (K, 2), intervals)."""
    if not bootstrap:
        return None, {}
    counts = resample_counts(len(log_loss), bootstrap, seed)
    weights = np.repeat(counts, len(points), axis=0)
    objective = DataConstrainedObjective(data, log_loss, stage1, delta, weights=weights, fixed=fixed)
    ends = minimize_lbfgs(objective, np.tile(points, (bootstrap, 1)), ftol=1e-14, gtol=1e-12, max_iter=500)
    chosen, found = best_per_problem(ends, bootstrap)
    samples = np.exp(chosen[found])
    if fixed is not None:
        samples[:, 1] = np.nan
    ci = {name: percentile_interval(samples[:, i], ci_level) for i, name in enumerate(PARAMETER_NAMES)}
    return samples, ci
