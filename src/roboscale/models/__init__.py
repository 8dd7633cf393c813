"""The model family: one decoder-only transformer, sized by a single ladder rule."""

from roboscale.models.transformer import (
    LADDER_WIDTHS,
    PARAMETRIZATIONS,
    TASKS,
    WM_TARGETS,
    KVCache,
    ModelConfig,
    SequenceModel,
    check_parametrization,
    check_width,
    ladder_shape,
    next_state_from_target,
    wm_target_slots,
)

__all__ = [
    "LADDER_WIDTHS",
    "PARAMETRIZATIONS",
    "TASKS",
    "WM_TARGETS",
    "KVCache",
    "ModelConfig",
    "SequenceModel",
    "check_parametrization",
    "check_width",
    "ladder_shape",
    "next_state_from_target",
    "wm_target_slots",
]
