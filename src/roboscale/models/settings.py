"""Model settings that need no torch: the tasks, parametrisations and world-model
targets a model knows, and the size ladder with its width check.

A study file or ``roboscale train`` options are checked with these before torch is
loaded (they are re-exported by :mod:`roboscale.models` and
:mod:`roboscale.models.transformer`, where they used to live).
"""

from __future__ import annotations

from roboscale.errors import BadInputError

TASKS = ("bc", "wm")
PARAMETRIZATIONS = ("standard", "mup")
WM_TARGETS = ("absolute", "delta")
"""What a world model predicts of each next state (see :func:`roboscale.models.transformer.wm_target_slots`)."""


def check_parametrization(parametrization: str, base_width: int) -> None:
    """Raise BadInputError unless ``parametrization`` is known and ``base_width`` is a positive integer."""
    if parametrization not in PARAMETRIZATIONS:
        raise BadInputError(f"parametrization {parametrization!r}: choose standard or mup")
    if isinstance(base_width, bool) or not isinstance(base_width, int) or base_width < 1:
        raise BadInputError(f"base_width={base_width!r}: muP's reference width must be a positive integer, e.g. 32")


def ladder_shape(d_model: int) -> tuple[int, int]:
    """(n_layer, n_head) for a width, the one rule behind the size ladder: depth
    grows with width (one layer per 32 dimensions, at least one) and heads are
    32 wide (one head below 64 dimensions)."""
    return max(1, round(d_model / 32)), max(1, d_model // 32)


def check_width(d_model, n_layer: int | None = None, n_head: int | None = None) -> None:
    """Raise BadInputError unless ``d_model`` (with ``n_layer``/``n_head``, or the ladder
    rule for what is not given) makes a model: the one rule for every width, whether
    it comes from ``--d-model``, a study's ``widths`` or a saved config."""
    if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
        raise BadInputError(f"d_model={d_model!r}: a width must be a positive integer, e.g. 16, 32 or 64")
    rule_layers, rule_heads = ladder_shape(d_model)
    layers, heads = n_layer or rule_layers, n_head or rule_heads
    if layers < 1 or heads < 1:
        raise BadInputError(f"n_layer={layers}, n_head={heads}: must be >= 1")
    if d_model % heads:
        nearby = [w for w in range(max(1, d_model - 32), d_model + 33) if w % (n_head or ladder_shape(w)[1]) == 0]
        closest = sorted(nearby, key=lambda w: abs(w - d_model))[:2]
        raise BadInputError(
            f"d_model={d_model} does not divide into {heads} heads of equal width"
            f" (heads: {'given' if n_head else 'one per 32 dimensions'}); use e.g. {' or '.join(map(str, sorted(closest)))}"
        )


LADDER_WIDTHS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
"""Widths of the size ladder: steps of about sqrt(2)."""
