"""One optimiser step, the learning-rate schedule, and the loss measurement: the arithmetic
of training, shared by the trainer and the planner's step-time calibration.

Every function works on a stack of K models (:class:`roboscale.models.SequenceModel`
with K seeds); a single model is a stack of one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from roboscale.models import SequenceModel
from roboscale.train.config import TrainConfig
from roboscale.train.data import TokenizedData
from roboscale.train.validation import window_losses


def decayed_parameter_names(model: SequenceModel) -> list[str]:
    """Names of the parameters AdamW decays: the matrices of the blocks (qkv, attention
    output, MLP in and out) and of the heads' readouts (``*.out.weight``).

    Biases, LayerNorms, embeddings (the bin and task tables, the slot, time and
    dimension-position vectors, the continuous input projection) and the head's
    per-dimension query are not decayed. Every parameter carries the leading model
    axis (K, even for a single model), so a matrix is a parameter whose shape per
    model, ``shape[1:]``, has two dimensions.
    """
    return [
        name
        for name, parameter in model.named_parameters()
        if parameter.dim() - 1 == 2 and (name.startswith("blocks.") or name.endswith(".out.weight"))
    ]


def make_optimizer(model: SequenceModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on the blocks' and heads' matrices only
    (:func:`decayed_parameter_names`).

    Under muP (``model.config.parametrization == "mup"``) the hidden matrices (see
    :meth:`SequenceModel.hidden_matrices`) form a third group with ``lr_scale`` =
    1/m = base_width / d_model and weight decay x m (torch's AdamW decays by lr x
    weight_decay per step: that product stays the standard value). Every group
    carries ``lr_scale`` (1 elsewhere); the trainer's schedule sets each group's
    learning rate to the scheduled one x ``lr_scale``. Group 0 always has scale 1,
    so its learning rate is the run's (what learning curves record).
    """
    multiplier = model.config.width_multiplier
    hidden = set(model.hidden_matrices()) if multiplier != 1.0 else set()
    decayed = set(decayed_parameter_names(model))
    # (weight decay, lr_scale) -> parameters, in the order groups are made.
    grouped: dict[tuple[float, float], list[torch.nn.Parameter]] = {(config.weight_decay, 1.0): [], (0.0, 1.0): []}
    for name, parameter in model.named_parameters():
        decay = config.weight_decay if name in decayed else 0.0
        key = (decay * multiplier, 1.0 / multiplier) if name in hidden else (decay, 1.0)
        grouped.setdefault(key, []).append(parameter)
    peak = config.peak_lr()
    groups = [
        {"params": params, "weight_decay": decay, "lr_scale": scale, "lr": peak * scale}
        for (decay, scale), params in grouped.items()
        if params or scale == 1.0
    ]
    # The fused implementation is several times faster than the per-tensor loop on CPU
    # too, which matters for the small models a CPU study is made of.
    return torch.optim.AdamW(groups, lr=peak, betas=(0.9, 0.95), eps=1e-8, fused=True)


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio`` x peak at the last step."""
    peak = config.peak_lr()
    warmup = max(1, round(config.warmup_fraction * total_steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - 1 - warmup)
    floor = config.min_lr_ratio * peak
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def train_step(
    model: SequenceModel,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    config: TrainConfig,
    alive: torch.Tensor,
) -> torch.Tensor:
    """One optimiser step of the stacked models on ``batch`` (every model's rows, model-major).

    Returns each model's training loss before the step, shape (K,). ``alive`` (K,
    bool, on the CPU) is updated in place: a model whose loss is not finite is no
    longer alive. Models that are not alive get zero gradients; when none is left,
    no step is taken.
    """
    losses, _ = model.loss(batch, config.task)
    alive &= torch.isfinite(losses.detach()).cpu()
    if alive.any():
        on_device = alive.to(losses.device)
        torch.where(on_device, losses, torch.zeros_like(losses)).sum().backward()
        clip_grad_norms(model, config.grad_clip, on_device)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return losses


def clip_grad_norms(model: SequenceModel, max_norm: float, alive: torch.Tensor) -> None:
    """``clip_grad_norm_`` for each stacked model on its own: scale model k's gradients
    so that their global L2 norm is at most ``max_norm``. Models that are no longer
    ``alive`` (diverged) get zero gradients."""
    grads = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    n_models = model.n_models
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(n_models, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    everyone = bool(alive.all())
    for g in grads:
        g.mul_(scale.view(n_models, *([1] * (g.dim() - 1))))
        if not everyone:
            g.masked_fill_(~alive.view(n_models, *([1] * (g.dim() - 1))), 0.0)


def fixed_windows(starts: np.ndarray, count: int) -> np.ndarray:
    """A fixed, evenly spread subset of window starts (the same at every evaluation)."""
    if len(starts) <= count:
        return starts
    return starts[np.linspace(0, len(starts) - 1, count).astype(np.int64)]


def evaluate(
    model: SequenceModel, data: TokenizedData, starts: np.ndarray, task: str, batch_size: int, device
) -> np.ndarray:
    """Mean loss per predicted dimension of each stacked model, shape (K,), over the
    windows beginning at ``starts`` (the same windows for every model; its standard
    error: :func:`roboscale.train.validation.validation_loss`)."""
    sums, dims = window_losses(model, data, starts, task, batch_size, device)
    return sums.sum(axis=1) / np.maximum(dims.sum(axis=1), 1.0)
