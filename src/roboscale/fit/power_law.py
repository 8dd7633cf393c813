"""Single-axis laws: ``y = A x^-alpha``, ``y = E + A x^-alpha`` and the broken power law
of Caballero et al. (2022).

For loss against N, D or C, for success (as failure rate ``1 - success``) against
data, for a gap against the number of tasks, and for any other curve that falls.
Without a floor, ``log y = log A - alpha log x`` is a straight line: ordinary least
squares in log-log space (closed form), which is what robot-learning papers report
(e.g. Lin et al. 2024). With a floor, fitted like the parametric law: log-sum-exp in
log space, Huber loss, batched L-BFGS from a grid of starting points built from the
data's own range. Both bootstrap over points.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from roboscale.errors import BadInputError, FitDidNotConvergeError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts
from roboscale.fit.laws import BrokenPowerLawObjective, PowerLawObjective, broken_power_law, saturating_power_law
from roboscale.fit.optimize import Status, best_per_problem, minimize_lbfgs, multistart
from roboscale.fit.result import FitResult, bootstrap_fields

BROKEN_NAMES = ("E", "A", "c0", "c1", "d1", "f1")

LOG_LOG = "least squares in log-log space"

MIN_LEVELS = 3
"""Distinct x values a single-axis law needs: two always fit a line exactly."""

NO_OFFSET_LOG_E = -745.0
"""log E that makes exp(log E) == 0.0 in float64: the law without an offset."""


@dataclass(frozen=True)
class PowerLawFit(FitResult):
    """A fitted ``y = E + A x^-alpha`` (``E = 0`` when fitted without an offset).

    ``samples``: (resamples, 3) bootstrap estimates of (E, A, alpha)."""

    E: float
    A: float
    alpha: float
    objective: float
    residual_rms: float
    """Root-mean-square of log(predicted/observed) over points."""
    n_points: int
    x_name: str = "x"
    y_name: str = "y"
    offset: bool = True
    complement: float | None = None
    """If set, the law describes ``complement - y`` (e.g. 1 - success = failure rate)."""
    huber_delta: float | None = 1e-3
    """Huber threshold of the fit with a floor; None for least squares in log-log space."""
    r_squared: float = float("nan")
    """1 - SS_res / SS_tot of log y (the log-log fit's usual R^2)."""
    known_floor: float | None = None
    """E held at this known floor (the law fitted to ``y - E`` in log-log space), or None."""

    method = "power-law"

    def predict(self, x):
        """The law at ``x``, in the units of ``y`` (complement applied back)."""
        value = saturating_power_law(x, self.E, self.A, self.alpha)
        return value if self.complement is None else self.complement - value

    def predict_samples(self, x):
        """(resamples, len(x)) bootstrap predictions at ``x``, or None."""
        columns = self.sample_columns(3)
        if columns is None:
            return None
        value = saturating_power_law(np.atleast_1d(x)[None, :], *columns)
        return value if self.complement is None else self.complement - value

    @property
    def law(self) -> str:
        offset = "E + " if self.offset else ""
        return f"{_target(self)} = {offset}A * {self.x_name}^-alpha"

    def to_dict(self) -> dict:
        return self._summary(
            {"E": self.E, "A": self.A, "alpha": self.alpha},
            {
                **_fit_quality(self),
                "r_squared": self.r_squared,
                "offset": self.offset,
                "fitted_by": _fitted_by(self),
                "known_floor": self.known_floor,
                "complement": self.complement,
                "huber_delta": self.huber_delta,
            },
        )


@dataclass(frozen=True)
class BrokenPowerLawFit(FitResult):
    """A fitted ``y = E + A x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1)`` (one break at ``d1``).

    ``samples``: (resamples, 6) bootstrap estimates of (E, A, c0, c1, d1, f1)."""

    E: float
    A: float
    c0: float
    c1: float
    d1: float
    f1: float
    objective: float
    residual_rms: float
    n_points: int
    x_name: str = "x"
    y_name: str = "y"
    complement: float | None = None
    huber_delta: float = 1e-3

    method = "broken-power-law"

    def predict(self, x):
        value = broken_power_law(x, self.E, self.A, self.c0, self.c1, self.d1, self.f1)
        return value if self.complement is None else self.complement - value

    @property
    def law(self) -> str:
        return f"{_target(self)} = E + A * x^-c0 * (1 + (x/d1)^(1/f1))^(-c1*f1), x = {self.x_name}"

    def to_dict(self) -> dict:
        estimates = {name: getattr(self, name) for name in BROKEN_NAMES}
        estimates.update(slope_before_break=self.c0, slope_after_break=self.c0 + self.c1)
        return self._summary(
            estimates, {**_fit_quality(self), "complement": self.complement, "huber_delta": self.huber_delta}
        )


def _fitted_by(fit: PowerLawFit) -> str:
    if fit.known_floor is not None:
        return f"{LOG_LOG}, of y - E with E held at the known floor"
    return "Huber loss in log space" if fit.offset else LOG_LOG


def _target(fit) -> str:
    """What the law describes: y, or ``complement - y``."""
    return fit.y_name if fit.complement is None else f"{fit.complement:g} - {fit.y_name}"


def _fit_quality(fit) -> dict:
    return {
        "objective": fit.objective,
        "residual_rms": fit.residual_rms,
        "n_points": fit.n_points,
        "x": fit.x_name,
        "y": fit.y_name,
    }


def fit_power_law(
    x,
    y,
    *,
    offset: bool = True,
    complement: float | None = None,
    huber_delta: float = 1e-3,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    x_name: str = "x",
    y_name: str = "y",
    known_floor: float | None = None,
) -> PowerLawFit:
    """Fit ``y = E + A x^-alpha`` (``offset=False``: ``y = A x^-alpha``).

    With a floor: Huber loss (``huber_delta``) on log y, L-BFGS from a grid of starts.
    Without: ordinary least squares of log y on log x (closed form; ``objective`` is
    the sum of squared log residuals, ``huber_delta`` unused), as robot-learning papers
    fit ``gap = a x^-b``. ``complement=c`` fits ``c - y`` instead, for quantities that
    rise to a ceiling (``complement=1`` turns a success rate into a failure rate).
    ``known_floor=E``: E is known (e.g. the entropy of injected label noise), so
    ``y - E = A x^-alpha`` is fitted by least squares in log-log space (``offset`` unused).
    """
    if known_floor is not None:
        return _fit_log_log(x, y, complement, bootstrap, seed, ci_level, x_name, y_name, floor=known_floor)
    if not offset:
        return _fit_log_log(x, y, complement, bootstrap, seed, ci_level, x_name, y_name)
    return _fit_axis(POWER_LAW, x, y, offset, complement, huber_delta, bootstrap, seed, ci_level, x_name, y_name)


def fit_broken_power_law(
    x,
    y,
    *,
    complement: float | None = None,
    huber_delta: float = 1e-3,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    x_name: str = "x",
    y_name: str = "y",
) -> BrokenPowerLawFit:
    """Fit a one-break broken power law (Caballero et al. 2022) for curves that bend."""
    return _fit_axis(BROKEN_POWER_LAW, x, y, True, complement, huber_delta, bootstrap, seed, ci_level, x_name, y_name)


@dataclass(frozen=True)
class _AxisLaw:
    """What tells the single-axis laws apart when fitting them."""

    result: type
    objective: type
    names: tuple[str, ...]
    formula: Callable
    starts: Callable[[np.ndarray, np.ndarray, bool], np.ndarray]
    what: str


def _fit_axis(law: _AxisLaw, x, y, offset, complement, huber_delta, bootstrap, seed, ci_level, x_name, y_name):
    """Fit ``law`` (all options as :func:`fit_power_law`'s), bootstrap it and build its result."""
    check_bootstrap_options(bootstrap, ci_level, seed)
    x, target = _validate_xy(x, y, complement, len(law.names) - (not offset), x_name, y_name)
    fixed = np.array([not offset] + [False] * (len(law.names) - 1)) if law is POWER_LAW else None
    params, value, samples = _fit_with_bootstrap(
        law.objective, x, target, law.starts(x, target, offset), fixed, huber_delta, bootstrap, seed, law.what
    )
    natural = _natural(params[None, :], offset)[0]
    ci = {}
    if samples is not None:
        samples = _natural(samples, offset)
        ci = {name: percentile_interval(samples[:, i], ci_level) for i, name in enumerate(law.names)}
    return law.result(
        **dict(zip(law.names, (float(v) for v in natural))),
        **(
            {"offset": offset, "r_squared": _log_r_squared(law.formula(x, *natural), target)}
            if law is POWER_LAW
            else {}
        ),
        objective=value,
        residual_rms=_log_rms(law.formula(x, *natural), target),
        n_points=len(x),
        x_name=x_name,
        y_name=y_name,
        complement=complement,
        huber_delta=huber_delta,
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level),
    )


