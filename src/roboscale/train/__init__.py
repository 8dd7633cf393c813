"""Training: one run per call, each an exactly costed data point (parameters, tokens, FLOPs)."""

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
