"""How big a run is: its model's parameters and FLOPs per token, its optimiser steps,
tokens and passes over the data, and how long a step takes on this machine.

One rule for the trainer (:func:`roboscale.train.plan_run`) and the study planner,
so the run a study plans is the run that trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from roboscale.errors import BadInputError
from roboscale.models import ModelConfig, SequenceModel
from roboscale.train.config import LENGTH_OPTIONS, TrainConfig
from roboscale.train.data import TokenizedData
from roboscale.train.step import make_optimizer, train_step


@dataclass(frozen=True)
class ModelSize:
    """The model a config asks for on some data, counted on the meta device (no memory used)."""

    model_config: ModelConfig
    params: dict[str, int]
    """Parameters by group (embedding, transformer, head) and in ``total``."""
    flops_per_token: dict[str, float]
    """Training FLOPs per token under each convention (exact, total, non_embedding; attention included)."""


@dataclass(frozen=True)
class RunSize:
    """A run's model and length for its config and data."""

    model: ModelSize
    tokens_per_step: int
    """Tokens (sequence positions) per optimiser step: batch size x sequence length."""
    steps: int
    """Optimiser steps the run length buys (0 when it buys less than one)."""
    train_tokens: int
    """Tokens in one pass over the training split."""

    @property
    def tokens(self) -> int:
        """Training tokens of the whole run."""
        return self.steps * self.tokens_per_step

    @property
    def epochs(self) -> float:
        """Passes over the training data of the whole run."""
        return self.passes(self.tokens)

    def passes(self, tokens: int) -> float:
        """Passes over the training data that ``tokens`` tokens make."""
        return tokens / max(self.train_tokens, 1)


def size_model(config: TrainConfig, data: TokenizedData) -> ModelSize:
    """The model a config asks for on this data: its shape, parameter groups and
    per-token training FLOPs under each convention."""
    n_layer, n_head = config.shape()
    state = data.state_tokenizer if data.sees_state else None
    image = data.image_tokenizer
    model_config = ModelConfig(
        n_layer=n_layer,
        d_model=config.d_model,
        n_head=n_head,
        context_steps=config.context_steps,
        state_tokens=state.tokens if state else 0,
        state_group=state.group if state else 0,
        state_bins=state.bins if state else 0,
        action_tokens=data.action_tokenizer.tokens,
        action_group=data.action_tokenizer.group,
        action_bins=data.action_tokenizer.bins,
        n_tasks=data.n_tasks,
        parametrization=config.parametrization,
        base_width=config.base_width,
        wm_target=config.wm_target,
        image_tokens=image.tokens if image else 0,
        image_group=image.group if image else 0,
        image_bins=image.bins if image else 0,
    )
    with torch.device("meta"):
        model = SequenceModel(model_config)
    params = model.num_params()
    flops = {name: model.flops_per_token(config.task, params=name) for name in ("exact", "total", "non_embedding")}
    return ModelSize(model_config, params, flops)


def size_run(config: TrainConfig, data: TokenizedData, model: ModelSize | None = None) -> RunSize:
    """The run ``config`` asks for on ``data``: its model and the optimiser steps its
    length (exactly one of steps, tokens, FLOPs, tokens per parameter) buys, whole
    steps only. ``model``: ``size_model(config, data)``, when already at hand."""
    model = model if model is not None else size_model(config, data)
    tokens_per_step = config.batch_size * model.model_config.sequence_length
    if config.steps is not None:
        steps = int(config.steps)
    else:
        if config.tokens is not None:
            tokens = config.tokens
        elif config.tokens_per_param is not None:
            tokens = config.tokens_per_param * model.params["total"]
        else:
            tokens = config.flops / model.flops_per_token[config.flops_convention]
        steps = int(tokens // tokens_per_step)
    train_tokens = data.split_frames.get("train", 0) * model.model_config.slots_per_step
    return RunSize(model, tokens_per_step, steps, train_tokens)


MAX_STEPS = 10**12
"""More optimiser steps than any run can take (a million years at 30 steps per second):
a length beyond it is a typo, refused before any work."""


def require_a_step(config: TrainConfig, size: RunSize) -> None:
    """Refuse a run whose length buys no optimiser step, or more than :data:`MAX_STEPS`."""
    length = next(name for name in LENGTH_OPTIONS if getattr(config, name) is not None)
    flag = f"--{length.replace('_', '-')} {getattr(config, length):g}"
    if size.steps > MAX_STEPS:
        per_step = size.tokens_per_step * size.model.flops_per_token[config.flops_convention]
        raise BadInputError(
            f"{flag}: that is {size.steps:.3g} optimiser steps with this model, more than any run can take; "
            f"give at most {MAX_STEPS * per_step:.3g} FLOPs ({MAX_STEPS:.0e} steps)"
        )
    if size.steps >= 1:
        return
    one_step = size.tokens_per_step * size.model.flops_per_token[config.flops_convention]
    raise BadInputError(
        f"the budget is smaller than one optimiser step ({size.tokens_per_step} tokens, {one_step:.3g} FLOPs "
        f"with this model and --batch-size {config.batch_size}): raise the budget or lower the batch size"
    )


def seconds_per_step(config: TrainConfig, data: TokenizedData, n_models: int = 1) -> float:
    """Measured seconds of one optimiser step of a stack of ``n_models`` of this config's
    model on this machine (the trainer's own step, on the CPU, with ``config.threads``
    threads or one): the fastest of three, after one warm-up step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or 1)
    try:
        model = SequenceModel(size_model(config, data).model_config, seeds=range(n_models))
        optimizer = make_optimizer(model, config)
        windows = np.tile(data.windows("train")[: config.batch_size], n_models)
        batch = data.batch(windows, config.context_steps, torch.device("cpu"))
        alive = torch.ones(n_models, dtype=torch.bool)
        timings = []
        for _ in range(4):
            started = time.perf_counter()
            train_step(model, optimizer, batch, config, alive)
            timings.append(time.perf_counter() - started)
        return min(timings[1:])
    finally:
        torch.set_num_threads(threads)
