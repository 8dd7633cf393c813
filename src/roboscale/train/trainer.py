"""The trainer: one run, one clean data point for a scaling law.

Run length comes from exactly one of steps, tokens, FLOPs or tokens per parameter,
and the learning-rate schedule (linear warmup, cosine decay to 10%) spans exactly
that length. Validation loss is measured at log-spaced steps, so the record holds a
learning curve in FLOPs for the frontier method, and at the end. The run record
(JSON) carries everything a fit needs: parameters by group, tokens seen, FLOPs
under each counting convention, losses, throughput and provenance.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

import roboscale
from roboscale.data import open_dataset
from roboscale.errors import BadInputError, RunDivergedError
from roboscale.models import ModelConfig, SequenceModel
from roboscale.tokenize import Tokenizer
from roboscale.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint, write_json_atomic
from roboscale.train.config import TrainConfig, config_diff
from roboscale.train.data import TokenizedData, action_spec_for, tokenize_dataset

Progress = Callable[[int, int, dict], None]
"""progress(step done, total steps, metrics)."""


@dataclass
class RunPlan:
    """A run's model, data and length, settled before the first step."""

    config: TrainConfig
    model_config: ModelConfig
    data: TokenizedData
    total_steps: int
    tokens_per_step: int
    flops_per_token: dict[str, float]
    """Per-token training FLOPs under each convention (exact, total, non_embedding; attention included)."""
    params: dict[str, int]
    eval_steps: list[int]
    dataset_fingerprint: str


def prepare_data(
    config: TrainConfig, tokenizers: tuple[Tokenizer, Tokenizer] | None = None
) -> tuple[TokenizedData, str]:
    """Open and validate the dataset, fit (or reuse) tokenizers, tokenize every frame.

    Returns the tokenized data and the dataset's fingerprint. Runs that share a
    dataset, task and tokenizers can share the result (see :func:`plan_run`).
    """
    config.validate()
    dataset = open_dataset(config.data)
    state_spec = config.state_spec()
    action_spec = action_spec_for(state_spec, config.action_spec())
    given = {} if tokenizers is None else {"state_tokenizer": tokenizers[0], "action_tokenizer": tokenizers[1]}
    data = tokenize_dataset(dataset, state_spec, action_spec, config.task, **given)
    data.windows("train")
    data.windows("validation")
    return data, dataset.fingerprint()


def size_model(config: TrainConfig, data: TokenizedData) -> tuple[ModelConfig, dict[str, int], dict[str, float]]:
    """The model a config asks for on this data: its shape, parameter groups and
    per-token training FLOPs under each convention (counted on the meta device,
    so no memory is used)."""
    n_layer, n_head = config.shape()
    model_config = ModelConfig(
        n_layer=n_layer,
        d_model=config.d_model,
        n_head=n_head,
        context_steps=config.context_steps,
        state_tokens=data.state_tokenizer.tokens,
        state_group=data.state_tokenizer.group,
        state_bins=data.state_tokenizer.bins,
        action_tokens=data.action_tokenizer.tokens,
        action_group=data.action_tokenizer.group,
        action_bins=data.action_tokenizer.bins,
        n_tasks=data.n_tasks,
    )
    with torch.device("meta"):
        model = SequenceModel(model_config)
    params = model.num_params()
    flops = {name: model.flops_per_token(config.task, params=name) for name in ("exact", "total", "non_embedding")}
    return model_config, params, flops


def plan_run(
    config: TrainConfig,
    *,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
    prepared: tuple[TokenizedData, str] | None = None,
) -> RunPlan:
    """Validate the config and dataset, fit tokenizers, size the model and the run.

    ``prepared``: the result of :func:`prepare_data` for the same dataset, task and
    tokenizers, to skip re-reading the data.
    """
    config.validate()
    data, fingerprint = prepared if prepared is not None else prepare_data(config, tokenizers)
    model_config, params, flops_per_token = size_model(config, data)
    tokens_per_step = config.batch_size * model_config.sequence_length
    total_steps = _total_steps(config, params["total"], tokens_per_step, flops_per_token[config.flops_convention])
    _check_memory(model_config, config, params["total"])
    return RunPlan(
        config=config,
        model_config=model_config,
        data=data,
        total_steps=total_steps,
        tokens_per_step=tokens_per_step,
        flops_per_token=flops_per_token,
        params=params,
        eval_steps=eval_schedule(total_steps, config.eval_points),
        dataset_fingerprint=fingerprint,
    )


