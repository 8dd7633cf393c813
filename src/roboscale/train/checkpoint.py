"""Checkpoints and run records on disk: safetensors and JSON, written atomically.

A checkpoint folder holds ``model.safetensors`` (weights), ``optimizer.safetensors``
(AdamW moments and step counts) and ``state.json`` (step, data-sampler RNG state,
running loss sums, the learning curve so far). Nothing is pickled. Every file is
written to a temporary name and renamed, and the folder itself is swapped in by
rename, so a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(temporary, path)


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Write a complete checkpoint to ``folder`` (replacing the previous one atomically)."""
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    weights = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(weights, staging / "model.safetensors")
    save_file(_optimizer_tensors(model, optimizer), staging / "optimizer.safetensors")
    (staging / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    retired = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if folder.exists():
        os.rename(folder, retired)
    os.rename(staging, folder)
    shutil.rmtree(retired, ignore_errors=True)


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    """Restore weights (and optimizer state) from ``folder``; returns its state dict."""
    device = next(model.parameters()).device
    model.load_state_dict(load_file(folder / "model.safetensors", device=str(device)))
    if optimizer is not None:
        _restore_optimizer(model, optimizer, load_file(folder / "optimizer.safetensors"), device)
    return json.loads((folder / "state.json").read_text())


def has_checkpoint(folder: Path) -> bool:
    return all((folder / name).exists() for name in ("model.safetensors", "optimizer.safetensors", "state.json"))


def _optimizer_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    tensors = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for key, value in optimizer.state.get(parameter, {}).items():
                tensor = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"{names[id(parameter)]}::{key}"] = tensor.detach().cpu().contiguous()
    return tensors


def _restore_optimizer(model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict, device) -> None:
    by_name = dict(model.named_parameters())
    for key, tensor in tensors.items():
        name, field = key.split("::")
        # Unfused, non-capturable AdamW keeps its step counter on the CPU.
        on_cpu = field == "step" and not (optimizer.defaults.get("fused") or optimizer.defaults.get("capturable"))
        optimizer.state[by_name[name]][field] = tensor.clone() if on_cpu else tensor.to(device)
