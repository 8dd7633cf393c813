"""The trainer: one run, one clean data point for a scaling law.

Run length comes from exactly one of steps, tokens, FLOPs or tokens per parameter
(sized by :mod:`roboscale.train.sizing`), and the learning-rate schedule (linear
warmup, cosine decay to 10%) spans exactly that length. Validation loss is measured
at log-spaced steps, so the record holds a learning curve in FLOPs for the frontier
method, and at the end. The run record (:mod:`roboscale.train.record`) carries
everything a fit needs. The run folder's files are laid out by
:mod:`roboscale.runfolder`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from roboscale.data import Dataset, open_dataset
from roboscale.errors import BadInputError, RunDivergedError
from roboscale.files import write_json_atomic
from roboscale.models import ModelConfig, SequenceModel
from roboscale.runfolder import RunLayout, read_json, tokenizer_payload, tokenizers_from_payload
from roboscale.runfolder.checkpoint import checkpoint_step, has_checkpoint, load_checkpoint, save_checkpoint
from roboscale.runfolder.device import resolve_device
from roboscale.runfolder.layout import IMAGE_TOKENIZER
from roboscale.tokenize import Tokenizer, action_spec_for
from roboscale.train.config import LENGTH_OPTIONS, TrainConfig, config_diff, stack_key
from roboscale.train.data import TokenizedData, fit_tokenizers, split_mask, tokenize_dataset
from roboscale.train.images import (
    camera_key,
    check_image_shape,
    check_tokenizer_data_images,
    fit_run_image_tokenizer,
    load_image_tokenizer,
    save_image_tokenizer,
)
from roboscale.train.record import curve_point, run_record
from roboscale.train.resources import check_memory
from roboscale.train.sizing import RunSize, require_a_step, size_run
from roboscale.train.step import evaluate, fixed_windows, learning_rate, make_optimizer, train_step
from roboscale.train.validation import split_losses, validation_loss

if TYPE_CHECKING:
    from roboscale.tokenize.image import ImageTokenizer

Progress = Callable[[int, int, dict], None]
"""progress(step done, total steps, metrics): metrics holds the mean training ``loss`` of
the step (nats), ``tokens`` trained so far, ``seconds`` since the start (validation
included) and ``train_seconds`` spent in optimiser steps alone."""

Notice = Callable[[str], None]
"""notice(message): a one-line warning for the user, given before training starts."""

MIN_STEPS = 30
"""Fewest optimiser steps a run should take for its loss to mean something (see
:func:`few_steps_warning`)."""


@dataclass
class RunPlan:
    """A run's model, data and length, settled before the first step."""

    config: TrainConfig
    size: RunSize
    data: TokenizedData
    eval_steps: list[int]
    dataset_fingerprint: str

    @property
    def model_config(self) -> ModelConfig:
        return self.size.model.model_config

    @property
    def params(self) -> dict[str, int]:
        return self.size.model.params

    @property
    def flops_per_token(self) -> dict[str, float]:
        """Per-token training FLOPs under each convention (exact, total, non_embedding; attention included)."""
        return self.size.model.flops_per_token

    @property
    def total_steps(self) -> int:
        return self.size.steps

    @property
    def tokens_per_step(self) -> int:
        return self.size.tokens_per_step

    @property
    def warnings(self) -> list[str]:
        """What makes this run's result doubtful, one line each (recorded in its record)."""
        few_steps = few_steps_warning(self.config, self.size)
        return [few_steps] if few_steps else []


