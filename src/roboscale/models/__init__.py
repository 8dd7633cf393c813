"""The model family: one decoder-only transformer, sized by a single ladder rule.

The settings and the ladder (:mod:`roboscale.models.settings`) need no torch; the model
itself (:mod:`roboscale.models.transformer`) loads torch on first use of one of its
names, so checking a study file or ``train`` options does not wait for it.
"""

from typing import TYPE_CHECKING

from roboscale.lazy import lazy_exports
from roboscale.models.settings import (
    LADDER_WIDTHS,
    PARAMETRIZATIONS,
    TASKS,
    WM_TARGETS,
    check_parametrization,
    check_width,
    ladder_shape,
)

_TORCH_EXPORTS = {
    "KVCache": "roboscale.models.transformer",
    "ModelConfig": "roboscale.models.transformer",
    "SequenceModel": "roboscale.models.transformer",
    "next_state_from_target": "roboscale.models.transformer",
    "wm_target_slots": "roboscale.models.transformer",
}

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


__getattr__ = lazy_exports(__name__, _TORCH_EXPORTS)


if TYPE_CHECKING:
    from roboscale.models.transformer import (
        KVCache,
        ModelConfig,
        SequenceModel,
        next_state_from_target,
        wm_target_slots,
    )
