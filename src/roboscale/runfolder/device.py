"""The device a run trains or is evaluated on."""

from __future__ import annotations

import torch

from roboscale.errors import BadInputError


def resolve_device(choice: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` must be present."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda but no CUDA device is available: use --device cpu or auto")
    if choice not in ("cpu", "cuda"):
        raise BadInputError(f"device {choice!r}: choose auto, cpu or cuda")
    return torch.device(choice)