def few_steps_warning(config: TrainConfig, size: RunSize) -> str | None:
    """A one-line warning when the run takes fewer than :data:`MIN_STEPS` optimiser steps,
    naming what gives it that many; None for a longer run.

    Why 30 steps: AdamW here (beta2 = 0.95) scales every update by an average of the
    squared gradient over about the last 1 / (1 - beta2) = 20 steps, so a shorter run
    takes most of its updates before the optimiser has settled, and its 5% warmup rounds
    to a single step. Its loss then measures the first moments of training, not what the
    model learns from the data: the README's Meta-World example at ``--flops 1e12`` took
    6 steps and ended at 4.4-5.0 nats, against ln 256 = 5.55 for a model that knows nothing.
    30 is also the shortest run a shipped study fits (the demo's ``min_steps``; the study
    planner's default, 50, is stricter), so every run a study trains passes.
    """
    if size.steps >= MIN_STEPS:
        return None
    length = next(name for name in LENGTH_OPTIONS if getattr(config, name) is not None)
    fixes = [] if length == "steps" else [f"raise --{length.replace('_', '-')} to {_length_for(config, size)}"]
    if length in ("flops", "tokens_per_param"):  # a smaller model takes more steps of the same budget
        fixes.append("train a smaller --d-model")
    fixes.append(f"give --steps {MIN_STEPS} or more")
    return (
        f"this run takes only {size.steps} optimiser step(s), fewer than {MIN_STEPS}: too few for its loss to "
        f"mean much (the optimiser and the warmup have not settled); {', or '.join(fixes)}"
    )


def _length_for(config: TrainConfig, size: RunSize, steps: int = MIN_STEPS) -> str:
    """The value of the run's --tokens, --flops or --tokens-per-param that buys ``steps``
    optimiser steps, as a command line takes it (rounded up: it buys no fewer)."""
    tokens = steps * size.tokens_per_step
    if config.tokens is not None:
        return str(tokens)
    if config.flops is not None:
        return _round_up(tokens * size.model.flops_per_token[config.flops_convention])
    return _round_up(tokens / size.model.params["total"])


def _round_up(value: float, digits: int = 3) -> str:
    """``value`` (> 0) rounded up to ``digits`` significant digits, as a command line takes
    it (e.g. 5.031e12 -> "5.04e12", 7.641 -> "7.65")."""
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    # Up a hair first: a budget that lands exactly on the last step can lose it to rounding.
    text = f"{math.ceil(value * (1 + 1e-9) / scale) * scale:.{digits}g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def prepare_data(
    config: TrainConfig,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
    image_tokenizer: ImageTokenizer | None = None,
) -> tuple[TokenizedData, str]:
    """Open and validate the dataset, fit (or reuse) tokenizers, tokenize every frame.

    ``config`` must be valid (:meth:`TrainConfig.validate`). Returns the tokenized
    data and the dataset's fingerprint. Runs that share a dataset, task and
    tokenizers can share the result (see :func:`plan_run`). With image observations
    the dataset's camera and the image tokenizer are checked before any frame is
    read, then the tokenizer (unless given, e.g. from the run folder) is fitted on the
    training split's frames (of ``tokenizer_data`` when given).
    """
    dataset = open_dataset(config.data)
    key = camera_key(config, dataset) if config.sees_images else ""
    if key:
        check_image_shape(config, dataset, key)
    state_spec = config.state_spec()
    action_spec = action_spec_for(state_spec, config.action_spec())
    fitted_on = _tokenizer_dataset(config, dataset) if config.tokenizer_data else None
    if key and fitted_on is not None:
        check_tokenizer_data_images(config, dataset, fitted_on, key)
    if tokenizers is None and fitted_on is not None:
        tokenizers = fit_tokenizers(fitted_on, state_spec, action_spec)
    given = {} if tokenizers is None else {"state_tokenizer": tokenizers[0], "action_tokenizer": tokenizers[1]}
    if key:
        frames = dataset.frames([key])[key]
        if image_tokenizer is None:
            train = fitted_on.frames([key], split="train")[key] if fitted_on is not None else None
            train = frames[split_mask(dataset, "train")] if train is None else train
            heldout = frames[split_mask(dataset, "validation")]
            image_tokenizer = fit_run_image_tokenizer(config, key, train, heldout)
        given.update(image_tokenizer=image_tokenizer, camera_frames=frames, camera=key)
    data = tokenize_dataset(dataset, state_spec, action_spec, config.task, sees_state=config.sees_state, **given)
    data.windows("train")
    data.windows("validation")
    return data, dataset.fingerprint()


