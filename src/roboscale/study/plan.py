"""Planning a study: the IsoFLOP design, what the data can supply, and how long it will take.

For every task and tokenizer and every compute budget C, the ladder sizes nearest
the expected optimum ``N* = sqrt(C / (k r))`` (``r`` tokens per parameter, a prior;
``k`` each width's own training FLOPs per parameter per token under the study's
FLOP convention, known from its shape before training) are trained for exactly C
FLOPs. A size is left out, visibly, when its run would take fewer than ``min_steps`` optimiser steps (too few steps bend the right arm of
the IsoFLOP curve) or would need more than ``max_epochs`` passes over the training
data (data-constrained training). Every run logs a learning curve, which the
frontier method uses.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from roboscale.study.spec import StudySpec
from roboscale.study.tune import study_lr
from roboscale.train import TrainConfig, stack_key

if TYPE_CHECKING:
    from roboscale.train import RunSize


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the study (or a left-out one, with the reason)."""

    run_id: str
    task: str
    tokenizer: str
    seed: int
    d_model: int
    n_layer: int
    budget: float
    """Compute budget in FLOPs (the run's ``--flops``)."""
    N: int
    steps: int
    tokens: int
    epochs: float
    """Passes over the training data."""
    config: TrainConfig
    step_flops: float = 0.0
    """FLOPs of one optimiser step (under the study's FLOP convention)."""
    holdout: bool = False
    skip: str = ""
    """Why the run is left out ("" when it is part of the study)."""
    axis: str = ""
    """The data axes its level varies ("" in an IsoFLOP study)."""
    level: dict = field(default_factory=dict)
    """Its data level's columns (see :func:`roboscale.study.data_levels.level_columns`), with
    ``repetitions`` where the repetition axis sets the run's length; empty in an IsoFLOP study."""

    def row(self) -> dict:
        """The run as the run store's planned row."""
        return {
            "axis": self.axis,
            "level": self.level,
            "run_id": self.run_id,
            "task": self.task,
            "tokenizer": self.tokenizer,
            "seed": self.seed,
            "d_model": self.d_model,
            "n_layer": self.n_layer,
            "budget": self.budget,
            "holdout": self.holdout,
            "planned_flops": self.budget,
            "config": self.config.to_dict(),
        }


@dataclass
class StudyPlan:
    spec: StudySpec
    dataset: str
    runs: list[PlannedRun]
    warnings: list[str] = field(default_factory=list)
    seconds_per_step: dict[tuple, float] = field(default_factory=dict)
    """Measured seconds per optimiser step of one job (the stack of seeds that
    :func:`stack_runs` puts together) by (task, tokenizer, d_model), when calibrated."""
    max_stack: int = 1
    """``[executor] stack``: the most models one job may train together."""
    ladder: dict[tuple, dict[int, int]] = field(default_factory=dict)
    """Parameters of every ladder width, by (task, tokenizer)."""
    flops_per_token: dict[tuple, dict[int, float]] = field(default_factory=dict)
    """Training FLOPs per token of every ladder width under the study's FLOP convention,
    by (task, tokenizer): ``C = flops_per_token * D`` for a run of that width."""
    train_frames: int = 0
    """Frames in the dataset's training split (what ``max_epochs`` counts passes over)."""

    @property
    def active(self) -> list[PlannedRun]:
        return [run for run in self.runs if not run.skip]

    @property
    def total_flops(self) -> float:
        return sum(run.budget for run in self.active)

    def estimated_seconds(self, run: PlannedRun) -> float | None:
        """Estimated time of the job that trains ``run`` (with the other seeds of its stack)."""
        rate = self.seconds_per_step.get((run.task, run.tokenizer, run.d_model))
        return None if rate is None else rate * run.steps * 1.05  # evaluations add a few percent

    def estimated_wall_seconds(self, workers: int) -> float | None:
        """Longest-first scheduling of the jobs' estimated times on ``workers`` workers."""
        jobs = stack_runs(self.active, self.max_stack)
        times = [self.estimated_seconds(job[0]) for job in jobs]
        if not times or any(t is None for t in times):
            return None
        loads = [0.0] * max(workers, 1)
        for seconds in sorted(times, reverse=True):
            loads[loads.index(min(loads))] += seconds
        return max(loads)


STACK_TOKENS = 16384
"""Sequence positions per optimiser step (all models of a job together) up to which
stacking pays on a CPU. Measured (bench/batched_speed.py, 8 models, d_model 16):
3.9x the single-model throughput at 16 tokens per sequence (continuous), 1.6x at
40 (uniform:256@1), none at 344 (uniform:256, the demo): there the per-sample work
(attention over long sequences, 256-way softmaxes) already keeps one model busy."""


