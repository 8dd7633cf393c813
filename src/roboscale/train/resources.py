"""What a run asks of the machine: the memory it needs.

Settled before any work starts, so a run that cannot fit is refused with one line
(BadInputError) instead of failing mid-way. (The device is resolved by
:func:`roboscale.runfolder.device.resolve_device`.)
"""

from __future__ import annotations

from roboscale.errors import BadInputError
from roboscale.models import ModelConfig
from roboscale.train.config import TrainConfig


def _memory_bytes(model_config: ModelConfig, config: TrainConfig, n_params: int) -> float:
    """Rough peak memory of training one model: activations kept for backward, attention
    scores, logits and AdamW state, in bytes (fp32)."""
    c = model_config
    tokens = config.batch_size * c.sequence_length
    activations = 4 * tokens * c.d_model * c.n_layer * (16 + 2 * c.mlp_ratio)
    attention = 4 * config.batch_size * c.n_head * c.sequence_length**2 * c.n_layer * 2
    bins = max(c.state_bins, c.action_bins, 1)
    logits = (
        4
        * config.batch_size
        * c.context_steps
        * (c.state_tokens * c.state_group + c.action_tokens * c.action_group)
        * bins
        * 3
    )
    # Image head outputs: K logits per code, or P*P*C values per patch.
    logits += 4 * config.batch_size * c.context_steps * c.image_tokens * c.image_group * max(c.image_bins, 1) * 3
    weights = 16 * n_params  # weights, gradients, two AdamW moments
    return activations + attention + logits + weights


def check_memory(model_config: ModelConfig, config: TrainConfig, n_params: int, n_models: int = 1) -> None:
    """Refuse, before training, a run (or a stack of ``n_models``) whose rough peak
    memory exceeds what is available."""
    per_model = _memory_bytes(model_config, config, n_params)
    available = available_memory()
    if available is None or n_models * per_model <= 0.8 * available:
        return
    if n_models == 1:
        raise BadInputError(
            f"this run needs about {per_model / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is available: "
            "lower --batch-size, --context-steps or --d-model"
        )
    largest = int(0.8 * available // per_model)
    raise BadInputError(
        f"{n_models} models trained together need about {n_models * per_model / 2**30:.1f} GiB but "
        f"{available / 2**30:.1f} GiB is available: train at most {largest} at once"
    )


def available_memory() -> int | None:
    """Bytes the kernel reports available (MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