def _tokenizer_dataset(config: TrainConfig, dataset: Dataset) -> Dataset:
    """The dataset ``config.tokenizer_data`` names, checked against the training data's spaces."""
    fitted_on = open_dataset(config.tokenizer_data)
    for feature in ("observation.state", "action"):
        ours, theirs = dataset.features[feature].shape, fitted_on.features[feature].shape
        if ours != theirs:
            raise BadInputError(
                f"--tokenizer-data {config.tokenizer_data} has {feature} of shape {list(theirs)}, the training "
                f"data {config.data} {list(ours)}: fit the tokenizers on data of the same robot"
            )
    return fitted_on


def plan_run(
    config: TrainConfig,
    *,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
    prepared: tuple[TokenizedData, str] | None = None,
    image_tokenizer: ImageTokenizer | None = None,
) -> RunPlan:
    """Check the dataset, fit tokenizers, size the model and the run, check its memory.

    ``config`` must be valid (:meth:`TrainConfig.validate`; :func:`train_batch`
    validates its configs). ``prepared``: the result of :func:`prepare_data` for the
    same dataset, task and tokenizers, to skip re-reading the data.
    """
    data, fingerprint = prepared if prepared is not None else prepare_data(config, tokenizers, image_tokenizer)
    size = size_run(config, data)
    require_a_step(config, size)
    check_memory(size.model.model_config, config, size.model.params["total"])
    return RunPlan(
        config=config,
        size=size,
        data=data,
        eval_steps=eval_schedule(size.steps, config.eval_points),
        dataset_fingerprint=fingerprint,
    )


def eval_schedule(total_steps: int, points: int) -> list[int]:
    """Steps after which to evaluate: log-spaced from 1 to the last step."""
    raw = np.geomspace(1, total_steps, num=max(points, 1))
    return sorted({round(float(s)) for s in raw} | {total_steps})


# -- training ---------------------------------------------------------------------------


def train(
    config: TrainConfig, out: str | Path, *, progress: Progress | None = None, notice: Notice | None = None
) -> dict:
    """Train (or resume, or find finished) the run in folder ``out``; returns its record.

    ``out`` is a run folder (:mod:`roboscale.runfolder`): config (frozen),
    tokenizers, record and checkpoint. Re-running with the same config resumes from
    the last checkpoint, and returns at once if the run finished (see
    :func:`finished_record`); another config is refused. A run whose loss becomes NaN
    or infinite is recorded as failed and raises :class:`RunDivergedError`.
    ``notice`` receives the run's warnings (e.g. too few steps) before its first step.
    """
    record = train_batch([config], [out], progress=progress, notice=notice)[0]
    if record.get("status") == "failed":
        raise RunDivergedError(f"{out}: {record.get('error')}")
    return record


def train_batch(
    configs: Sequence[TrainConfig],
    outs: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    notice: Notice | None = None,
) -> list[dict]:
    """Train K runs that differ only in their seed as one computation; one record each.

    Every model has its own initialisation, data order and AdamW state (its seed),
    and the same budget and schedule; its folder, record and checkpoint are exactly
    those of :func:`train` with its config, so a run can be resumed alone or in
    another stack. FLOPs, tokens and throughput are counted per model. A model whose
    loss becomes NaN is recorded as failed and the others go on. Finished runs are
    returned as they are. Every config is validated here, once, before any work.
    ``notice`` receives the stack's warnings (the same for every model) before its first step.
    """
    outs = [Path(out) for out in outs]
    _check_stackable(configs, outs)
    existing = [_existing_run(RunLayout.of(out), config) for config, out in zip(configs, outs, strict=True)]
    records = [record if record and record.get("status") == "finished" else None for record in existing]
    todo = [i for i, record in enumerate(records) if record is None]
    if todo:
        trained = _train_stack([configs[i] for i in todo], [outs[i] for i in todo], progress, notice)
        for i, record in zip(todo, trained, strict=True):
            records[i] = record
    return records