def power_law_starts(x: np.ndarray, y: np.ndarray, offset: bool = True) -> np.ndarray:
    """Starting grid ``(log E, log A, alpha)`` from the data's range."""
    y_min = float(np.min(y))
    floors = y_min * np.array([1e-3, 0.3, 0.6, 0.85, 0.97]) if offset else np.array([0.0])
    alphas = np.array([0.03, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5])
    first = int(np.argmin(x))
    starts = []
    for floor, alpha in itertools.product(floors, alphas):
        reducible = max(float(y[first]) - floor, 1e-3 * float(y[first]))
        log_a = np.log(reducible) + alpha * np.log(x[first])
        log_e = np.log(floor) if floor > 0 else NO_OFFSET_LOG_E
        starts.extend([(log_e, log_a + shift, alpha) for shift in (-1.0, 0.0, 1.0)])
    return np.array(starts)


def broken_power_law_starts(x: np.ndarray, y: np.ndarray, offset: bool = True) -> np.ndarray:
    """Starting grid ``(log E, log A, c0, c1, log d1, log f1)``: breaks across the x range
    (the broken law always has an offset: ``offset`` is there for a shared signature)."""
    log_x = np.log(x)
    breaks = np.quantile(log_x, [0.15, 0.35, 0.5, 0.65, 0.85])
    first = int(np.argmin(x))
    y_min = float(np.min(y))
    starts = []
    for floor, c0, c1, log_d1, f1 in itertools.product(
        y_min * np.array([1e-3, 0.5, 0.9]), (0.05, 0.3, 1.0), (-0.5, 0.3, 1.0), breaks, (0.1, 1.0)
    ):
        reducible = max(float(y[first]) - floor, 1e-3 * float(y[first]))
        log_a = np.log(reducible) + c0 * log_x[first]
        starts.append((np.log(floor), log_a, c0, c1, log_d1, np.log(f1)))
    return np.array(starts)


