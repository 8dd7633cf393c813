"""Benchmark: the approach-3 grid fit (4,500 starts x L-BFGS) and its 1,000-resample bootstrap.

Side by side, in one run, on the same data (the bundled Hoffmann et al. 2022 points):

- roboscale: batched L-BFGS over all starts (default threads, and 1 thread);
- (a) a straightforward loop of ``scipy.optimize.minimize(method="L-BFGS-B")`` over the
  same grid, with an analytic gradient;
- (b) the PyPI package ``chinchilla`` (kyo-takano), its own BFGS over the same grid
  with the Hoffmann loss (log-Huber, delta 1e-3), on all cores.

Every result is scored with the same objective (sum of Huber(log predicted - log
observed), delta 1e-3), so "faster" is only claimed at an equal or lower objective.
Times are medians over ``--repeats`` (this machine is noisy); peers run once each
unless ``--peer-repeats`` says otherwise.

    pip install -e '.[bench]'
    python bench/fit_parametric.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

import numpy as np

from roboscale.fit import fit_parametric, load_runs
from roboscale.fit.examples import example_path
from roboscale.fit.laws import ParametricObjective
from roboscale.fit.parametric import HOFFMANN_GRID, start_grid


def timed(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scipy_loop(log_n, log_d, log_loss, delta):
    """The straightforward peer: one scipy L-BFGS-B call per start, analytic gradient."""
    from scipy.optimize import minimize

    def value_and_grad(p):
        e, a, b, alpha, beta = p
        term_n = np.exp(a - alpha * log_n)
        term_d = np.exp(b - beta * log_d)
        term_e = np.exp(e)
        total = term_e + term_n + term_d
        r = np.log(total) - log_loss
        clipped = np.clip(r, -delta, delta)
        value = np.sum(clipped * (r - 0.5 * clipped))
        s = clipped / total
        grad = np.array(
            [
                np.sum(s) * term_e,
                np.sum(s * term_n),
                np.sum(s * term_d),
                -np.sum(s * term_n * log_n),
                -np.sum(s * term_d * log_d),
            ]
        )
        return value, grad

    best = None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x0 in start_grid():
            result = minimize(value_and_grad, x0, jac=True, method="L-BFGS-B")
            if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
                best = result
    e, a, b, alpha, beta = best.x
    return np.array([np.exp(e), np.exp(a), np.exp(b), alpha, beta])


def chinchilla_package(table, delta):
    """The PyPI package `chinchilla`, fitted on the same runs and grid."""
    import logging

    from chinchilla import Chinchilla

    def log_huber(y_true, y_pred):
        error = np.log(y_true) - np.log(y_pred)
        magnitude = np.abs(error)
        return np.where(magnitude < delta, error**2 / 2, delta * (magnitude - delta / 2))

    grid = {
        "e": HOFFMANN_GRID["log_E"],
        "a": HOFFMANN_GRID["log_A"],
        "b": HOFFMANN_GRID["log_B"],
        "alpha": HOFFMANN_GRID["alpha"],
        "beta": HOFFMANN_GRID["beta"],
    }
    with tempfile.TemporaryDirectory() as folder:
        table.frame[["C", "N", "D", "loss"]].to_csv(os.path.join(folder, "df.csv"), index=False)
        logging.disable(logging.WARNING)
        model = Chinchilla(folder, param_grid=grid, loss_fn=log_huber, log_level=40)
        model.visualizer.optim = lambda *args, **kwargs: None  # plotting is not part of the fit
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(parallel=True)
        logging.disable(logging.NOTSET)
    return np.array([float(model.E), float(model.A), float(model.B), float(model.alpha), float(model.beta)])


def score(objective, natural):
    E, A, B, alpha, beta = natural
    x = np.array([[np.log(E), np.log(A), np.log(B), alpha, beta]])
    return float(objective(x, np.zeros(1, dtype=int))[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the roboscale timings (median)")
    parser.add_argument("--peer-repeats", type=int, default=1, help="repeats of each peer (median)")
    parser.add_argument("--drop-highest-loss", type=int, default=0)
    parser.add_argument("--skip-chinchilla", action="store_true")
    args = parser.parse_args()

    table = load_runs(example_path("hoffmann2022"), drop_highest_loss=args.drop_highest_loss)
    delta = 1e-3
    objective = ParametricObjective(np.log(table.N), np.log(table.D), np.log(table.loss), delta)
    print(
        f"data: {len(table)} runs (Hoffmann et al. 2022 via Epoch), grid: {len(start_grid())} starts, cpus: {os.cpu_count()}"
    )

    rows = []
    t_ours, fit = timed(lambda: fit_parametric(table, bootstrap=0), args.repeats)
    ours = np.array([fit.E, fit.A, fit.B, fit.alpha, fit.beta])
    rows.append(("roboscale batched L-BFGS", t_ours, score(objective, ours), ours))
    t_one, fit_one = timed(lambda: fit_parametric(table, bootstrap=0, threads=1), args.repeats)
    rows.append(
        (
            "roboscale, 1 thread",
            t_one,
            fit_one.objective,
            np.array([fit_one.E, fit_one.A, fit_one.B, fit_one.alpha, fit_one.beta]),
        )
    )

    t_scipy, scipy_params = timed(
        lambda: scipy_loop(np.log(table.N), np.log(table.D), np.log(table.loss), delta), args.peer_repeats
    )
    rows.append(("(a) scipy L-BFGS-B loop", t_scipy, score(objective, scipy_params), scipy_params))
    if not args.skip_chinchilla:
        t_pkg, pkg_params = timed(lambda: chinchilla_package(table, delta), args.peer_repeats)
        rows.append(("(b) chinchilla 0.2.0 (BFGS, all cores)", t_pkg, score(objective, pkg_params), pkg_params))

    print(f"\n{'method':40s} {'time (s)':>9s} {'x slower':>9s} {'objective':>14s}   E, A, B, alpha, beta")
    for name, seconds, value, params in rows:
        shown = ", ".join(f"{v:.5g}" for v in params)
        print(f"{name:40s} {seconds:9.2f} {seconds / t_ours:9.1f} {value:14.10g}   {shown}")

    t_boot, boot = timed(lambda: fit_parametric(table, bootstrap=1000, seed=0), max(1, args.repeats // 2))
    print(
        f"\nfit + 1,000-resample bootstrap: {t_boot:.2f} s median ({t_boot - t_ours:.2f} s for the bootstrap alone), "
        f"{boot.bootstrap_converged}/1000 resamples converged; alpha 95% CI {boot.ci['alpha'][0]:.4f}-{boot.ci['alpha'][1]:.4f}"
    )
    best_peer = min(value for _, _, value, _ in rows[2:])
    verdict = "equal or lower" if rows[0][2] <= best_peer * (1 + 1e-9) else "HIGHER"
    print(f"roboscale objective vs best peer: {verdict} ({rows[0][2]:.15g} vs {best_peer:.15g})")
    print(f"speed-up vs (a) scipy loop: {t_scipy / t_ours:.1f}x (1 thread: {t_scipy / t_one:.1f}x)")


if __name__ == "__main__":
    main()
