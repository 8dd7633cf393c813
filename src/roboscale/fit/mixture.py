"""Data mixing laws (Ye et al. 2024): the loss on one validation source as a function
of the training mixture, and the mixture that minimises a target loss.

Per validation source ``i``: ``L_i(r) = c_i + k_i exp(t_i . r)``, with ``r`` the
training proportions of the sources (each in [0, 1], summing to 1). Fitted as Ye et
al. do: ``exp(log c) + exp(log k + r . t)`` against the observed loss (in the loss's
own units, not its log) by minimising the MEAN Huber loss (delta 0.05) with L-BFGS
from a grid of starts (all starts as one batched L-BFGS, :mod:`.optimize`).

Because the proportions sum to 1, ``t`` is identified only up to a common shift
(``t + s`` with ``log k - s`` predicts the same): the fit holds the last source's
``t`` at 0, which removes the shift. With two sources this is the three-parameter
``L(r) = c + k exp(t r)``, ``r`` the share of the first source.

The law is convex in ``r`` (an exponential of a linear function), so a positive
combination of laws has one minimum on the simplex: :func:`optimal_mixture` finds
it, and finds it again under every bootstrap resample for its interval.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts, to_jsonable
from roboscale.fit.laws import huber
from roboscale.fit.optimize import Status, best_per_problem, minimize_lbfgs, multistart
from roboscale.fit.result import FitResult, bootstrap_fields

MIXTURE_HUBER_DELTA = 0.05
"""Ye et al.'s Huber threshold, in units of the loss."""

PROPORTION_TOLERANCE = 1e-6
"""How far a row's proportions may sum from 1."""

NEGLIGIBLE_SHARE = 1e-9
"""Optimal proportions below this are the boundary of the simplex: reported as 0."""

T_STARTS = (-20.0, -3.0, 0.0, 3.0)
"""Starting values of each free ``t`` (relative to the last source's 0)."""

FLOOR_STARTS = (0.5, 0.9, 0.98)
"""Starting values of ``c`` as fractions of the lowest observed loss."""


@dataclass(frozen=True)
class MixtureLawFit(FitResult):
    """A fitted ``L(r) = c + k exp(t . r)`` for the loss on one validation source.

    ``t`` has one entry per training source (the last one is 0 by convention: only
    differences of ``t`` are identified). ``samples``: (resamples, 2 + sources)
    bootstrap estimates of (c, k, t...); ``resample_ids`` says which bootstrap
    resample each row came from, so laws fitted to the same mixtures with the same
    seed can be paired in :func:`optimal_mixture`."""

    name: str
    """The validation source (or loss column) this law predicts."""
    source_names: tuple[str, ...]
    c: float
    k: float
    t: tuple[float, ...]
    objective: float
    """Mean over mixtures of Huber(predicted - observed loss) at the optimum."""
    residual_rms: float
    """Root-mean-square of (predicted - observed) loss, in the loss's units."""
    n_mixtures: int
    huber_delta: float = MIXTURE_HUBER_DELTA
    starts: int = 0
    seed: int = 0
    observed_range: tuple[tuple[float, float], ...] = ()
    """Per source, the lowest and highest proportion among the fitted mixtures."""
    resample_ids: np.ndarray | None = field(default=None, repr=False, compare=False)

    method = "mixture"

    @property
    def law(self) -> str:
        return f"{self.name} = c + k exp(t . r), r = proportions of ({', '.join(self.source_names)})"

    def predict(self, proportions) -> np.ndarray:
        """Predicted loss for proportions (sources,) or (mixtures, sources)."""
        r = _as_rows(proportions, len(self.source_names))
        return mixture_loss(r, self.c, self.k, np.asarray(self.t))

    def predict_samples(self, proportions) -> np.ndarray | None:
        """(resamples, mixtures) bootstrap predictions, or None without samples."""
        if self.samples is None or len(self.samples) == 0:
            return None
        r = _as_rows(proportions, len(self.source_names))
        c, k, t = self.samples[:, 0:1], self.samples[:, 1:2], self.samples[:, 2:]
        with np.errstate(over="ignore"):
            return c + k * np.exp(t @ r.T)

    def to_dict(self) -> dict:
        return self._summary(
            {"c": self.c, "k": self.k, "t": dict(zip(self.source_names, self.t))},
            {
                "objective": self.objective,
                "residual_rms": self.residual_rms,
                "n_mixtures": self.n_mixtures,
                "huber_delta": self.huber_delta,
                "starts": self.starts,
            },
            {"validation": self.name, "sources": list(self.source_names), "t_convention": "last source's t = 0"},
        )


