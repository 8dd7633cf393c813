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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

import roboscale
from roboscale.data import open_dataset
from roboscale.errors import BadInputError, RunDivergedError
from roboscale.files import write_json_atomic
from roboscale.models import ModelConfig, SequenceModel
from roboscale.tokenize import Tokenizer
from roboscale.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from roboscale.train.config import TrainConfig, config_diff
from roboscale.train.data import TokenizedData, action_spec_for, tokenize_dataset
from roboscale.train.resources import check_memory, resolve_device

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
    check_memory(model_config, config, params["total"])
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


# -- training ---------------------------------------------------------------------------


def train(config: TrainConfig, out: str | Path, *, progress: Progress | None = None) -> dict:
    """Train (or resume, or find finished) the run in folder ``out``; returns its record.

    ``out`` holds ``config.json`` (frozen), ``tokenizers.json``, ``record.json`` and
    ``checkpoint/``. Re-running with the same config resumes from the last
    checkpoint, and returns at once if the run finished; another config is refused.
    A run whose loss becomes NaN or infinite is recorded as failed and raises
    :class:`RunDivergedError`.
    """
    record = train_batch([config], [out], progress=progress)[0]
    if record.get("status") == "failed":
        raise RunDivergedError(f"{out}: {record.get('error')}")
    return record


def train_batch(
    configs: Sequence[TrainConfig], outs: Sequence[str | Path], *, progress: Progress | None = None
) -> list[dict]:
    """Train K runs that differ only in their seed as one computation; one record each.

    Every model has its own initialisation, data order and AdamW state (its seed),
    and the same budget and schedule; its folder, record and checkpoint are exactly
    those of :func:`train` with its config, so a run can be resumed alone or in
    another stack. FLOPs, tokens and throughput are counted per model. A model whose
    loss becomes NaN is recorded as failed and the others go on. Finished runs are
    returned as they are.
    """
    outs = [Path(out) for out in outs]
    _check_stackable(configs, outs)
    existing = [_existing_run(out, config) for config, out in zip(configs, outs, strict=True)]
    records = [record if record and record.get("status") == "finished" else None for record in existing]
    todo = [i for i, record in enumerate(records) if record is None]
    if todo:
        trained = _train_stack([configs[i] for i in todo], [outs[i] for i in todo], progress)
        for i, record in zip(todo, trained, strict=True):
            records[i] = record
    return records


def _check_stackable(configs: Sequence[TrainConfig], outs: Sequence[Path]) -> None:
    if not configs or len(configs) != len(outs):
        raise BadInputError("train_batch needs one output folder per config (and at least one config)")
    for config in configs:
        config.validate()
    first = {**configs[0].to_dict(), "seed": None}
    for config in configs[1:]:
        differences = config_diff(first, {**config.to_dict(), "seed": None})
        if differences:
            raise BadInputError(f"runs trained together may differ only in their seed, not in {'; '.join(differences)}")
    if len({str(out.resolve()) for out in outs}) != len(outs):
        raise BadInputError("runs trained together need distinct output folders")


def _train_stack(configs: list[TrainConfig], outs: list[Path], progress: Progress | None) -> list[dict]:
    """Build (or restore) the stack of models and train it to the end."""
    resume = _common_checkpoint_step(outs) is not None
    tokenizers = _saved_tokenizers(outs[0]) if resume else None
    first = plan_run(configs[0], tokenizers=tokenizers)
    check_memory(first.model_config, first.config, first.params["total"], n_models=len(configs))
    shared = (first.data, first.dataset_fingerprint)
    plans = [first] + [plan_run(config, prepared=shared) for config in configs[1:]]
    device = resolve_device(first.config.device)
    torch.set_num_threads(first.config.thread_count())
    model = SequenceModel(first.model_config, seeds=[config.seed for config in configs]).to(device)
    optimizer = _optimizer(model, first.config)
    samplers = [np.random.default_rng([config.seed, 1]) for config in configs]
    if resume:
        states = []
        for index, (out, sampler) in enumerate(zip(outs, samplers, strict=True)):
            state = load_checkpoint(out / "checkpoint", model, optimizer, index)
            if state["dataset_fingerprint"] != first.dataset_fingerprint:
                raise BadInputError(f"the dataset {first.config.data} changed since {out} was started: start a new run")
            sampler.bit_generator.state = state["sampler"]
            states.append(state)
    else:
        states = [_fresh_state() for _ in plans]
        for plan, out in zip(plans, outs, strict=True):
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "config.json", plan.config.to_dict())
            write_json_atomic(out / "tokenizers.json", _tokenizer_payload(plan.data))
    stack = _Stack(plans, outs, model, optimizer, samplers, states, device)
    return _run_loop(stack, progress)


