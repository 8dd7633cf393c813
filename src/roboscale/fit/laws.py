"""Scaling laws as pure formulas, and the fitting objectives built on them.

Every law is fitted in log space: the prediction is written as a log-sum-exp of
terms (``log(E + A x^-alpha) = logsumexp(e, a - alpha log x)`` with ``E = exp(e)``,
``A = exp(a)``) and compared with ``log y`` through a Huber loss. This keeps every
fitted constant positive without bounds, treats a 1% error the same at every scale,
and works for losses below 1 (an MSE head) as well as above.

Objectives have the batched signature of :mod:`roboscale.fit.optimize`: parameters
are rows of a (b, P) array, and the data may differ per row (bootstrap resamples
are per-row weights).
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------------
# Formulas (plain floats or arrays in, arrays out)
# ----------------------------------------------------------------------------------


def parametric_loss(N, D, E: float, A: float, B: float, alpha: float, beta: float):
    """Hoffmann et al. (2022) approach 3: ``L(N, D) = E + A/N^alpha + B/D^beta``.

    N in parameters, D in training tokens (or samples); the result is in the units
    of the fitted loss (e.g. nats per token).
    """
    N = np.asarray(N, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # runaway bootstrap samples: inf/nan
        return E + A * N**-alpha + B * D**-beta


def optimal_allocation(C, A: float, B: float, alpha: float, beta: float, flops_per_param_token: float = 6.0):
    """Closed-form minimiser of ``A/N^alpha + B/D^beta`` subject to ``C = k N D``.

    Returns ``(N_opt, D_opt)`` in parameters and tokens for compute ``C`` in FLOPs,
    with ``k = flops_per_param_token``: ``N_opt = G (C/k)^a``, ``D_opt = (C/k)^b / G``,
    ``a = beta/(alpha+beta)``, ``b = alpha/(alpha+beta)``,
    ``G = (alpha A / (beta B))^(1/(alpha+beta))``.
    A non-physical law (an exponent <= 0) has no optimum: NaN, never complex numbers.

    ``G`` alone can overflow when ``alpha + beta`` is small (a bootstrap refit far
    from the data, or a law evaluated at C = 1 FLOP) although ``N_opt`` and
    ``D_opt`` are finite; there the log-space form gives them. An optimum beyond
    float64 comes out as inf, silently.
    """
    C = np.asarray(C, dtype=np.float64)
    alpha, beta = np.asarray(alpha, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    total = alpha + beta
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        ratio = np.asarray(alpha * A / (beta * B), dtype=np.float64)
        G = ratio ** (1.0 / total)
        scaled = C / flops_per_param_token
        N_opt, D_opt = G * scaled ** (beta / total), scaled ** (alpha / total) / G
        if np.all(np.isfinite(N_opt) & (N_opt > 0) & np.isfinite(D_opt) & (D_opt > 0)):
            return N_opt, D_opt
        # Where the direct form overflowed (or underflowed) on the way, redo it in
        # log space; elsewhere keep the direct values exactly.
        log_g = np.log(ratio) / total
        log_scaled = np.log(scaled)
        N_log = np.exp(log_g + beta / total * log_scaled)
        D_log = np.exp(alpha / total * log_scaled - log_g)
        direct = np.isfinite(N_opt) & (N_opt > 0) & np.isfinite(D_opt) & (D_opt > 0)
        return np.where(direct, N_opt, N_log), np.where(direct, D_opt, D_log)


def saturating_power_law(x, E: float, A: float, alpha: float):
    """``y = E + A x^-alpha``: a power law that levels off at ``E``.

    A bootstrap sample with ``alpha < 0``, evaluated far beyond the data, can exceed
    float64: that is inf, without a warning."""
    with np.errstate(over="ignore"):
        return E + A * np.asarray(x, dtype=np.float64) ** -alpha


def broken_power_law(x, E: float, A: float, c0: float, c1: float, d1: float, f1: float):
    """One-break broken neural scaling law (Caballero et al. 2022, eq. 1).

    ``y = E + A x^-c0 (1 + (x/d1)^(1/f1))^(-c1 f1)``: slope ``c0`` before the break
    at ``x = d1``, slope ``c0 + c1`` after it, ``f1`` the sharpness of the bend.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # a very sharp bend overflows: inf, judged by its caller
        return E + A * x**-c0 * (1.0 + (x / d1) ** (1.0 / f1)) ** (-c1 * f1)


# ----------------------------------------------------------------------------------
# Objectives: sum of Huber(log prediction - log y), batched over parameter rows
# ----------------------------------------------------------------------------------