def _total_steps(config: TrainConfig, n_params: int, tokens_per_step: int, flops_per_token: float) -> int:
    if config.steps is not None:
        return int(config.steps)
    if config.tokens is not None:
        tokens = config.tokens
    elif config.tokens_per_param is not None:
        tokens = config.tokens_per_param * n_params
    else:
        tokens = config.flops / flops_per_token
    steps = int(tokens // tokens_per_step)
    if steps < 1:
        one_step = tokens_per_step * flops_per_token
        raise BadInputError(
            f"the budget is smaller than one optimiser step ({tokens_per_step} tokens, {one_step:.3g} FLOPs "
            f"with this model and --batch-size {config.batch_size}): raise the budget or lower the batch size"
        )
    return steps


def eval_schedule(total_steps: int, points: int) -> list[int]:
    """Steps after which to evaluate: log-spaced from 1 to the last step."""
    raw = np.geomspace(1, total_steps, num=max(points, 1))
    return sorted({int(round(s)) for s in raw} | {total_steps})


def _check_memory(model_config: ModelConfig, config: TrainConfig, n_params: int) -> None:
    """Refuse, before training, a run whose rough peak memory exceeds what is available."""
    c = model_config
    tokens = config.batch_size * c.sequence_length
    activations = 4 * tokens * c.d_model * c.n_layer * (16 + 2 * c.mlp_ratio)  # bytes, fp32, kept for backward
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
    weights = 16 * n_params  # weights, gradients, two AdamW moments
    needed = activations + attention + logits + weights
    available = _available_memory()
    if available is not None and needed > 0.8 * available:
        raise BadInputError(
            f"this run needs about {needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB is available: "
            "lower --batch-size, --context-steps or --d-model"
        )


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


# -- training ---------------------------------------------------------------------------


def train(config: TrainConfig, out: str | Path, *, progress: Progress | None = None) -> dict:
    """Train (or resume, or find finished) the run in folder ``out``; returns its record.

    ``out`` holds ``config.json`` (frozen), ``tokenizers.json``, ``record.json`` and
    ``checkpoint/``. Re-running with the same config resumes from the last
    checkpoint, and returns at once if the run finished; another config is refused.
    """
    out = Path(out)
    config.validate()
    existing = _existing_run(out, config)
    if existing is not None and existing.get("status") == "finished":
        return existing
    resume = has_checkpoint(out / "checkpoint")
    tokenizers = _saved_tokenizers(out) if resume else None
    plan = plan_run(config, tokenizers=tokenizers)
    device = _device(config.device)
    torch.set_num_threads(config.thread_count())
    torch.manual_seed(config.seed)
    model = SequenceModel(plan.model_config).to(device)
    optimizer = _optimizer(model, config)
    sampler = np.random.default_rng([config.seed, 1])
    state = {"step": 0, "seconds": 0.0, "curve": [], "loss_sum": 0.0, "loss_steps": 0}
    if resume:
        state = load_checkpoint(out / "checkpoint", model, optimizer)
        if state["dataset_fingerprint"] != plan.dataset_fingerprint:
            raise BadInputError(f"the dataset {config.data} changed since {out} was started: start a new run")
        sampler.bit_generator.state = state["sampler"]
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", config.to_dict())
        write_json_atomic(out / "tokenizers.json", _tokenizer_payload(plan.data))
    return _run_loop(plan, model, optimizer, sampler, state, device, out, progress)


def _existing_run(out: Path, config: TrainConfig) -> dict | None:
    if not (out / "config.json").exists():
        if out.exists() and any(out.iterdir()):
            raise BadInputError(f"{out} exists and is not a run folder: choose another --out")
        return None
    import json

    saved = json.loads((out / "config.json").read_text())
    differences = config_diff(saved, config.to_dict())
    if differences:
        raise BadInputError(
            f"{out} holds a run with another configuration ({'; '.join(differences)}): "
            "use another --out, or the same settings to resume it"
        )
    record = out / "record.json"
    return json.loads(record.read_text()) if record.exists() else {}


def _saved_tokenizers(out: Path) -> tuple[Tokenizer, Tokenizer]:
    import json

    payload = json.loads((out / "tokenizers.json").read_text())
    return Tokenizer.from_dict(payload["state"]), Tokenizer.from_dict(payload["action"])


def _device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda but no CUDA device is available: use --device cpu or auto")
    return torch.device(choice)


def _optimizer(model: SequenceModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on the blocks' and heads' matrices only."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        matrix = parameter.dim() == 2 and (name.startswith("blocks.") or name.endswith("out.weight"))
        (decay if matrix else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused implementation is several times faster than the per-tensor loop on CPU
    # too, which matters for the small models a CPU study is made of.
    return torch.optim.AdamW(groups, lr=config.peak_lr(), betas=(0.9, 0.95), eps=1e-8, fused=True)


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio`` x peak at the last step."""
    peak = config.peak_lr()
    warmup = max(1, int(round(config.warmup_fraction * total_steps)))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - 1 - warmup)
    floor = config.min_lr_ratio * peak
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _fixed_windows(starts: np.ndarray, count: int) -> np.ndarray:
    """A fixed, evenly spread subset of window starts (the same at every evaluation)."""
    if len(starts) <= count:
        return starts
    return starts[np.linspace(0, len(starts) - 1, count).astype(np.int64)]


@torch.no_grad()
def evaluate(
    model: SequenceModel, data: TokenizedData, starts: np.ndarray, task: str, batch_size: int, device
) -> float:
    """Mean loss per predicted dimension over the windows beginning at ``starts``."""
    model.eval()
    total = count = 0.0
    for i in range(0, len(starts), batch_size):
        batch = data.batch(starts[i : i + batch_size], model.config.context_steps, device)
        loss_sum, dims = model.loss_terms(batch, task)
        total += float(loss_sum)
        count += float(dims)
    model.train()
    return total / max(count, 1.0)


def _run_loop(plan: RunPlan, model, optimizer, sampler, state, device, out: Path, progress) -> dict:
    config, data = plan.config, plan.data
    train_starts = data.windows("train")
    validation = _fixed_windows(data.windows("validation"), config.eval_windows)
    train_probe = _fixed_windows(train_starts, config.eval_windows)
    eval_batch = 4 * config.batch_size
    last_save = time.perf_counter()
    started = time.perf_counter() - state["seconds"]
    loss_sum = torch.tensor(state["loss_sum"], dtype=torch.float64)
    state.setdefault("train_seconds", 0.0)
    model.train()
    for step in range(state["step"], plan.total_steps):
        step_started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, plan.total_steps, config)
        batch = data.batch(sampler.choice(train_starts, size=config.batch_size), config.context_steps, device)
        loss, _ = model.loss(batch, config.task)
        if not torch.isfinite(loss):
            _record_failure(
                plan, state, device, out, f"diverged: the training loss became {float(loss)} at step {step + 1}"
            )
            raise RunDivergedError(f"{out}: the training loss became {float(loss)} at step {step + 1}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += loss.detach().double().cpu()
        state["loss_steps"] += 1
        state["train_seconds"] += time.perf_counter() - step_started
        done = step + 1
        if done in plan.eval_steps:
            state["seconds"] = time.perf_counter() - started
            point = _curve_point(plan, done, float(loss_sum) / state["loss_steps"], optimizer, state["seconds"])
            point["val_loss"] = evaluate(model, data, validation, config.task, eval_batch, device)
            state["curve"].append(point)
            loss_sum.zero_()
            state["loss_steps"] = 0
            state.update(step=done, loss_sum=0.0, sampler=sampler.bit_generator.state)
            state["dataset_fingerprint"] = plan.dataset_fingerprint
            finished = done == plan.total_steps
            if finished or time.perf_counter() - last_save >= config.checkpoint_seconds:
                save_checkpoint(out / "checkpoint", model, optimizer, state)
                last_save = time.perf_counter()
            record = _record(plan, state, device, status="finished" if finished else "running")
            if finished:
                record["final"]["train_loss"] = evaluate(model, data, train_probe, config.task, eval_batch, device)
            write_json_atomic(out / "record.json", record)
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(
                done,
                plan.total_steps,
                {"loss": float(loss.detach()), "seconds": elapsed, "tokens": done * plan.tokens_per_step},
            )
    return record


def _record_failure(plan: RunPlan, state: dict, device, out: Path, error: str) -> None:
    record = _record(plan, state, device, status="failed")
    record["error"] = error
    write_json_atomic(out / "record.json", record)


def _curve_point(plan: RunPlan, step: int, train_loss: float, optimizer, seconds: float) -> dict:
    tokens = step * plan.tokens_per_step
    return {
        "step": step,
        "tokens": tokens,
        "flops": tokens * plan.flops_per_token["exact"],
        "lr": optimizer.param_groups[0]["lr"],
        "train_loss": train_loss,
        "seconds": seconds,
    }


def _record(plan: RunPlan, state: dict, device, status: str) -> dict:
    config = plan.config
    steps = state["step"]
    tokens = steps * plan.tokens_per_step
    seconds = max(state["seconds"], 1e-9)
    train_tokens = plan.data.split_frames.get("train", 0) * plan.model_config.slots_per_step
    last = state["curve"][-1] if state["curve"] else {}
    return {
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
        "epochs": tokens / max(train_tokens, 1),
        "learning_curve": state["curve"],
        "final": {"val_loss": last.get("val_loss"), "train_loss": None, "lr": last.get("lr")},
        "tokens_per_second": tokens / seconds,
        "flops_per_second": tokens * plan.flops_per_token["exact"] / seconds,
        "wall_seconds": seconds,
        "train_seconds": state["train_seconds"],
        "train_flops_per_second": tokens * plan.flops_per_token["exact"] / max(state["train_seconds"], 1e-9),
        "dataset": {
            "path": str(Path(config.data).resolve()),
            "fingerprint": plan.dataset_fingerprint,
            "train_frames": plan.data.split_frames.get("train", 0),
            "validation_frames": plan.data.split_frames.get("validation", 0),
            "train_tokens": train_tokens,
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


def _tokenizer_payload(data: TokenizedData) -> dict:
    return {"state": data.state_tokenizer.to_dict(), "action": data.action_tokenizer.to_dict()}


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