def _common_checkpoint_step(outs: list[Path]) -> int | None:
    """The step every run's checkpoint is at, if all have one at the same step
    (otherwise the stack starts afresh: its models must stay in lockstep)."""
    import json

    steps = set()
    for out in outs:
        if not has_checkpoint(out / "checkpoint"):
            return None
        steps.add(json.loads((out / "checkpoint" / "state.json").read_text())["step"])
    return steps.pop() if len(steps) == 1 else None


def _fresh_state() -> dict:
    return {"step": 0, "seconds": 0.0, "train_seconds": 0.0, "curve": [], "loss_sum": 0.0, "loss_steps": 0}


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
) -> np.ndarray:
    """Mean loss per predicted dimension of each stacked model, shape (K,), over the
    windows beginning at ``starts`` (the same windows for every model)."""
    model.eval()
    n_models = model.n_models
    total = torch.zeros(n_models, dtype=torch.float64)
    count = torch.zeros(n_models, dtype=torch.float64)
    for i in range(0, len(starts), batch_size):
        windows = np.tile(starts[i : i + batch_size], n_models)
        loss_sum, dims = model.loss_terms(data.batch(windows, model.config.context_steps, device), task)
        total += loss_sum.double().cpu()
        count += dims.double().cpu()
    model.train()
    return (total / count.clamp_min(1.0)).numpy()


@dataclass
class _Stack:
    """K models in training together: their plans, folders, data samplers and state."""

    plans: list[RunPlan]
    outs: list[Path]
    model: SequenceModel
    optimizer: torch.optim.Optimizer
    samplers: list[np.random.Generator]
    states: list[dict]
    """Per model: step, seconds, train_seconds, curve, loss_sum, loss_steps (what a checkpoint stores)."""
    device: torch.device

    def record(self, index: int, status: str) -> dict:
        record = _record(self.plans[index], self.states[index], self.device, status)
        record["stack"] = {"models": len(self.plans), "index": index}
        return record


