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

from roboscale.study.spec import StudySpec
from roboscale.study.tune import study_lr
from roboscale.train import (
    RunSize,
    TrainConfig,
    prepare_data,
    seconds_per_step,
    size_model,
    size_run,
    stack_key,
)


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
    holdout: bool = False
    skip: str = ""
    """Why the run is left out ("" when it is part of the study)."""

    def row(self) -> dict:
        """The run as the run store's planned row."""
        return {
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


def run_id_for(config: TrainConfig, dataset_fingerprint: str) -> str:
    """A run's identity: a hash of its full configuration, with the dataset named by
    its content (so moving the data does not change the study)."""
    settings = config.to_dict()
    settings["data"] = dataset_fingerprint
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def plan_study(spec: StudySpec, dataset: str, *, calibrate: bool = False) -> StudyPlan:
    """The study's runs on ``dataset`` (a prepared LeRobot folder), each sized by the
    trainer's own rule (:func:`roboscale.train.size_run`)."""
    budgets = spec.budgets()
    levels = [(b, False) for b in budgets] + ([(10.0 * budgets[-1], True)] if spec.sweep.holdout_budget else [])
    runs: list[PlannedRun] = []
    warnings: list[str] = []
    rates: dict[tuple, float] = {}
    ladder: dict[tuple, dict[int, int]] = {}
    per_token: dict[tuple, dict[int, float]] = {}
    for task in spec.sweep.tasks:
        for tokenizer in spec.sweep.tokenizers:
            base = _config(spec, dataset, task, tokenizer, spec.sweep.widths[0], budgets[0], spec.sweep.seeds[0])
            base.validate()
            data, fingerprint = prepare_data(base)
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
                        f"{task} {tokenizer} at {budget:.3g} FLOPs: {usable} usable model size(s); an IsoFLOP "
                        "parabola needs 3 (widen the ladder, raise max_epochs, or change the budgets)"
                    )
    data_limited = [r for r in runs if r.skip.startswith("needs")]
    if data_limited:
        warnings.append(
            f"{len(data_limited)} run(s) left out because they would repeat the training data more than "
            f"max_epochs = {spec.sweep.max_epochs:g} times: generate more data or raise max_epochs to allow repeats"
        )
    return StudyPlan(spec, dataset, runs, warnings, rates, spec.executor.stack, ladder, per_token)


def _planned(
    config: TrainConfig, fingerprint: str, budget: float, size: RunSize, holdout: bool, skip: str
) -> PlannedRun:
    return PlannedRun(
        run_id=run_id_for(config, fingerprint),
        task=config.task,
        tokenizer=config.tokenizer,
        seed=config.seed,
        d_model=config.d_model,
        n_layer=size.model.model_config.n_layer,
        budget=budget,
        N=size.model.params["total"],
        steps=size.steps,
        tokens=size.tokens,
        epochs=size.epochs,
        config=config,
        holdout=holdout,
        skip=skip,
    )


def _config(
    spec: StudySpec, dataset: str, task: str, tokenizer: str, width: int, budget: float, seed: int
) -> TrainConfig:
    return TrainConfig(
        data=dataset,
        task=task,
        tokenizer=tokenizer,
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
        return f"needs {epochs:.1f} passes (max_epochs {spec.sweep.max_epochs:g})"
    return ""