def _validate_xy(x, y, complement, n_params: int, x_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise BadInputError(f"{x_name} has {x.size} values but {y_name} has {y.size}: give one y per x")
    if x.size <= n_params:
        raise BadInputError(
            f"{x.size} points cannot determine a {n_params}-parameter law: need at least {n_params + 1}"
        )
    bad_x = int(np.sum(~(np.isfinite(x) & (x > 0))))
    if bad_x:
        raise BadInputError(
            f"{x_name} has {bad_x} non-finite, zero or negative value(s) of {x.size}: a power law needs {x_name} > 0"
        )
    target = y if complement is None else complement - y
    what = y_name if complement is None else f"{complement:g} - {y_name}"
    bad_y = int(np.sum(~(np.isfinite(target) & (target > 0))))
    if bad_y:
        hint = (
            f" (is the ceiling {complement:g} right?)"
            if complement is not None
            else " (use --complement 1 for a success rate)"
        )
        raise BadInputError(
            f"{what} has {bad_y} non-finite, zero or negative value(s) of {x.size}: "
            f"the law is fitted in log space and needs it > 0{hint}"
        )
    levels = np.unique(x).size
    if levels < MIN_LEVELS:
        raise BadInputError(
            f"a power law needs at least {MIN_LEVELS} distinct values of {x_name}, got {levels}: add levels"
        )
    return x, target


def _fit_with_bootstrap(objective_class, x, y, starts, fixed, delta, bootstrap, seed, what):
    """Best fit over ``starts`` plus (optionally) bootstrap refits; parameters in log form."""
    objective = objective_class(x, y, delta, fixed=fixed)
    minima = multistart(objective, starts, polish=8, explore_iter=200)
    if not minima.converged[0]:
        raise FitDidNotConvergeError(
            f"the {what} fit did not converge from any of {len(starts)} starts "
            f"({Status(minima.status[0]).name.lower()}): check the data for outliers"
        )
    samples = None
    if bootstrap:
        counts = resample_counts(len(x), bootstrap, seed)
        samples = fit_rows(objective_class, x, np.broadcast_to(y, counts.shape), counts, minima.x[:2], fixed, delta)
        samples = samples[np.all(np.isfinite(samples), axis=1)]
    return minima.x[0], float(minima.value[0]), samples


def fit_rows(objective_class, x, y_rows, weight_rows, starts, fixed, delta) -> np.ndarray:
    """Fit one law per row of ``y_rows``/``weight_rows`` (K, n) from shared ``starts``
    (near the expected optimum). Returns (K, P) parameters in log form, NaN rows
    where every start failed."""
    n_rows, n_starts = len(y_rows), len(starts)
    objective = objective_class(
        x, np.repeat(y_rows, n_starts, axis=0), delta, weights=np.repeat(weight_rows, n_starts, axis=0), fixed=fixed
    )
    result = minimize_lbfgs(objective, np.tile(starts, (n_rows, 1)), ftol=1e-12, gtol=1e-12, max_iter=500)
    chosen, found = best_per_problem(result, n_rows)
    chosen[~found] = np.nan
    return chosen


def _natural(params: np.ndarray, offset: bool) -> np.ndarray:
    """Log-form parameter rows -> natural ones: E and A (and d1, f1 of the broken
    law) are fitted as logs; E is 0 for a law without an offset."""
    out = params.copy()
    out[:, :2] = np.exp(params[:, :2])
    if params.shape[1] == 6:
        out[:, 4:] = np.exp(params[:, 4:])
    if not offset:
        out[:, 0] = 0.0
    return out


def _fit_log_log(x, y, complement, bootstrap, seed, ci_level, x_name, y_name, floor: float = 0.0) -> PowerLawFit:
    """``y - floor = A x^-alpha`` by ordinary least squares of log(y - floor) on log x,
    bootstrap over points."""
    check_bootstrap_options(bootstrap, ci_level, seed)
    if not (np.isfinite(floor) and floor >= 0):
        raise BadInputError(f"known floor {floor!r}: a floor must be a finite value >= 0")
    if floor:
        y = np.asarray(y, dtype=float)
        target_y = (complement - y) if complement is not None else y
        if np.any(np.isfinite(target_y) & (target_y <= floor)):
            raise BadInputError(
                f"{y_name} reaches the known floor {floor:g} in {int(np.sum(target_y <= floor))} row(s): "
                "the floor must lie below every value (check it, or fit without it)"
            )
        y = y - floor if complement is None else y + floor
    x, target = _validate_xy(x, y, complement, 2, x_name, y_name)
    log_x, log_y = np.log(x), np.log(target)
    (log_a,), (slope,) = loglog_least_squares(x, target, np.ones((1, x.size)))
    residual = log_y - (log_a + slope * log_x)
    samples, ci, dropped = None, {}, None
    if bootstrap:
        counts = resample_counts(x.size, bootstrap, seed)
        draws_mean = counts @ log_x / x.size
        spread = np.sum(counts * (log_x[None, :] - draws_mean[:, None]) ** 2, axis=1)
        usable = spread > 1e-12 * x.size * (1.0 + np.max(np.abs(log_x))) ** 2  # a line needs two distinct x
        intercepts, slopes = loglog_least_squares(x, target, counts[usable])
        samples = np.column_stack([np.full(intercepts.size, float(floor)), np.exp(intercepts), -slopes])
        ci = {name: percentile_interval(samples[:, i], ci_level) for i, name in enumerate(("E", "A", "alpha"))}
        dropped = {"drew a single value of " + x_name: int(bootstrap - usable.sum())} if not usable.all() else {}
    return PowerLawFit(
        E=float(floor),
        A=float(np.exp(log_a)),
        alpha=float(-slope),
        objective=float(np.sum(residual**2)),
        residual_rms=float(np.sqrt(np.mean(residual**2))),
        n_points=int(x.size),
        x_name=x_name,
        y_name=y_name,
        offset=bool(floor),
        known_floor=float(floor) if floor else None,
        complement=complement,
        huber_delta=None,
        r_squared=float(1.0 - np.sum(residual**2) / np.sum((log_y - log_y.mean()) ** 2)),
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level, dropped=dropped),
    )