def stack_size(tokens_per_step: int, max_models: int) -> int:
    """How many same-shape models to train as one job: as many as fit in
    :data:`STACK_TOKENS` positions per step, at most ``max_models``, at least one."""
    return max(1, min(max_models, STACK_TOKENS // max(tokens_per_step, 1)))


def stack_runs(runs: list[PlannedRun], max_models: int) -> list[list[PlannedRun]]:
    """Runs grouped into jobs: runs whose configurations differ only in the seed train
    together (same shape, budget and schedule), :func:`stack_size` per job. The order
    of first appearance is kept."""
    groups: dict[tuple, list[PlannedRun]] = {}
    for run in runs:
        groups.setdefault(stack_key(run.config), []).append(run)
    jobs = []
    for group in groups.values():
        size = stack_size(group[0].tokens // max(group[0].steps, 1), max_models)
        jobs += [group[i : i + size] for i in range(0, len(group), size)]
    return jobs


def run_id_for(config: TrainConfig, dataset_fingerprint: str, tokenizer_fingerprint: str = "") -> str:
    """A run's identity: a hash of its full configuration, with the dataset (and the dataset
    its tokenizers are fitted on, when another) named by content (so moving the data does
    not change the study)."""
    settings = config.to_dict()
    settings["data"] = dataset_fingerprint
    if settings.get("tokenizer_data"):
        settings["tokenizer_data"] = tokenizer_fingerprint
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def plan_study(spec: StudySpec, dataset: str, *, calibrate: bool = False) -> StudyPlan:
    """The study's runs on ``dataset`` (a prepared LeRobot folder), each sized by the
    trainer's own rule (:func:`roboscale.train.size_run`)."""
    from roboscale.train import (  # torch loads here (sizing builds models)
        prepare_data,
        seconds_per_step,
        size_model,
        size_run,
    )

    budgets = spec.budgets()
    levels = [(b, False) for b in budgets] + ([(10.0 * budgets[-1], True)] if spec.sweep.holdout_budget else [])
    runs: list[PlannedRun] = []
    warnings: list[str] = []
    rates: dict[tuple, float] = {}
    ladder: dict[tuple, dict[int, int]] = {}
    per_token: dict[tuple, dict[int, float]] = {}
    train_frames = 0
    for task in spec.sweep.tasks:
        for tokenizer in spec.sweep.tokenizers:
            base = _config(spec, dataset, task, tokenizer, spec.sweep.widths[0], budgets[0], spec.sweep.seeds[0])
            base.validate()
            data, fingerprint = prepare_data(base)
            train_frames = data.split_frames.get("train", 0)  # the same frames for every task and tokenizer
            models = {width: size_model(_with(base, d_model=width), data) for width in spec.sweep.widths}
            ladder[(task, tokenizer)] = {width: model.params["total"] for width, model in models.items()}
            convention = spec.train.flops_convention
            per_token[(task, tokenizer)] = {w: model.flops_per_token[convention] for w, model in models.items()}
            if calibrate:
                for width, model in models.items():
                    config = _with(base, d_model=width)
                    tokens_per_step = size_run(config, data, model).tokens_per_step
                    stack = min(len(spec.sweep.seeds), stack_size(tokens_per_step, spec.executor.stack))
                    rates[(task, tokenizer, width)] = seconds_per_step(config, data, stack)
            for budget, is_holdout in levels:
                chosen = _sizes_near_optimum(
                    ladder[(task, tokenizer)],
                    per_token[(task, tokenizer)],
                    budget,
                    spec.sweep.tokens_per_param,
                    spec.sweep.sizes_per_budget,
                )
                usable = 0
                for width in chosen:
                    configs = [_config(spec, dataset, task, tokenizer, width, budget, s) for s in spec.sweep.seeds]
                    size = size_run(configs[0], data, models[width])  # the seed does not change the size
                    skip = _skip_reason(size.steps, size.epochs, spec)
                    usable += not skip
                    runs += [_planned(config, fingerprint, budget, size, is_holdout, skip) for config in configs]
                if usable < 3 and not is_holdout:
                    warnings.append(
                        f"{task} {tokenizer} at {_flops(budget)} FLOPs: {usable} usable model size(s); an IsoFLOP "
                        "parabola needs 3 (widen the ladder, raise max_epochs, or change the budgets)"
                    )
    data_limited = [r for r in runs if r.skip.startswith("needs")]
    if data_limited:
        warnings.append(f"{len(data_limited)} run(s) left out: {too_many_passes(spec, data_limited, train_frames)}")
    return StudyPlan(spec, dataset, runs, warnings, rates, spec.executor.stack, ladder, per_token, train_frames)


@dataclass(frozen=True)
class PreparedLevel:
    """A data level ready to plan: its derived dataset and its runs-table columns."""

    name: str
    axis: str
    dataset: str
    columns: dict
    """See :func:`roboscale.study.data_levels.level_columns`."""
    repetitions: tuple[float, ...] = ()
    """Passes over the level per run (empty: every run at the fixed budget)."""


def plan_axes(spec: StudySpec, reference: str, levels: list[PreparedLevel], *, calibrate: bool = False) -> StudyPlan:
    """A data-axes study's runs: every level x ``[axes] widths`` x repetition (or the fixed
    budget) x seed, for every task and tokenizer, with tokenizers fitted on ``reference``
    (the reference source's dataset). Runs are left out only for too few steps: passes over
    the data above ``max_epochs`` are what the amount and repetition axes measure, so they are
    kept, with a warning."""
    from roboscale.train import prepare_data, size_model  # torch loads here (sizing builds models)

    runs: list[PlannedRun] = []
    warnings: list[str] = []
    rates: dict[tuple, float] = {}
    ladder: dict[tuple, dict[int, int]] = {}
    per_token: dict[tuple, dict[int, float]] = {}
    widths = spec.axes.widths
    train_frames = 0
    for task in spec.sweep.tasks:
        for tokenizer in spec.sweep.tokenizers:
            base = _with(_config(spec, reference, task, tokenizer, widths[0], 1.0, 0), tokenizer_data=reference)
            base.validate()
            data, tokenizer_fingerprint = prepare_data(base)
            train_frames = data.split_frames.get("train", 0)
            models = {width: size_model(_with(base, d_model=width), data) for width in widths}
            ladder[(task, tokenizer)] = {width: model.params["total"] for width, model in models.items()}
            convention = spec.train.flops_convention
            per_token[(task, tokenizer)] = {w: model.flops_per_token[convention] for w, model in models.items()}
            if calibrate:
                rates.update(_calibrate(spec, base, data, models, task, tokenizer))
            for level in levels:
                runs += _level_runs(spec, _with(base, data=level.dataset), level, tokenizer_fingerprint)
    passes = [run for run in runs if not run.skip and run.epochs > spec.sweep.max_epochs]
    if passes:
        worst = max(passes, key=lambda run: run.epochs)
        warnings.append(
            f"{len(passes)} run(s) take more passes over their level's data than max_epochs = "
            f"{spec.sweep.max_epochs:g} (up to {_readable(worst.epochs)}: level {worst.level['level']}); kept, "
            "as repeated data is what the data axes measure"
        )
    few = [run for run in runs if run.skip]
    if few:
        warnings.append(f"{len(few)} run(s) left out: {_too_few_steps(spec, few)}")
    return StudyPlan(spec, reference, runs, warnings, rates, spec.executor.stack, ladder, per_token, train_frames)


def _calibrate(spec: StudySpec, base: TrainConfig, data, models: dict, task: str, tokenizer: str) -> dict:
    """Measured seconds per step of every width's job (a stack of the study's seeds)."""
    from roboscale.train import seconds_per_step, size_run  # torch loads here (sizing builds models)

    rates = {}
    for width, model in models.items():
        config = _with(base, d_model=width)
        tokens_per_step = size_run(config, data, model).tokens_per_step
        stack = min(len(spec.sweep.seeds), stack_size(tokens_per_step, spec.executor.stack))
        rates[(task, tokenizer, width)] = seconds_per_step(config, data, stack)
    return rates


def _level_runs(spec: StudySpec, base: TrainConfig, level: PreparedLevel, tokenizer_fingerprint: str) -> list:
    """One level's runs: every width x length (the budget, or each repetition) x seed."""
    from roboscale.train import prepare_data, size_model, size_run  # torch loads here (sizing builds models)

    data, fingerprint = prepare_data(base)
    runs = []
    for width in spec.axes.widths:
        config = _with(base, d_model=width)
        model = size_model(config, data)
        for repetitions in level.repetitions or (None,):
            if repetitions is None:
                length = {"flops": float(spec.axes.budget)}
            else:
                tokens = repetitions * data.split_frames.get("train", 0) * model.model_config.slots_per_step
                tokens_per_step = config.batch_size * model.model_config.sequence_length
                length = {"flops": None, "steps": max(1, round(tokens / tokens_per_step))}  # nearest whole step
            configs = [_with(config, seed=seed, **length) for seed in spec.sweep.seeds]
            size = size_run(configs[0], data, model)
            flops = size.tokens * model.flops_per_token[config.flops_convention]
            budget = spec.axes.budget if repetitions is None else flops
            skip = (
                f"too few steps ({size.steps} < min_steps {spec.sweep.min_steps})"
                if (size.steps < spec.sweep.min_steps)
                else ""
            )
            columns = {**level.columns, **({} if repetitions is None else {"repetitions": repetitions})}
            runs += [
                _planned(
                    c,
                    fingerprint,
                    budget,
                    size,
                    False,
                    skip,
                    tokenizer_fingerprint=tokenizer_fingerprint,
                    axis=level.axis,
                    level=columns,
                )
                for c in configs
            ]
    return runs


def _planned(
    config: TrainConfig,
    fingerprint: str,
    budget: float,
    size: RunSize,
    holdout: bool,
    skip: str,
    *,
    tokenizer_fingerprint: str = "",
    axis: str = "",
    level: dict | None = None,
) -> PlannedRun:
    return PlannedRun(
        run_id=run_id_for(config, fingerprint, tokenizer_fingerprint),
        axis=axis,
        level=level or {},
        task=config.task,
        tokenizer=factor_tokenizer(config),
        seed=config.seed,
        d_model=config.d_model,
        n_layer=size.model.model_config.n_layer,
        budget=budget,
        N=size.model.params["total"],
        steps=size.steps,
        tokens=size.tokens,
        epochs=size.epochs,
        step_flops=size.tokens_per_step * size.model.flops_per_token[config.flops_convention],
        config=config,
        holdout=holdout,
        skip=skip,
    )


def _config(
    spec: StudySpec, dataset: str, task: str, tokenizer: str, width: int, budget: float, seed: int
) -> TrainConfig:
    images = spec.sweep.observation != "state"
    return TrainConfig(
        data=dataset,
        task=task,
        tokenizer=spec.sweep.state_tokenizer if images else tokenizer,
        observation=spec.sweep.observation,
        image_tokenizer=tokenizer if images else "",
        camera=spec.sweep.camera,
        action_tokenizer=spec.sweep.action_tokenizer or None,
        d_model=width,
        flops=float(budget),
        seed=seed,
        context_steps=spec.train.context_steps,
        batch_size=spec.train.batch_size,
        eval_points=spec.train.eval_points,
        eval_windows=spec.train.eval_windows,
        flops_convention=spec.train.flops_convention,
        lr=study_lr(spec, task, tokenizer, width),
        wm_target=spec.train.wm_target if task == "wm" else "absolute",  # bc runs keep their ids
        threads=spec.executor.threads,
        device="auto",
        parametrization=spec.train.parametrization,
        base_width=spec.train.base_width,
    )


def factor_tokenizer(config: TrainConfig) -> str:
    """The tokenizer a run stands for in its study (its group in every fit): the image
    tokenizer when the run sees camera frames, else the state tokenizer."""
    return config.image_tokenizer or config.tokenizer


def _with(config: TrainConfig, **changes) -> TrainConfig:
    return TrainConfig(**{**config.to_dict(), **changes})


def _sizes_near_optimum(
    params: dict[int, int], flops_per_token: dict[int, float], budget: float, tokens_per_param: float, count: int
) -> list[int]:
    """The ``count`` ladder widths whose parameter counts (``params`` by width) are
    nearest (in log) to the prior optimum ``N* = sqrt(C / (k r))`` at ``budget`` C
    (FLOPs), with ``k`` each width's FLOPs per parameter per token
    (``flops_per_token / params``) and ``r = tokens_per_param``. Equivalently: the
    widths whose runs at C see nearest ``r`` tokens per parameter."""

    def distance(width: int) -> float:
        k = flops_per_token[width] / params[width]
        return abs(math.log(params[width] / math.sqrt(budget / (k * tokens_per_param))))

    return sorted(sorted(params, key=distance)[:count])


def _skip_reason(steps: int, epochs: float, spec: StudySpec) -> str:
    if steps < spec.sweep.min_steps:
        return f"too few steps ({steps} < min_steps {spec.sweep.min_steps})"
    if epochs > spec.sweep.max_epochs:
        return f"needs {_readable(epochs)} passes (max_epochs {spec.sweep.max_epochs:g})"
    return ""


def empty_plan_message(plan: StudyPlan) -> str:
    """Why a plan has no run left, and what would give it some (with the numbers)."""
    if not plan.runs:
        return "no run is left in the plan: the ladder is empty"
    few_steps = [run for run in plan.runs if run.skip.startswith("too few steps")]
    data_limited = [run for run in plan.runs if run.skip.startswith("needs")]
    reasons = []
    if few_steps:
        reasons.append(f"{len(few_steps)} run(s) {_too_few_steps(plan.spec, few_steps)}")
    if data_limited:
        reasons.append(f"{len(data_limited)} run(s) {too_many_passes(plan.spec, data_limited, plan.train_frames)}")
    return "no run is left in the plan: " + "; ".join(reasons)


def too_many_passes(spec: StudySpec, runs: list[PlannedRun], train_frames: int) -> str:
    """What makes ``runs`` (left out for needing more than ``max_epochs`` passes over
    the ``train_frames`` training frames) fit, with the numbers: more data, a higher
    ``max_epochs``, or smaller budgets (offered only while the runs would still take
    ``min_steps`` steps)."""
    worst = max(runs, key=lambda run: run.epochs)
    max_epochs = spec.sweep.max_epochs
    factor = worst.epochs / max_epochs
    fixes = [_more_data(spec, train_frames, factor), f"raise max_epochs to {_readable(_round(worst.epochs, up=True))}"]
    lowered = _round(worst.budget / factor, up=False)
    if lowered // worst.step_flops >= spec.sweep.min_steps:
        fixes.append(
            f"lower the budgets about {_readable(factor)}-fold ({_flops(worst.budget)} FLOPs to {_flops(lowered)})"
        )
    return (
        f"need more passes over the {train_frames:,} training frames than max_epochs = {max_epochs:g} allows "
        f"(up to {_readable(worst.epochs)}: d_model {worst.d_model} at {_flops(worst.budget)} FLOPs): " + _either(fixes)
    )


def _either(options: list[str]) -> str:
    """The options as a list in words: "a or b", "a, b, or c"."""
    if len(options) < 3:
        return " or ".join(options)
    return ", ".join(options[:-1]) + f", or {options[-1]}"


def _too_few_steps(spec: StudySpec, runs: list[PlannedRun]) -> str:
    """What gives ``runs`` (left out for taking fewer than ``min_steps`` steps) enough
    steps: the budget that buys ``min_steps`` steps of the most starved run."""
    min_steps = spec.sweep.min_steps
    worst = max(runs, key=lambda run: min_steps * run.step_flops / run.budget)
    needed = _round(min_steps * worst.step_flops, up=True)
    return (
        f"take too few steps ({worst.skip.removeprefix('too few steps (').removesuffix(')')} at "
        f"d_model {worst.d_model}, {_flops(worst.budget)} FLOPs): raise the budgets about "
        f"{_readable(needed / worst.budget)}-fold ({_flops(worst.budget)} FLOPs to {_flops(needed)}), "
        "lower min_steps or lower the batch size"
    )


def _more_data(spec: StudySpec, train_frames: int, factor: float) -> str:
    """The data that needs ``factor`` times fewer passes: in the study's own terms
    (episodes or transitions to generate), or a given dataset's training frames."""
    from roboscale.data.generate import DEFAULT_EPISODES

    generate = spec.data.generate
    if not generate:
        return f"use a dataset with at least {_readable(_round(train_frames * factor, up=True))} training frames"
    if "transitions" in generate:
        transitions = generate["transitions"]
        return f"generate at least {_readable(_round(transitions * factor, up=True))} transitions (now {transitions:,})"
    episodes = generate.get("episodes", DEFAULT_EPISODES)
    needed = episodes * factor * 1.05  # episode lengths vary: 5% more than in proportion
    return f"generate at least {_readable(_round(needed, up=True))} episodes (now {episodes:,})"


def _round(value: float, *, up: bool, digits: int = 2) -> float:
    """``value`` rounded up (or down) to ``digits`` significant digits: 1.68 -> 1.7, 104,320 -> 110,000."""
    if not (value > 0 and math.isfinite(value)):
        return value
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    steps = value / scale
    return (math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)) * scale


def _readable(value: float) -> str:
    """1.7, 12.5, 104,320: three significant digits below 100, whole numbers with commas from 100."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{float(f'{value:.3g}'):g}"


def _flops(value: float) -> str:
    """A FLOP count as 1e11 or 5.9e10 (two significant digits)."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