def finished_record(config: TrainConfig, out: str | Path) -> dict | None:
    """The record of the finished run of ``config`` in folder ``out`` (what :func:`train`
    would return at once), or None when it has not finished there yet. Validates
    ``config`` and refuses a folder of another run, as :func:`train` does."""
    config.validate()
    record = _existing_run(RunLayout.of(Path(out)), config)
    return record if record and record.get("status") == "finished" else None


def _check_stackable(configs: Sequence[TrainConfig], outs: Sequence[Path]) -> None:
    if not configs or len(configs) != len(outs):
        raise BadInputError("train_batch needs one output folder per config (and at least one config)")
    for config in configs:
        config.validate()
    shared = stack_key(configs[0])
    for config in configs[1:]:
        if stack_key(config) != shared:
            differences = config_diff(dict(shared), dict(stack_key(config)))
            raise BadInputError(f"runs trained together may differ only in their seed, not in {'; '.join(differences)}")
    if len({str(out.resolve()) for out in outs}) != len(outs):
        raise BadInputError("runs trained together need distinct output folders")


def _train_stack(
    configs: list[TrainConfig], outs: list[Path], progress: Progress | None, notice: Notice | None
) -> list[dict]:
    """Build (or restore) the stack of models and train it to the end."""
    layouts = [RunLayout.of(out) for out in outs]
    resume = _common_checkpoint_step(layouts) is not None
    tokenizers = tokenizers_from_payload(read_json(layouts[0].tokenizers)) if resume else None
    # A resumed run keeps the image tokenizer it started with (its saved copy).
    image_folder = layouts[0].root / IMAGE_TOKENIZER
    image_tokenizer = load_image_tokenizer(image_folder) if resume and configs[0].sees_images else None
    first = plan_run(configs[0], tokenizers=tokenizers, image_tokenizer=image_tokenizer)
    check_memory(first.model_config, first.config, first.params["total"], n_models=len(configs))
    shared = (first.data, first.dataset_fingerprint)
    plans = [first] + [plan_run(config, prepared=shared) for config in configs[1:]]
    for warning in first.warnings if notice is not None else []:
        notice(warning)
    device = resolve_device(first.config.device)
    torch.set_num_threads(first.config.thread_count())
    model = SequenceModel(first.model_config, seeds=[config.seed for config in configs]).to(device)
    optimizer = make_optimizer(model, first.config)
    samplers = [np.random.default_rng([config.seed, 1]) for config in configs]
    if resume:
        states = []
        for index, (layout, sampler) in enumerate(zip(layouts, samplers, strict=True)):
            state = load_checkpoint(layout.checkpoint, model, optimizer, index)
            if state["dataset_fingerprint"] != first.dataset_fingerprint:
                raise BadInputError(
                    f"the dataset {first.config.data} changed since {layout.root} was started: start a new run"
                )
            sampler.bit_generator.state = state["sampler"]
            states.append(state)
    else:
        states = [_fresh_state() for _ in plans]
        for plan, layout in zip(plans, layouts, strict=True):
            layout.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(layout.config, plan.config.to_dict())
            write_json_atomic(
                layout.tokenizers, tokenizer_payload(plan.data.state_tokenizer, plan.data.action_tokenizer)
            )
            if plan.data.image_tokenizer is not None:
                save_image_tokenizer(plan.data.image_tokenizer, layout.root / IMAGE_TOKENIZER)
    stack = _Stack(plans, layouts, model, optimizer, samplers, states, device)
    return _run_loop(stack, progress)


def _common_checkpoint_step(layouts: list[RunLayout]) -> int | None:
    """The step every run's checkpoint is at, if all have one at the same step
    (otherwise the stack starts afresh: its models must stay in lockstep)."""
    steps = set()
    for layout in layouts:
        if not has_checkpoint(layout.checkpoint):
            return None
        steps.add(checkpoint_step(layout.checkpoint))
    return steps.pop() if len(steps) == 1 else None