def loglog_least_squares(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of ``log y = log a + b log x`` per row of ``weights``
    (rows, n) (0 leaves a point out; ``y`` may be (rows, n)). Returns (log a, b),
    NaN where a row has fewer than two distinct x values."""
    log_x = np.log(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_y = np.where(weights > 0, np.log(np.where(weights > 0, y, 1.0)), 0.0)
        total = weights.sum(axis=1)
        mean_x = (weights * log_x).sum(axis=1) / total
        mean_y = (weights * log_y).sum(axis=1) / total
        dx = log_x - mean_x[:, None]
        var_x = (weights * dx**2).sum(axis=1)
        slope = (weights * dx * (log_y - mean_y[:, None])).sum(axis=1) / var_x
        slope = np.where(var_x > 1e-12 * np.maximum(total, 1.0), slope, np.nan)
    return mean_y - slope * mean_x, slope


def _log_r_squared(prediction, observed) -> float:
    """R^2 of log y: 1 - SS_res / SS_tot with residuals log(predicted / observed)."""
    log_observed = np.log(observed)
    residual = np.log(prediction) - log_observed
    return float(1.0 - np.sum(residual**2) / np.sum((log_observed - log_observed.mean()) ** 2))


def _log_rms(prediction, observed) -> float:
    return float(np.sqrt(np.mean((np.log(prediction) - np.log(observed)) ** 2)))


POWER_LAW = _AxisLaw(
    PowerLawFit, PowerLawObjective, ("E", "A", "alpha"), saturating_power_law, power_law_starts, "power law"
)
BROKEN_POWER_LAW = _AxisLaw(
    BrokenPowerLawFit,
    BrokenPowerLawObjective,
    BROKEN_NAMES,
    broken_power_law,
    broken_power_law_starts,
    "broken power law",
)
