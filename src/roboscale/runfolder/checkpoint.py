"""Checkpoints on disk: safetensors and JSON, written atomically.

A checkpoint folder holds ``model.safetensors`` (weights), ``optimizer.safetensors``
(AdamW moments and step counts) and ``state.json`` (step, data-sampler RNG state,
running loss sums, the learning curve so far). Nothing is pickled. The files are
written into a staging folder beside it, which is swapped in by rename, so a crash
leaves the previous checkpoint intact.

A model trained in a stack of K (see :class:`roboscale.models.SequenceModel`) is
saved as its own slice ``index`` of every stacked tensor, in exactly the form of a
single model's checkpoint: a run's checkpoint does not depend on how many other
models it was trained with, and can be resumed alone or in another stack.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from roboscale.files import write_atomically, write_json_atomic
from roboscale.runfolder.layout import CHECKPOINT_FILES, CHECKPOINT_STATE, MODEL_WEIGHTS, OPTIMIZER_STATE


def save_checkpoint(
    folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict, index: int = 0
) -> None:
    """Write a complete checkpoint of stacked model ``index`` to ``folder`` (replacing
    the previous one atomically)."""
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    weights = {name: _slice(tensor, index) for name, tensor in model.state_dict().items()}
    # Through write_atomically for the file mode: safetensors alone writes 0600 whatever the umask.
    write_atomically(staging / MODEL_WEIGHTS, lambda path: save_file(weights, path))
    moments = _optimizer_tensors(model, optimizer, index)
    write_atomically(staging / OPTIMIZER_STATE, lambda path: save_file(moments, path))
    write_json_atomic(staging / CHECKPOINT_STATE, state)
    retired = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if folder.exists():
        os.rename(folder, retired)
    os.rename(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def load_checkpoint(
    folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, index: int = 0
) -> dict:
    """Restore weights (and optimizer state) of stacked model ``index`` from ``folder``;
    returns the checkpoint's state dict."""
    device = next(model.parameters()).device
    weights = load_file(folder / MODEL_WEIGHTS, device=str(device))
    current = model.state_dict()
    if set(weights) != set(current):
        raise ValueError(f"{folder} holds another model (parameters {sorted(set(weights) ^ set(current))[:3]})")
    with torch.no_grad():
        for name, tensor in weights.items():
            current[name][index : index + 1].copy_(tensor)
    if optimizer is not None:
        _restore_optimizer(model, optimizer, load_file(folder / OPTIMIZER_STATE), device, index)
    return json.loads((folder / CHECKPOINT_STATE).read_text())


def has_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a complete checkpoint (weights, optimizer state and state.json)."""
    return all((folder / name).exists() for name in CHECKPOINT_FILES)


def checkpoint_step(folder: Path) -> int:
    """The optimiser step the checkpoint in ``folder`` was saved at."""
    return int(json.loads((folder / CHECKPOINT_STATE).read_text())["step"])


def _slice(tensor: torch.Tensor, index: int) -> torch.Tensor:
    """Model ``index``'s part of a stacked tensor (leading model axis kept, length 1)."""
    return tensor[index : index + 1].detach().cpu().contiguous()


def _optimizer_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer, index: int) -> dict[str, torch.Tensor]:
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    tensors = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for key, value in optimizer.state.get(parameter, {}).items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                per_model = tensor.dim() > 0  # moments are stacked like the parameter; the step count is shared
                tensor = _slice(tensor, index) if per_model else tensor.detach().cpu().contiguous()
                tensors[f"{names[id(parameter)]}::{key}"] = tensor
    return tensors


def _restore_optimizer(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict, device, index: int
) -> None:
    by_name = dict(model.named_parameters())
    for key, tensor in tensors.items():
        name, field = key.split("::")
        parameter = by_name[name]
        state = optimizer.state[parameter]
        if tensor.dim() == 0:
            # Unfused, non-capturable AdamW keeps its step counter on the CPU.
            on_cpu = not (optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
            state[field] = tensor.clone() if on_cpu else tensor.to(device)
            continue
        if field not in state:
            state[field] = torch.zeros_like(parameter, memory_format=torch.preserve_format)
        state[field][index : index + 1].copy_(tensor.to(device))
