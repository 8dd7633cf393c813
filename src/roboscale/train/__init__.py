"""Training: one run per call, each an exactly costed data point (parameters, tokens, FLOPs).

Sizing a run (:mod:`roboscale.train.sizing`) is public too, so a study plans the
runs the trainer will train.
"""

from roboscale.models import LADDER_WIDTHS, check_width, ladder_shape
from roboscale.train.config import TrainConfig, default_lr, stack_key
from roboscale.train.sizing import ModelSize, RunSize, seconds_per_step, size_model, size_run
from roboscale.train.step import evaluate, learning_rate
from roboscale.train.trainer import RunPlan, plan_run, prepare_data, train, train_batch

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
