"""The learning-rate sweep a study transfers: `roboscale tune` trains the study's
``[tune] lrs`` at ``[train] base_width`` (its data, tasks, tokenizers and training
settings; one budget) and writes the best peak learning rate per task and tokenizer
to ``tune.json`` in the study folder. With ``[train] lr = "tuned"`` the study's runs
start from it: unchanged at every width under muP (whose learning-rate multipliers
do the transfer), and under the standard parametrisation scaled from the base width
by the default rule (``default_lr(width) / default_lr(base_width)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from roboscale.errors import BadInputError
from roboscale.files import read_json_object, write_json_atomic
from roboscale.study.spec import StudySpec
from roboscale.train import TrainConfig, default_lr

TUNE_FILE = "tune.json"


def tune_path(spec: StudySpec) -> Path:
    return spec.folder() / TUNE_FILE


@dataclass(frozen=True)
class TuneResult:
    """Mean final validation loss per learning rate (inf: every seed diverged) and the best one."""

    task: str
    tokenizer: str
    losses: list[float]
    best_lr: float


def tune_budget(spec: StudySpec) -> float:
    """FLOPs per tuning run: ``[tune] budget``, or the study's smallest budget."""
    return spec.tune.budget or spec.budgets()[0]


def tune_configs(spec: StudySpec, dataset: str, task: str, tokenizer: str, lr: float) -> list[TrainConfig]:
    """The runs of one learning rate (one per ``[tune] seeds``), at the base width."""
    from roboscale.study.plan import _config  # the study's own run settings

    untuned = replace(spec, train=replace(spec.train, lr="rule"))
    base = _config(untuned, dataset, task, tokenizer, spec.train.base_width, tune_budget(spec), spec.tune.seeds[0])
    return [replace(base, lr=lr, seed=seed) for seed in spec.tune.seeds]


def run_tune(spec: StudySpec, dataset: str, progress=None) -> list[TuneResult]:
    """Train the sweep (each learning rate's seeds as one stack) and write tune.json
    atomically. Runs live in ``<study>/tune/`` and are reused when rerun.
    ``progress(task, tokenizer, lr, loss)`` is called after each learning rate."""
    from roboscale.train import train_batch  # torch loads here, not when a study is read

    results = []
    for task in spec.sweep.tasks:
        for tokenizer in spec.sweep.tokenizers:
            losses = []
            for lr in spec.tune.lrs:
                configs = tune_configs(spec, dataset, task, tokenizer, lr)
                for config in configs:
                    config.validate()
                name = f"{task}-{tokenizer.replace(':', '').replace('@', 'x')}-lr{lr:g}"
                outs = [spec.folder() / "tune" / name / f"s{config.seed}" for config in configs]
                records = train_batch(configs, outs)
                losses.append(_mean_final_loss(records))
                if progress is not None:
                    progress(task, tokenizer, lr, losses[-1])
            if not any(math.isfinite(loss) for loss in losses):
                raise BadInputError(f"{task} {tokenizer}: every learning rate of [tune] lrs diverged; try smaller ones")
            best = spec.tune.lrs[min(range(len(losses)), key=losses.__getitem__)]
            results.append(TuneResult(task, tokenizer, losses, best))
    write_json_atomic(tune_path(spec), tune_payload(spec, dataset, results))
    return results


def _mean_final_loss(records: list[dict]) -> float:
    losses = [record.get("final", {}).get("val_loss") for record in records]
    if any(loss is None or not math.isfinite(loss) for loss in losses):
        return math.inf
    return sum(losses) / len(losses)


def tune_payload(spec: StudySpec, dataset: str, results: list[TuneResult]) -> dict:
    """What tune.json holds: the sweep's settings, every loss, the best learning rates."""
    best: dict[str, dict[str, float]] = {}
    losses: dict[str, dict[str, list]] = {}
    for result in results:
        best.setdefault(result.task, {})[result.tokenizer] = result.best_lr
        # JSON has no infinity: a diverged learning rate is null.
        losses.setdefault(result.task, {})[result.tokenizer] = [
            loss if math.isfinite(loss) else None for loss in result.losses
        ]
    return {
        "parametrization": spec.train.parametrization,
        "base_width": spec.train.base_width,
        "budget": tune_budget(spec),
        "lrs": list(spec.tune.lrs),
        "seeds": list(spec.tune.seeds),
        "dataset": dataset,
        "val_loss": losses,
        "best_lr": best,
    }


def tuned_lrs(spec: StudySpec) -> dict[str, dict[str, float]]:
    """tune.json's best learning rates (task -> tokenizer -> lr), checked against the
    study: one line naming the fix when it is missing or was tuned for other settings."""
    path = tune_path(spec)
    if not path.is_file():
        raise BadInputError(
            f'[train] lr = "tuned" but {path} does not exist: run `roboscale tune {spec.source or "STUDY.toml"}` first'
        )
    fix = f"run `roboscale tune {spec.source or 'STUDY.toml'}` again"
    payload = read_json_object(path, fix, fix)
    for key in ("parametrization", "base_width"):
        if payload.get(key) != getattr(spec.train, key):
            raise BadInputError(
                f"{path} was tuned with {key} = {payload.get(key)!r}, the study has {getattr(spec.train, key)!r}:"
                " run `roboscale tune` again"
            )
    best = payload.get("best_lr", {})
    missing = [f"{t} {k}" for t in spec.sweep.tasks for k in spec.sweep.tokenizers if k not in best.get(t, {})]
    if missing:
        raise BadInputError(f"{path} has no learning rate for {', '.join(missing)}: run `roboscale tune` again")
    return best


def study_lr(spec: StudySpec, task: str, tokenizer: str, width: int) -> float:
    """The peak learning rate of the study's runs of ``task``/``tokenizer`` at ``width``
    (see ``[train] lr``), times ``[train] lr_scale``."""
    train, base = spec.train, spec.train.base_width
    mup = train.parametrization == "mup"
    if train.lr == "rule":
        lr = default_lr(base if mup else width)
    elif train.lr == "tuned":
        lr = tuned_lrs(spec)[task][tokenizer]
        if not mup:
            lr *= default_lr(width) / default_lr(base)
    else:
        lr = float(train.lr)
    return lr * train.lr_scale