def _fresh_state() -> dict:
    return {
        "step": 0,
        "seconds": 0.0,
        "train_seconds": 0.0,
        "validation_seconds": 0.0,
        "curve": [],
        "loss_sum": 0.0,
        "loss_steps": 0,
    }


def _existing_run(layout: RunLayout, config: TrainConfig) -> dict | None:
    """The record of the run already in ``layout`` ({} if it has none yet), None for a
    new folder; refuses a folder of another run or of anything else."""
    if not layout.config.exists():
        if layout.root.exists() and any(layout.root.iterdir()):
            raise BadInputError(f"{layout.root} exists and is not a run folder: choose another --out")
        return None
    differences = config_diff(read_json(layout.config), config.to_dict())
    if differences:
        raise BadInputError(
            f"{layout.root} holds a run with another configuration ({'; '.join(differences)}): "
            "use another --out, or the same settings to resume it"
        )
    return read_json(layout.record) if layout.record.exists() else {}


@dataclass
class _Stack:
    """K models in training together: their plans, folders, data samplers and state."""

    plans: list[RunPlan]
    layouts: list[RunLayout]
    model: SequenceModel
    optimizer: torch.optim.Optimizer
    samplers: list[np.random.Generator]
    states: list[dict]
    """Per model: step, seconds, train_seconds, validation_seconds, curve, loss_sum, loss_steps
    (what a checkpoint stores)."""
    device: torch.device

    def record(self, index: int, status: str) -> dict:
        record = run_record(self.plans[index], self.states[index], self.device, status)
        record["stack"] = {"models": len(self.plans), "index": index}
        return record


def _run_loop(stack: _Stack, progress: Progress | None) -> list[dict]:
    plan = stack.plans[0]  # every model has the same data, length and schedule
    config, data = plan.config, plan.data
    train_starts = data.windows("train")
    validation = fixed_windows(data.windows("validation"), config.eval_windows)
    train_probe = fixed_windows(train_starts, config.eval_windows)
    alive = torch.ones(len(stack.plans), dtype=torch.bool)
    records: list[dict | None] = [None] * len(stack.plans)
    first = stack.states[0]
    start_step = first["step"]
    last_save = time.perf_counter()
    started = time.perf_counter() - first["seconds"]
    train_seconds = first.get("train_seconds", 0.0)
    validation_seconds = first.get("validation_seconds", 0.0)  # checkpoints before it was kept: 0
    loss_sums = torch.tensor([state["loss_sum"] for state in stack.states], dtype=torch.float64)
    loss_steps = first["loss_steps"]
    stack.model.train()
    for step in range(start_step, plan.total_steps):
        step_started = time.perf_counter()
        for group in stack.optimizer.param_groups:
            group["lr"] = learning_rate(step, plan.total_steps, config) * group.get("lr_scale", 1.0)
        starts = np.concatenate([sampler.choice(train_starts, size=config.batch_size) for sampler in stack.samplers])
        batch = data.batch(starts, config.context_steps, stack.device)
        was_alive = alive.clone()
        losses = train_step(stack.model, stack.optimizer, batch, config, alive)
        for index in torch.nonzero(was_alive & ~alive).flatten().tolist():
            error = f"diverged: the training loss became {float(losses.detach()[index])} at step {step + 1}"
            records[index] = _record_failure(stack, index, error)
        if not alive.any():
            break
        loss_sums += torch.where(alive, losses.detach().double().cpu(), 0.0)
        loss_steps += 1
        train_seconds += time.perf_counter() - step_started
        done = step + 1
        if done in plan.eval_steps:
            seconds = time.perf_counter() - started
            point = {
                "seconds": seconds,
                "train_seconds": train_seconds,
                "validation_seconds": validation_seconds,
                "loss_sums": loss_sums / loss_steps,
            }
            saved, validation_seconds = _evaluation_point(
                stack, done, point, alive, records, last_save, validation, train_probe
            )
            last_save = time.perf_counter() if saved else last_save
            loss_sums.zero_()
            loss_steps = 0
        if progress is not None:
            elapsed = time.perf_counter() - started
            metrics = {"loss": float(losses.detach()[alive].mean()), "seconds": elapsed, "train_seconds": train_seconds}
            progress(done, plan.total_steps, {**metrics, "tokens": done * plan.tokens_per_step})
    if start_step == plan.total_steps:  # the last checkpoint was saved, its record was not
        point = {
            "seconds": first["seconds"],
            "train_seconds": train_seconds,
            "validation_seconds": validation_seconds,
            "loss_sums": loss_sums,
        }
        for state in stack.states:
            state["curve"].pop()  # measured again below
        _evaluation_point(stack, plan.total_steps, point, alive, records, last_save, validation, train_probe)
    return records


