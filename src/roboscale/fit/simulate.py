"""Runs simulated from a known law: the ground truth that fitter tests recover."""

from __future__ import annotations

import numpy as np
import pandas as pd

from roboscale.fit.laws import parametric_loss


def simulate_isoflop_runs(
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
    *,
    budgets,
    model_sizes,
    noise: float = 0.01,
    seed: int = 0,
    flops_per_param_token=6.0,
) -> pd.DataFrame:
    """One run per (budget, model size): ``D = C / (k N)`` tokens, loss from the law
    times log-normal noise of relative size ``noise``. Columns N, D, C, loss.

    ``flops_per_param_token``: ``k`` (FLOPs per parameter per token), one number or
    one per model size (exact FLOP counts give each width its own k)."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(model_sizes, float)
    per_size = np.broadcast_to(np.asarray(flops_per_param_token, float), sizes.shape)
    C, N = (grid.ravel() for grid in np.meshgrid(np.asarray(budgets, float), sizes))
    k = np.meshgrid(np.asarray(budgets, float), per_size)[1].ravel()
    D = C / (k * N)
    loss = parametric_loss(N, D, E, A, B, alpha, beta) * np.exp(noise * rng.standard_normal(C.size))
    return pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss})


def simulate_learning_curves(
    E: float,
    A: float,
    B: float,
    alpha: float,
    beta: float,
    *,
    model_sizes,
    max_flops: float,
    min_tokens: float = 1e3,
    points_per_curve: int = 40,
    noise: float = 0.0,
    seed: int = 0,
    flops_per_param_token: float = 6.0,
) -> pd.DataFrame:
    """Learning curves: each model trained to ``max_flops``, evaluated at
    log-spaced token counts from ``min_tokens``; loss ``L(N, D_t)`` times noise.
    Columns run, step, N, D, C, loss."""
    rng = np.random.default_rng(seed)
    frames = []
    for N in np.asarray(model_sizes, float):
        tokens = np.geomspace(min_tokens, max_flops / (flops_per_param_token * N), points_per_curve)
        loss = parametric_loss(N, tokens, E, A, B, alpha, beta) * np.exp(noise * rng.standard_normal(tokens.size))
        frames.append(
            pd.DataFrame(
                {
                    "run": f"N{N:.4g}",
                    "step": np.arange(points_per_curve),
                    "N": N,
                    "D": tokens,
                    "C": flops_per_param_token * N * tokens,
                    "loss": loss,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