def huber(residual: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of ``residual`` and its derivative (elementwise).

    ``0.5 r^2`` for ``|r| <= delta``, ``delta (|r| - delta/2)`` beyond.
    """
    clipped = np.clip(residual, -delta, delta)
    return clipped * (residual - 0.5 * clipped), clipped


def _weighted_sum(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    return values.sum(axis=1) if weights is None else np.einsum("bn,bn->b", values, weights)


class ParametricObjective:
    """Sum of Huber losses of ``log L(N, D)`` against observed ``log loss``.

    Parameter rows are ``(e, a, b, alpha, beta)`` with ``E, A, B = exp(e, a, b)``.
    ``weights`` (rows, runs) gives each problem row its own weight per run (a
    bootstrap resample is a row of counts); ``None`` weights every run once.
    ``fixed`` is a boolean mask of parameters held at their start value.
    """

    n_params = 5

    def __init__(self, log_n, log_d, log_loss, delta: float, weights=None, fixed=None):
        self.log_n = np.asarray(log_n, dtype=np.float64)
        self.log_d = np.asarray(log_d, dtype=np.float64)
        self.log_loss = np.asarray(log_loss, dtype=np.float64)
        self.delta = float(delta)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.free = None if fixed is None else ~np.asarray(fixed, dtype=bool)

    def __call__(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Far from any optimum a line-search trial may overflow; its objective is then
        # inf or nan, which the line search rejects, so the warnings are silenced.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._value_and_grad(params, rows)

    def _value_and_grad(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, a, b, alpha, beta = (params[:, i : i + 1] for i in range(5))
        term_n = np.exp(a - alpha * self.log_n)
        term_d = np.exp(b - beta * self.log_d)
        term_e = np.exp(e)
        total = term_e + term_n + term_d
        loss, slope = huber(np.log(total) - self.log_loss, self.delta)
        weights = None if self.weights is None else self.weights[rows]
        if weights is not None:
            slope = slope * weights
        value = _weighted_sum(loss, weights)
        scaled = slope / total  # d(sum of Huber)/d(prediction), per run
        weighted_n = scaled * term_n
        weighted_d = scaled * term_d
        grad = np.empty_like(params)
        grad[:, 0] = scaled.sum(axis=1) * term_e[:, 0]
        grad[:, 1] = weighted_n.sum(axis=1)
        grad[:, 2] = weighted_d.sum(axis=1)
        grad[:, 3] = -(weighted_n @ self.log_n)
        grad[:, 4] = -(weighted_d @ self.log_d)
        if self.free is not None:
            grad *= self.free
        return value, grad


class LogSumExpObjective:
    """Huber fit of ``log y = logsumexp(e, u(theta, x))`` for single-axis laws.

    Subclasses define ``term(params, log_x) -> (u, du)`` with ``u`` (b, n) the log of
    the non-constant part and ``du`` (b, n, P-1) its derivatives. Parameter 0 is
    always ``e = log E``. ``y`` may be (n,) shared or (rows, n) per problem row;
    ``weights`` likewise (0 excludes a point).
    """

    n_params: int

    def __init__(self, x, y, delta: float, weights=None, fixed=None):
        self.log_x = np.log(np.asarray(x, dtype=np.float64))
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_y = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), 0.0)
        self.delta = float(delta)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.free = None if fixed is None else ~np.asarray(fixed, dtype=bool)

    def term(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._value_and_grad(params, rows)

    def _value_and_grad(self, params: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, du = self.term(params)
        e = params[:, 0:1]
        peak = np.maximum(u, e)
        exp_u = np.exp(u - peak)
        exp_e = np.exp(e - peak)
        total = exp_u + exp_e
        log_y = self.log_y if self.log_y.ndim == 1 else self.log_y[rows]
        residual = peak + np.log(total) - log_y
        loss, slope = huber(residual, self.delta)
        weights = None if self.weights is None else (self.weights if self.weights.ndim == 1 else self.weights[rows])
        if weights is not None:
            weights = np.broadcast_to(weights, loss.shape)
            loss = loss * weights
            slope = slope * weights
        value = loss.sum(axis=1)
        share_u = exp_u / total
        grad = np.empty_like(params)
        grad[:, 0] = (slope * (1.0 - share_u)).sum(axis=1)
        grad[:, 1:] = np.einsum("bn,bnp->bp", slope * share_u, du)
        if self.free is not None:
            grad *= self.free
        return value, grad


class PowerLawObjective(LogSumExpObjective):
    """``y = E + A x^-alpha``; parameter rows ``(e, a, alpha)``."""

    n_params = 3

    def term(self, params):
        a, alpha = params[:, 1:2], params[:, 2:3]
        u = a - alpha * self.log_x
        du = np.empty(u.shape + (2,))
        du[..., 0] = 1.0
        du[..., 1] = -self.log_x
        return u, du


class BrokenPowerLawObjective(LogSumExpObjective):
    """One-break broken power law; parameter rows ``(e, a, c0, c1, log d1, log f1)``."""

    n_params = 6

    def term(self, params):
        a, c0, c1, log_d1, log_f1 = (params[:, i : i + 1] for i in range(1, 6))
        f1 = np.exp(log_f1)
        z = (self.log_x - log_d1) / f1
        softplus = np.logaddexp(0.0, z)
        sigmoid = np.exp(z - softplus)
        u = a - c0 * self.log_x - c1 * f1 * softplus
        du = np.empty(u.shape + (5,))
        du[..., 0] = 1.0
        du[..., 1] = -self.log_x
        du[..., 2] = -f1 * softplus
        du[..., 3] = c1 * sigmoid
        du[..., 4] = -c1 * f1 * (softplus - z * sigmoid)
        return u, du
