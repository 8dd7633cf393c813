"""The validation measurement: per-window losses, their mean, and the mean's standard error.

The validation loss is a ratio estimate, the summed per-dimension loss over the summed
number of predicted dimensions of a fixed set of windows. Its standard error is the
noise of the finite validation set: another draw of validation episodes would give
another loss. Windows cut from the same episode are correlated (they overlap and share
the episode's start configuration), so they are not independent samples; the standard
error is clustered by episode with the delta-method (sandwich) formula for a ratio,

    SE^2 = G / (G - 1) * sum_g (S_g - L M_g)^2 / (sum_g M_g)^2,

where episode g holds ``S_g`` loss (nats) over ``M_g`` predicted dimensions, ``L`` is the
validation loss and ``G`` the number of episodes. It is the closed form of a bootstrap
over episodes (no random draws, no second pass over the model). When every episode has
the same number of dimensions it is the standard deviation of the episode means over
sqrt(G).
"""

from __future__ import annotations

import numpy as np
import torch

from roboscale.models import SequenceModel
from roboscale.train.data import TokenizedData


@torch.no_grad()
def window_losses(
    model: SequenceModel, data: TokenizedData, starts: np.ndarray, task: str, batch_size: int, device
) -> tuple[np.ndarray, np.ndarray]:
    """Each stacked model's summed loss (nats) and predicted dimensions in each window
    beginning at ``starts``: two float64 arrays of shape (K, windows)."""
    model.eval()
    sums, dims = [], []
    for i in range(0, len(starts), batch_size):
        windows = np.tile(starts[i : i + batch_size], model.n_models)
        batch = data.batch(windows, model.config.context_steps, device)
        loss_sum, count = model.loss_terms(batch, task, per_window=True)
        sums.append(loss_sum.double().cpu().numpy())
        dims.append(count.double().cpu().numpy())
    model.train()
    return np.concatenate(sums, axis=1), np.concatenate(dims, axis=1)


def clustered_mean(sums: np.ndarray, dims: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ratio mean ``sum(sums) / sum(dims)`` along the last axis and its standard error
    clustered by ``clusters`` (one label per window, e.g. its episode); see the module
    docstring. ``sums`` and ``dims``: (..., windows). NaN standard error with fewer than
    two clusters."""
    sums, dims = np.asarray(sums, dtype=np.float64), np.asarray(dims, dtype=np.float64)
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    total_dims = dims.sum(axis=-1)
    mean = sums.sum(axis=-1) / np.maximum(total_dims, 1.0)
    if n_clusters < 2:
        return mean, np.full_like(mean, np.nan)
    residual = sums - mean[..., None] * dims
    membership = np.zeros((cluster.size, n_clusters))
    membership[np.arange(cluster.size), cluster] = 1.0
    per_cluster = residual @ membership
    variance = n_clusters / (n_clusters - 1) * (per_cluster**2).sum(axis=-1) / np.maximum(total_dims, 1.0) ** 2
    return mean, np.sqrt(variance)


def validation_loss(
    model: SequenceModel, data: TokenizedData, starts: np.ndarray, task: str, batch_size: int, device
) -> tuple[np.ndarray, np.ndarray]:
    """Each stacked model's mean loss per predicted dimension over the windows at
    ``starts`` and its episode-clustered standard error (nats), two arrays of shape (K,)."""
    sums, dims = window_losses(model, data, starts, task, batch_size, device)
    return clustered_mean(sums, dims, data.episode_end[starts])


def split_losses(
    model: SequenceModel, data: TokenizedData, windows: dict[str, np.ndarray], task: str, batch_size: int, device
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`validation_loss` on each split's windows: split name -> (losses, standard errors),
    each of shape (K,), nats per predicted dimension."""
    return {name: validation_loss(model, data, starts, task, batch_size, device) for name, starts in windows.items()}
