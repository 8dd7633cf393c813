"""A study's run store tables simulated from known laws, for analysis tests without training.

``simulated_study(loss_of)`` makes the runs and learning curves :func:`roboscale.study.analyze.analyze`
reads: one task and tokenizer, IsoFLOP budgets (FLOPs) with five model sizes each around the
optimum, and optionally a held-out budget 10x the largest; every curve point's loss is
``loss_of(N, D)`` (N parameters, D tokens) times seeded log-normal noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLOPS_PER_PARAM_TOKEN = 6.0
BUDGETS = (1e13, 3e13, 1e14, 3e14)
"""Fitted compute budgets (FLOPs); the held-out budget is 10x the last."""
SIZE_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Model sizes of a budget, as multiples of the law's optimal size there."""


def clean_law(N, D):
    """A Chinchilla-like law (Hoffmann et al. constants scaled to small models): nats."""
    return 1.7 + 400.0 * np.asarray(N, float) ** -0.34 + 410.0 * np.asarray(D, float) ** -0.28


def optimal_size(C: float) -> float:
    """Optimal N of :func:`clean_law` at C FLOPs, from a fine grid (parameters)."""
    sizes = np.geomspace(1e3, 1e9, 4000)
    return float(sizes[np.argmin(clean_law(sizes, C / (FLOPS_PER_PARAM_TOKEN * sizes)))])


def simulated_study(loss_of=clean_law, *, holdout: bool = True, noise: float = 0.003, seed: int = 0, points: int = 12):
    """(runs, curves) tables in the run store's layout (see module docstring)."""
    rng = np.random.default_rng(seed)
    levels = [(C, False) for C in BUDGETS] + ([(10 * BUDGETS[-1], True)] if holdout else [])
    runs, curves = [], []
    for C, held in levels:
        optimum = optimal_size(BUDGETS[-1] if held else C)
        for index, factor in enumerate(SIZE_FACTORS):
            N = round(optimum * factor * (10 if held else 1) ** 0.5)
            D = C / (FLOPS_PER_PARAM_TOKEN * N)
            tokens = np.geomspace(D / 300, D, points)
            loss = loss_of(N, tokens) * np.exp(noise * rng.standard_normal(points))
            run_id = f"C{C:.0e}-N{N}"
            runs.append(
                {
                    "run_id": run_id,
                    "status": "finished",
                    "task": "wm",
                    "tokenizer": "uniform:256",
                    "seed": 0,
                    "d_model": 8 * (index + 1),
                    "n_layer": 2,
                    "budget": C,
                    "holdout": int(held),
                    "N": N,
                    "D": D,
                    "C": C,
                    "loss": float(loss[-1]),
                }
            )
            curves.append(
                pd.DataFrame(
                    {
                        "run_id": run_id,
                        "step": np.arange(points),
                        "tokens": tokens,
                        "flops": FLOPS_PER_PARAM_TOKEN * N * tokens,
                        "val_loss": loss,
                        "train_loss": loss,
                    }
                )
            )
    return pd.DataFrame(runs), pd.concat(curves, ignore_index=True)


def analyze_simulated(loss_of=clean_law, *, holdout: bool = True, bootstrap: int = 60, **options) -> dict:
    """The analysis dict of :func:`simulated_study`'s runs."""
    from roboscale.study.analyze import analyze

    runs, curves = simulated_study(loss_of, holdout=holdout, **options)
    return analyze(runs, curves, study={"name": "simulated"}, ladder={}, bootstrap=bootstrap)