def _run_loop(stack: _Stack, progress: Progress | None) -> list[dict]:
    plan = stack.plans[0]  # every model has the same data, length and schedule
    config, data = plan.config, plan.data
    train_starts = data.windows("train")
    validation = _fixed_windows(data.windows("validation"), config.eval_windows)
    train_probe = _fixed_windows(train_starts, config.eval_windows)
    alive = torch.ones(len(stack.plans), dtype=torch.bool)
    records: list[dict | None] = [None] * len(stack.plans)
    first = stack.states[0]
    start_step = first["step"]
    last_save = time.perf_counter()
    started = time.perf_counter() - first["seconds"]
    train_seconds = first.get("train_seconds", 0.0)
    loss_sums = torch.tensor([state["loss_sum"] for state in stack.states], dtype=torch.float64)
    loss_steps = first["loss_steps"]
    stack.model.train()
    for step in range(start_step, plan.total_steps):
        step_started = time.perf_counter()
        for group in stack.optimizer.param_groups:
            group["lr"] = learning_rate(step, plan.total_steps, config)
        starts = np.concatenate([sampler.choice(train_starts, size=config.batch_size) for sampler in stack.samplers])
        losses, _ = stack.model.loss(data.batch(starts, config.context_steps, stack.device), config.task)
        finite = torch.isfinite(losses.detach()).cpu()
        for index in torch.nonzero(alive & ~finite).flatten().tolist():
            error = f"diverged: the training loss became {float(losses.detach()[index])} at step {step + 1}"
            records[index] = _record_failure(stack, index, error)
        alive &= finite
        if not alive.any():
            break
        on_device = alive.to(stack.device)
        torch.where(on_device, losses, torch.zeros_like(losses)).sum().backward()
        _clip_grad_norms(stack.model, config.grad_clip, on_device)
        stack.optimizer.step()
        stack.optimizer.zero_grad(set_to_none=True)
        loss_sums += torch.where(alive, losses.detach().double().cpu(), 0.0)
        loss_steps += 1
        train_seconds += time.perf_counter() - step_started
        done = step + 1
        if done in plan.eval_steps:
            seconds = time.perf_counter() - started
            point = {"seconds": seconds, "train_seconds": train_seconds, "loss_sums": loss_sums / loss_steps}
            saved = _evaluation_point(stack, done, point, alive, records, last_save, validation, train_probe)
            last_save = time.perf_counter() if saved else last_save
            loss_sums.zero_()
            loss_steps = 0
        if progress is not None:
            elapsed = time.perf_counter() - started
            metrics = {"loss": float(losses.detach()[alive].mean()), "seconds": elapsed}
            progress(done, plan.total_steps, {**metrics, "tokens": done * plan.tokens_per_step})
    if start_step == plan.total_steps:  # the last checkpoint was saved, its record was not
        point = {"seconds": first["seconds"], "train_seconds": train_seconds, "loss_sums": loss_sums}
        for state in stack.states:
            state["curve"].pop()  # measured again below
        _evaluation_point(stack, plan.total_steps, point, alive, records, last_save, validation, train_probe)
    return records


def _evaluation_point(
    stack: _Stack, done: int, point: dict, alive, records: list, last_save: float, validation, train_probe
) -> bool:
    """Validation loss of every live model at step ``done``: a learning-curve point,
    the record, and (when due) the checkpoint. Returns whether checkpoints were saved."""
    plan = stack.plans[0]
    config, data = plan.config, plan.data
    eval_batch = 4 * config.batch_size
    finished = done == plan.total_steps
    save = finished or time.perf_counter() - last_save >= config.checkpoint_seconds
    validation_loss = evaluate(stack.model, data, validation, config.task, eval_batch, stack.device)
    probe = evaluate(stack.model, data, train_probe, config.task, eval_batch, stack.device) if finished else None
    for index in torch.nonzero(alive).flatten().tolist():
        state = stack.states[index]
        curve_point = _curve_point(
            stack.plans[index], done, float(point["loss_sums"][index]), stack.optimizer, point["seconds"]
        )
        curve_point["val_loss"] = float(validation_loss[index])
        state["curve"].append(curve_point)
        state.update(step=done, seconds=point["seconds"], train_seconds=point["train_seconds"])
        state.update(loss_sum=0.0, loss_steps=0, sampler=stack.samplers[index].bit_generator.state)
        state["dataset_fingerprint"] = plan.dataset_fingerprint
        if save:
            save_checkpoint(stack.outs[index] / "checkpoint", stack.model, stack.optimizer, state, index)
        record = stack.record(index, "finished" if finished else "running")
        if finished:
            record["final"]["train_loss"] = float(probe[index])
        write_json_atomic(stack.outs[index] / "record.json", record)
        records[index] = record
    return save


def _clip_grad_norms(model: SequenceModel, max_norm: float, alive: torch.Tensor) -> None:
    """``clip_grad_norm_`` for each stacked model on its own: scale model k's gradients
    so that their global L2 norm is at most ``max_norm``. Models that are no longer
    ``alive`` (diverged) get zero gradients."""
    grads = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    n_models = model.n_models
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(n_models, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    everyone = bool(alive.all())
    for g in grads:
        g.mul_(scale.view(n_models, *([1] * (g.dim() - 1))))
        if not everyone:
            g.masked_fill_(~alive.view(n_models, *([1] * (g.dim() - 1))), 0.0)


def _record_failure(stack: _Stack, index: int, error: str) -> dict:
    record = stack.record(index, "failed")
    record["error"] = error
    write_json_atomic(stack.outs[index] / "record.json", record)
    return record


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
