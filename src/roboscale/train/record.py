"""A run's record: everything a fit needs, as plain JSON (written to ``record.json``).

Parameters by group, tokens seen, FLOPs under each counting convention, the
learning curve, throughput, the dataset and tokenizers it was trained on, and
provenance (versions, git revision, device, threads).
"""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

import roboscale

if TYPE_CHECKING:
    from roboscale.train.trainer import RunPlan


def curve_point(plan: RunPlan, step: int, train_loss: float, optimizer, seconds: float) -> dict:
    """One learning-curve point: step, tokens, FLOPs (exact), learning rate, mean training loss, seconds."""
    tokens = step * plan.tokens_per_step
    return {
        "step": step,
        "tokens": tokens,
        "flops": tokens * plan.flops_per_token["exact"],
        "lr": optimizer.param_groups[0]["lr"],
        "train_loss": train_loss,
        "seconds": seconds,
    }


def run_record(plan: RunPlan, state: dict, device, status: str) -> dict:
    """The record of a run at its training state (step, seconds, curve; see the trainer).

    Seconds and throughput: ``wall_seconds`` from the first step to the last evaluation
    point (validation and checkpoints included; ``tokens_per_second`` and
    ``flops_per_second`` divide by it); ``train_seconds`` in optimiser steps alone
    (``train_tokens_per_second``, ``train_flops_per_second``: the training throughput,
    exact FLOPs); ``validation_seconds`` in validation measurements, the final one and
    the final training-loss probe included. ``warnings``: what makes the result doubtful
    (e.g. too few steps), one line each. ``dataset.tokenizer_data``: the folder the
    tokenizers were fitted on, when not the training data. With image observations,
    ``image_tokenizer``: the image tokenizer's report (spec, tokens per frame,
    reconstruction error, its own training FLOPs: not part of C) and ``dataset.camera``
    the image feature seen. A finished run's record also
    holds ``final_split_losses`` and ``final_split_loss_se`` (split name -> nats, every
    ``validation*`` split and ``heldout_tasks``; set by the trainer at the last step)."""
    config = plan.config
    steps = state["step"]
    tokens = steps * plan.tokens_per_step
    seconds = max(state["seconds"], 1e-9)
    train_seconds = max(state["train_seconds"], 1e-9)
    last = state["curve"][-1] if state["curve"] else {}
    record = {
        "status": status,
        "config": config.to_dict(),
        "model": plan.model_config.to_dict(),
        "seed": config.seed,
        "task": config.task,
        "params": plan.params,
        "N": plan.params["total"],
        "steps": steps,
        "total_steps": plan.total_steps,
        "tokens": tokens,
        "D": tokens,
        "C": tokens * plan.flops_per_token["exact"],
        "flops": {name: tokens * per_token for name, per_token in plan.flops_per_token.items()},
        "flops_per_token": plan.flops_per_token,
        "epochs": plan.size.passes(tokens),
        "warnings": plan.warnings,
        "learning_curve": state["curve"],
        "final": {
            "val_loss": last.get("val_loss"),
            "val_loss_se": last.get("val_loss_se"),
            "train_loss": None,
            "lr": last.get("lr"),
        },
        "tokens_per_second": tokens / seconds,
        "flops_per_second": tokens * plan.flops_per_token["exact"] / seconds,
        "wall_seconds": seconds,
        "train_seconds": state["train_seconds"],
        "train_tokens_per_second": tokens / train_seconds,
        "train_flops_per_second": tokens * plan.flops_per_token["exact"] / train_seconds,
        "validation_seconds": state.get("validation_seconds", 0.0),
        "dataset": {
            "path": str(Path(config.data).resolve()),
            "fingerprint": plan.dataset_fingerprint,
            "train_frames": plan.data.split_frames.get("train", 0),
            "validation_frames": plan.data.split_frames.get("validation", 0),
            "train_tokens": plan.size.train_tokens,
        },
        "tokenizers": {
            stream: {
                "kind": tokenizer.kind,
                "bins": tokenizer.bins,
                "tokens": tokenizer.tokens,
                "group": tokenizer.group,
                "round_trip_error": plan.data.round_trip[stream],
            }
            for stream, tokenizer in (("state", plan.data.state_tokenizer), ("action", plan.data.action_tokenizer))
        },
        "device": str(device),
        "threads": torch.get_num_threads(),
        "versions": _versions(),
        "git_revision": _git_revision(),
    }
    if config.tokenizer_data:
        record["dataset"]["tokenizer_data"] = str(Path(config.tokenizer_data).resolve())
    if plan.data.image_tokenizer is not None:  # its training FLOPs are recorded there, not added to C
        record["image_tokenizer"] = plan.data.image_tokenizer.report()
        record["dataset"]["camera"] = plan.data.camera
    return record


def _versions() -> dict[str, str]:
    return {
        "roboscale": roboscale.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "safetensors": version("safetensors"),
    }


def _git_revision() -> str | None:
    root = Path(roboscale.__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        revision = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return revision + ("+dirty" if dirty else "")
