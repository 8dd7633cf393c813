"""Training: one run per call, each an exactly costed data point (parameters, tokens, FLOPs).

Sizing a run (:mod:`roboscale.train.sizing`) is public too, so a study plans the
runs the trainer will train.

The settings (:class:`TrainConfig`, its checks, the ladder) need no torch; sizing,
the optimiser step and the trainer load torch on first use of one of their names,
so refusing bad settings or reading a study does not wait for it.
"""

from typing import TYPE_CHECKING

from roboscale.lazy import lazy_exports
from roboscale.models.settings import LADDER_WIDTHS, check_width, ladder_shape
from roboscale.train.config import TrainConfig, default_lr, stack_key

_TORCH_EXPORTS = {
    "ModelSize": "roboscale.train.sizing",
    "RunSize": "roboscale.train.sizing",
    "seconds_per_step": "roboscale.train.sizing",
    "size_model": "roboscale.train.sizing",
    "size_run": "roboscale.train.sizing",
    "evaluate": "roboscale.train.step",
    "learning_rate": "roboscale.train.step",
    "RunPlan": "roboscale.train.trainer",
    "plan_run": "roboscale.train.trainer",
    "prepare_data": "roboscale.train.trainer",
    "train": "roboscale.train.trainer",
    "train_batch": "roboscale.train.trainer",
}

__all__ = [
    "LADDER_WIDTHS",
    "ModelSize",
    "RunPlan",
    "RunSize",
    "TrainConfig",
    "check_width",
    "default_lr",
    "evaluate",
    "ladder_shape",
    "learning_rate",
    "plan_run",
    "prepare_data",
    "seconds_per_step",
    "size_model",
    "size_run",
    "stack_key",
    "train",
    "train_batch",
]


__getattr__ = lazy_exports(__name__, _TORCH_EXPORTS)


if TYPE_CHECKING:
    from roboscale.train.sizing import ModelSize, RunSize, seconds_per_step, size_model, size_run
    from roboscale.train.step import evaluate, learning_rate
    from roboscale.train.trainer import RunPlan, plan_run, prepare_data, train, train_batch