def _evaluation_point(
    stack: _Stack, done: int, point: dict, alive, records: list, last_save: float, validation, train_probe
) -> tuple[bool, float]:
    """Validation loss of every live model at step ``done`` (with its episode-clustered
    standard error): a learning-curve point, the record, and (when due) the checkpoint.
    ``point``: the wall, training and validation seconds so far and the mean training
    losses since the last point. Returns whether checkpoints were saved, and the
    validation seconds so far, this measurement (and the final training-loss probe) included."""
    plan = stack.plans[0]
    config, data = plan.config, plan.data
    eval_batch = 4 * config.batch_size
    finished = done == plan.total_steps
    save = finished or time.perf_counter() - last_save >= config.checkpoint_seconds
    measuring = time.perf_counter()
    losses, standard_errors = validation_loss(stack.model, data, validation, config.task, eval_batch, stack.device)
    probe = evaluate(stack.model, data, train_probe, config.task, eval_batch, stack.device) if finished else None
    by_split = _final_split_losses(stack, (losses, standard_errors)) if finished else {}
    validation_seconds = point["validation_seconds"] + time.perf_counter() - measuring
    for index in torch.nonzero(alive).flatten().tolist():
        state = stack.states[index]
        measured = curve_point(
            stack.plans[index], done, float(point["loss_sums"][index]), stack.optimizer, point["seconds"]
        )
        measured["val_loss"] = float(losses[index])
        measured["val_loss_se"] = float(standard_errors[index])
        state["curve"].append(measured)
        state.update(step=done, seconds=point["seconds"], train_seconds=point["train_seconds"])
        state["validation_seconds"] = validation_seconds
        state.update(loss_sum=0.0, loss_steps=0, sampler=stack.samplers[index].bit_generator.state)
        state["dataset_fingerprint"] = plan.dataset_fingerprint
        if save:
            save_checkpoint(stack.layouts[index].checkpoint, stack.model, stack.optimizer, state, index)
        record = stack.record(index, "finished" if finished else "running")
        if finished:
            record["final"]["train_loss"] = float(probe[index])
            record["final_split_losses"] = {name: float(values[0][index]) for name, values in by_split.items()}
            record["final_split_loss_se"] = {name: float(values[1][index]) for name, values in by_split.items()}
        write_json_atomic(stack.layouts[index].record, record)
        records[index] = record
    return save, validation_seconds


def _final_split_losses(stack: _Stack, primary: tuple[np.ndarray, np.ndarray]) -> dict[str, tuple]:
    """Loss and standard error of every live model on every scored split (``validation*``,
    ``heldout_tasks``), each on its fixed windows as the primary validation set is measured;
    ``primary``: the validation split's, just measured."""
    config, data = stack.plans[0].config, stack.plans[0].data
    windows = {
        name: fixed_windows(data.windows(name), config.eval_windows)
        for name in data.scored_splits()
        if name != "validation"
    }
    measured = split_losses(stack.model, data, windows, config.task, 4 * config.batch_size, stack.device)
    return {name: primary if name == "validation" else measured[name] for name in data.scored_splits()}


def _record_failure(stack: _Stack, index: int, error: str) -> dict:
    record = stack.record(index, "failed")
    record["error"] = error
    write_json_atomic(stack.layouts[index].record, record)
    return record