def mixture_loss(proportions: np.ndarray, c, k, t: np.ndarray) -> np.ndarray:
    """``c + k exp(proportions @ t)``: proportions (mixtures, sources), t (sources,)."""
    with np.errstate(over="ignore"):
        return c + k * np.exp(np.asarray(proportions, dtype=np.float64) @ np.asarray(t, dtype=np.float64))


def check_proportions(
    proportions, names: Sequence[str] | None = None, row_names: Sequence[str] | None = None
) -> np.ndarray:
    """(mixtures, sources) float array of proportions, or a one-line BadInputError
    naming the first row outside [0, 1] or not summing to 1 (as ``row_names[i]``,
    default ``"row i"`` counting from 0)."""
    r = np.asarray(proportions, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise BadInputError(f"proportions have shape {r.shape}: give one column per training source (at least 2)")
    label = ", ".join(names) if names else "the proportions"
    bad = ~np.all(np.isfinite(r) & (r >= 0.0) & (r <= 1.0), axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadInputError(
            f"{_row_name(row, row_names)} has proportions {_listing(r[row])} of ({label}) outside [0, 1]: each share must be in [0, 1]"
        )
    off = np.abs(r.sum(axis=1) - 1.0) > PROPORTION_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise BadInputError(
            f"{_row_name(row, row_names)} has proportions {_listing(r[row])} of ({label}) summing to {r[row].sum():.6g}, not 1: "
            "give every training source's share"
        )
    return r


def fit_mixture_law(
    proportions,
    loss,
    source_names: Sequence[str],
    *,
    name: str = "loss",
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    huber_delta: float = MIXTURE_HUBER_DELTA,
) -> MixtureLawFit:
    """Fit ``L(r) = c + k exp(t . r)`` to losses (mixtures,) observed after training
    on proportions (mixtures, sources); ``name`` is the validation source.

    ``bootstrap`` resamples of the mixtures (with replacement, seeded by ``seed``)
    give the ``ci_level`` percentile intervals; each refit starts from the best two
    distinct minima of the full fit."""
    check_bootstrap_options(bootstrap, ci_level, seed)
    names = tuple(str(n) for n in source_names)
    r = check_proportions(proportions, names)
    y = np.asarray(loss, dtype=np.float64).ravel()
    _check_design(r, y, names, name, huber_delta)

    design = r[:, :-1]  # the last source's t is held at 0
    objective = MixtureObjective(design, y, huber_delta)
    starts = mixture_starts(design, y)
    minima = multistart(objective, starts, polish=8, explore_iter=200)
    if not minima.converged[0]:
        raise FitDidNotConvergeError(
            f"the mixture law for {name} did not converge from {len(starts)} starts "
            f"({Status(minima.status[0]).name.lower()}): check the losses for outliers"
        )
    best = _natural(minima.x[:1])[0]

    samples, ids, ci = None, None, {}
    if bootstrap:
        counts = resample_counts(len(y), bootstrap, seed)
        refits = _refit_rows(design, y, counts, minima.x[:2], huber_delta)
        ids = np.flatnonzero(np.all(np.isfinite(refits), axis=1))
        samples = _natural(refits[ids])
        labels = ("c", "k", *(f"t_{n}" for n in names))
        ci = {label: percentile_interval(samples[:, i], ci_level) for i, label in enumerate(labels)}

    prediction = mixture_loss(r, best[0], best[1], best[2:])
    return MixtureLawFit(
        name=name,
        source_names=names,
        c=float(best[0]),
        k=float(best[1]),
        t=tuple(float(v) for v in best[2:]),
        objective=float(minima.value[0]),
        residual_rms=float(np.sqrt(np.mean((prediction - y) ** 2))),
        n_mixtures=len(y),
        huber_delta=huber_delta,
        starts=len(starts),
        seed=seed,
        observed_range=tuple((float(low), float(high)) for low, high in zip(r.min(axis=0), r.max(axis=0))),
        resample_ids=ids,
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level),
    )


def _check_design(r: np.ndarray, y: np.ndarray, names, name: str, delta: float) -> None:
    if y.shape != (len(r),):
        raise BadInputError(f"{len(r)} mixtures but {y.size} losses of {name}: give one loss per mixture")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise BadInputError(f"{name} has non-finite, zero or negative values: the mixture law needs losses > 0")
    n_params = 1 + len(names)
    if len(y) < n_params + 1:
        raise BadInputError(
            f"{len(y)} mixtures cannot determine the {n_params} parameters of a {len(names)}-source mixture law: "
            f"train at least {n_params + 1} mixtures"
        )
    if not delta > 0:
        raise BadInputError(f"huber_delta={delta}: must be > 0 (Ye et al. use 0.05)")


def mixture_starts(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(starts, 2 + free) rows ``(log c, log k, t...)``: floors as fractions of the
    lowest loss crossed with a grid of ``t``; ``log k`` then matches the data."""
    rows = []
    for fraction in FLOOR_STARTS:
        c = fraction * float(np.min(y))
        log_excess = np.log(np.maximum(y - c, 1e-3 * y))
        for t in itertools.product(T_STARTS, repeat=design.shape[1]):
            t = np.asarray(t)
            rows.append((np.log(c), float(np.median(log_excess - design @ t)), *t))
    return np.array(rows)


class MixtureObjective:
    """Mean Huber of ``exp(log c) + exp(log k + design . t) - loss``, batched over rows.

    ``design`` (mixtures, free) holds the proportions of the sources whose ``t`` is
    fitted; ``weights`` (rows, mixtures) gives each problem row its own weight per
    mixture (bootstrap counts); ``None`` weights each once."""

    def __init__(self, design, loss, delta: float, weights=None):
        self.design = np.asarray(design, dtype=np.float64)
        self.loss = np.asarray(loss, dtype=np.float64)
        self.delta = float(delta)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)

    def __call__(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):  # runaway line-search trials: rejected as inf/nan
            return self._value_and_grad(params, rows)

    def _value_and_grad(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        floor = np.exp(params[:, 0:1])
        term = np.exp(params[:, 1:2] + params[:, 2:] @ self.design.T)
        loss, slope = huber(floor + term - self.loss, self.delta)
        if self.weights is not None:
            weights = self.weights[rows]
            loss, slope = loss * weights, slope * weights
        scale = 1.0 / len(self.loss)  # the mean over mixtures (a resample has as many draws as mixtures)
        grad = np.empty_like(params)
        grad[:, 0] = slope.sum(axis=1) * floor[:, 0] * scale
        weighted = slope * term * scale
        grad[:, 1] = weighted.sum(axis=1)
        grad[:, 2:] = weighted @ self.design
        return loss.sum(axis=1) * scale, grad


def _refit_rows(design, y, counts, starts, delta) -> np.ndarray:
    """Refit one law per row of ``counts`` from ``starts``; (rows, P) log-form, NaN where every start failed."""
    n_rows, n_starts = len(counts), len(starts)
    objective = MixtureObjective(design, y, delta, weights=np.repeat(counts, n_starts, axis=0))
    result = minimize_lbfgs(objective, np.tile(starts, (n_rows, 1)), ftol=1e-12, gtol=1e-12, max_iter=500)
    chosen, found = best_per_problem(result, n_rows)
    chosen[~found] = np.nan
    return chosen


def _natural(x: np.ndarray) -> np.ndarray:
    """Log-form rows ``(log c, log k, t_1..t_{m-1})`` -> ``(c, k, t_1..t_{m-1}, 0)``."""
    with np.errstate(over="ignore"):
        return np.column_stack([np.exp(x[:, :2]), x[:, 2:], np.zeros(len(x))])


# ----------------------------------------------------------------------------------
# The optimal mixture for a target
# ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimalMixture:
    """The training proportions that minimise a weighted sum of predicted losses.

    ``proportions_ci``: per source, the percentile interval of the optimum found
    again under each bootstrap resample of the laws. ``loss_ci``: the interval of
    the resampled laws' predicted target loss at ``proportions``."""

    source_names: tuple[str, ...]
    proportions: tuple[float, ...]
    loss: float
    """Predicted target loss (weighted sum of the laws) at ``proportions``."""
    target: dict[str, float]
    """Validation source -> weight in the target loss."""
    proportions_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    loss_ci: tuple[float, float] = (float("nan"), float("nan"))
    ci_level: float = 0.95
    bootstrap: int = 0
    """Resamples in which every law had a usable refit (the optimum was found in each)."""
    extrapolated: bool = False
    """True when a proportion lies outside the range of the fitted mixtures (the laws extrapolate)."""

    def to_dict(self) -> dict:
        return to_jsonable(
            {
                "target": self.target,
                "proportions": dict(zip(self.source_names, self.proportions)),
                "loss": self.loss,
                "ci": {"proportions": self.proportions_ci, "loss": self.loss_ci},
                "ci_level": self.ci_level,
                "bootstrap": self.bootstrap,
                "extrapolated": self.extrapolated,
            }
        )


def optimal_mixture(laws: Sequence[MixtureLawFit], weights: str | Mapping[str, float] | None = None) -> OptimalMixture:
    """The proportions minimising ``sum_i weights[i] * L_i(r)`` over the simplex.

    ``laws``: one fitted law per validation source, all over the same training
    sources. ``weights``: validation source name -> weight (normalised to sum 1), or
    one name (that source alone); default: the first law alone."""
    laws = list(laws)
    if not laws:
        raise BadInputError("optimal_mixture needs at least one fitted mixture law")
    sources = laws[0].source_names
    if any(law.source_names != sources for law in laws):
        raise BadInputError("the mixture laws were fitted over different training sources: fit them on one table")
    target = _target_weights(laws, weights)
    used = [law for law in laws if target.get(law.name, 0.0) > 0]
    w = np.array([target[law.name] for law in used])
    c = np.array([[law.c for law in used]])
    k = np.array([[law.k for law in used]])
    t = np.array([[law.t for law in used]])
    best = _minimise_on_simplex(c, k, t, w)[0]
    loss = float(sum(wi * law.predict(best)[0] for wi, law in zip(w, used)))

    paired = _paired_samples(used)
    proportions_ci: dict[str, tuple[float, float]] = {}
    loss_ci = (float("nan"), float("nan"))
    level = laws[0].ci_level
    if paired is not None:
        c_s, k_s, t_s = paired
        optima = _minimise_on_simplex(c_s, k_s, t_s, w)
        proportions_ci = {name: percentile_interval(optima[:, j], level) for j, name in enumerate(sources)}
        with np.errstate(over="ignore"):
            at_best = (c_s + k_s * np.exp(t_s @ best)) @ w
        loss_ci = percentile_interval(at_best, level)
    return OptimalMixture(
        source_names=sources,
        proportions=tuple(float(v) for v in best),
        loss=loss,
        target=target,
        proportions_ci=proportions_ci,
        loss_ci=loss_ci,
        ci_level=level,
        bootstrap=0 if paired is None else len(paired[0]),
        extrapolated=_outside_observed(best, used),
    )


def _outside_observed(proportions: np.ndarray, laws: Sequence[MixtureLawFit]) -> bool:
    """True if a proportion lies outside what every law's mixtures covered."""
    for law in laws:
        for share, (low, high) in zip(proportions, law.observed_range):
            if not low - 1e-9 <= share <= high + 1e-9:
                return True
    return False


def _target_weights(laws: Sequence[MixtureLawFit], weights) -> dict[str, float]:
    names = [law.name for law in laws]
    if weights is None:
        weights = names[0]
    if isinstance(weights, str):
        weights = {weights: 1.0}
    unknown = [name for name in weights if name not in names]
    if unknown:
        raise BadInputError(f"target {unknown[0]!r} is not a fitted validation source: choose from {', '.join(names)}")
    values = np.array([float(v) for v in weights.values()])
    if not np.all(np.isfinite(values) & (values >= 0)) or values.sum() <= 0:
        raise BadInputError(f"target weights {_listing(values)}: give non-negative weights with a positive sum")
    return {name: float(v) / values.sum() for name, v in zip(weights, values)}


def _paired_samples(laws: Sequence[MixtureLawFit]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(c, k, t) bootstrap arrays (resamples, laws[, sources]) over the resamples every
    law refitted, paired by resample id; None without samples. Laws bootstrapped with
    different seeds or on different mixtures cannot be paired."""
    if any(law.samples is None or law.resample_ids is None for law in laws):
        return None
    if len({(law.seed, law.bootstrap, law.n_mixtures) for law in laws}) > 1:
        raise BadInputError(
            "the mixture laws were bootstrapped with different seeds, resample counts or mixtures: "
            "fit them together so that their resamples pair up"
        )
    common = laws[0].resample_ids
    for law in laws[1:]:
        common = np.intersect1d(common, law.resample_ids)
    if common.size == 0:
        return None
    rows = [law.samples[np.searchsorted(law.resample_ids, common)] for law in laws]
    c = np.stack([s[:, 0] for s in rows], axis=1)
    k = np.stack([s[:, 1] for s in rows], axis=1)
    t = np.stack([s[:, 2:] for s in rows], axis=1)
    return c, k, t


class _SimplexObjective:
    """``sum_i w_i (c_i + k_i exp(t_i . softmax(z)))`` per problem row, over ``z``.

    ``c``, ``k``: (problems, laws); ``t``: (problems, laws, sources); every problem
    row is repeated ``per`` times (one per start)."""

    def __init__(self, c, k, t, w, per: int):
        self.c, self.k, self.t, self.w, self.per = c, k, t, w, per

    def __call__(self, z: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        problem = rows // self.per
        shifted = z - z.max(axis=1, keepdims=True)
        r = np.exp(shifted)
        r /= r.sum(axis=1, keepdims=True)
        t = self.t[problem]
        with np.errstate(over="ignore", invalid="ignore"):
            terms = self.k[problem] * np.exp(np.einsum("bls,bs->bl", t, r)) * self.w
            value = (self.c[problem] * self.w).sum(axis=1) + terms.sum(axis=1)
            grad_r = np.einsum("bl,bls->bs", terms, t)
            grad_z = r * (grad_r - np.einsum("bs,bs->b", r, grad_r)[:, None])
        return value, grad_z


def _minimise_on_simplex(c: np.ndarray, k: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(problems, sources) minimisers of the weighted laws; the centre and each
    vertex's neighbourhood are the starts (the problem is convex in r)."""
    n_problems, n_sources = len(c), t.shape[2]
    starts = np.vstack([np.zeros(n_sources), 4.0 * np.eye(n_sources)])
    objective = _SimplexObjective(c, k, t, w, len(starts))
    x0 = np.tile(starts, (n_problems, 1))
    result = minimize_lbfgs(objective, x0, gtol=1e-12, ftol=1e-15, max_iter=500, threads=1)
    chosen, _ = best_per_problem(result, n_problems)
    shifted = chosen - chosen.max(axis=1, keepdims=True)
    r = np.exp(shifted)
    r[r < NEGLIGIBLE_SHARE * r.sum(axis=1, keepdims=True)] = 0.0  # an optimum on the boundary: exactly 0
    return r / r.sum(axis=1, keepdims=True)


def _as_rows(proportions, n_sources: int) -> np.ndarray:
    r = np.atleast_2d(np.asarray(proportions, dtype=np.float64))
    if r.shape[1] != n_sources:
        raise BadInputError(f"proportions have {r.shape[1]} columns: the law has {n_sources} sources")
    return r


def _row_name(row: int, row_names: Sequence[str] | None) -> str:
    return f"row {row}" if row_names is None else str(row_names[row])


def _listing(values) -> str:
    return "(" + ", ".join(f"{float(v):.6g}" for v in np.ravel(values)) + ")"
