"""The model family: one decoder-only transformer, sized by a single ladder rule."""

from roboscale.models.transformer import (
    LADDER_WIDTHS,
    PARAMETRIZATIONS,
    TASKS,
    ModelConfig,
    SequenceModel,
    check_parametrization,
    check_width,
    ladder_shape,
)

__all__ = [
    "LADDER_WIDTHS",
    "PARAMETRIZATIONS",
    "TASKS",
    "ModelConfig",
    "SequenceModel",
    "check_parametrization",
    "check_width",
    "ladder_shape",
]
