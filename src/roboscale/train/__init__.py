"""Training: one run per call, each an exactly costed data point (parameters, tokens, FLOPs)."""

from roboscale.models import LADDER_WIDTHS, check_width, ladder_shape
from roboscale.train.config import TrainConfig, default_lr
from roboscale.train.trainer import (
    RunPlan,
    evaluate,
    learning_rate,
    plan_run,
    prepare_data,
    size_model,
    train,
    train_batch,
)

__all__ = [
    "LADDER_WIDTHS",
    "check_width",
    "ladder_shape",
    "RunPlan",
    "TrainConfig",
    "default_lr",
    "evaluate",
    "learning_rate",
    "plan_run",
    "prepare_data",
    "size_model",
    "train",
    "train_batch",
]
