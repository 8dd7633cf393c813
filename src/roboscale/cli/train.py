"""`roboscale train`: one training run, resumable, with an exact cost record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import TextColumn
from rich.text import Text

import roboscale
from roboscale.cli.options import fields_in_source, options_from
from roboscale.cli.output import LateProgress, bar_columns, make_console
from roboscale.files import require_writable_folder

DEFAULT_STEPS = 1000
"""Run length when none of --steps, --tokens, --flops, --tokens-per-param is given."""

# Read from the source: importing roboscale.train loads torch, too slow for every CLI start.
TRAIN_CONFIG_FIELDS = fields_in_source(Path(roboscale.__file__).parent / "train" / "config.py", "TrainConfig")


@options_from(TRAIN_CONFIG_FIELDS, into="settings")
def train_command(
    settings: dict,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: runs/NAME from the settings).")
    ] = None,
) -> None:
    """Train a world model or behaviour-cloning policy; writes a run record and a checkpoint.

    Re-running the same command resumes from the last checkpoint (or returns at once if finished).
    """
    from roboscale.train.config import LENGTH_OPTIONS, TrainConfig, run_name

    if all(settings[name] is None for name in LENGTH_OPTIONS):
        settings = {**settings, "steps": DEFAULT_STEPS}
    config = TrainConfig(**settings)
    out = out or Path("runs") / run_name(config)
    require_writable_folder(out)
    config.validate()  # bad settings are refused before torch loads (train() checks them again, cheaply)

    from roboscale.train.trainer import finished_record, train  # torch loads here, not on every CLI start

    finished = finished_record(config, out)
    if finished is not None:
        _summary(finished, out, already_finished=True)
        return
    columns = bar_columns(
        "training",
        TextColumn("step {task.completed:.0f}/{task.total}"),
        TextColumn("{task.fields[rate]:,.0f} tokens/s"),
        TextColumn("loss {task.fields[loss]:.4f}"),
    )
    with LateProgress(columns, rate=0.0, loss=float("nan")) as bar:

        def update(step: int, total: int, metrics: dict) -> None:
            rate = metrics["tokens"] / max(metrics["train_seconds"], 1e-9)  # training alone, not validation
            bar.update(completed=step, total=total, loss=metrics["loss"], rate=rate)

        record = train(config, out, progress=update, notice=_warn)
    _summary(record, out)


def _warn(message: str) -> None:
    """One warning line on stderr (before the progress bar appears)."""
    Console(stderr=True).print(Text.assemble(("warning: ", "bold yellow"), message), soft_wrap=True, highlight=False)


def _summary(record: dict, out: Path, *, already_finished: bool = False) -> None:
    """What the run is and cost, its losses, and where its time went (training apart from validation).
    ``already_finished``: the run was found finished, nothing was trained now."""
    console = make_console()
    params = record["params"]
    if already_finished:
        console.print(
            f"[bold]{out}[/bold] holds this run, already finished: nothing to train (another --out trains anew)"
        )
    console.print(
        f"[bold]{out}[/bold]: {record['status']}, {record['steps']} steps, "
        f"N = {params['total']:,} parameters (embedding {params['embedding']:,}, transformer "
        f"{params['transformer']:,}, head {params['head']:,})"
    )
    final = record["final"]
    console.print(
        f"D = {record['tokens']:,} tokens ({record['epochs']:.2f} passes over the training data), "
        f"C = {record['C']:.3g} FLOPs (6N: {record['flops']['total']:.3g})"
    )
    train_loss = "-" if final.get("train_loss") is None else f"{final['train_loss']:.4f}"
    console.print(f"validation loss {final['val_loss']:.4f}, train loss {train_loss}")
    console.print(_time_line(record), highlight=False, soft_wrap=True)
    for warning in record.get("warnings", []) if already_finished else []:  # else given before training
        console.print(Text.assemble(("warning: ", "bold yellow"), warning), soft_wrap=True)


def _time_line(record: dict) -> str:
    """Training throughput over the optimiser steps alone (the record's train_tokens_per_second
    and train_flops_per_second), then the validation time; older records, without the
    validation timed apart, give what they have."""
    if "train_seconds" not in record:
        return f"{record['tokens_per_second']:,.0f} tokens/s, {record['flops_per_second'] / 1e9:.2f} GFLOP/s"
    seconds = max(record["train_seconds"], 1e-9)
    training = (
        f"training {record['tokens'] / seconds:,.0f} tokens/s, {record['C'] / seconds / 1e9:.2f} GFLOP/s "
        f"({record['train_seconds']:.1f} s of optimiser steps)"
    )
    if "validation_seconds" not in record:
        return f"{training}; {record['wall_seconds']:.1f} s with validation"
    validation = record["validation_seconds"]
    line = f"{training}; validation {validation:.1f} s at {len(record['learning_curve'])} point(s)"
    if validation > record["train_seconds"]:
        line += ", longer than the training (fewer --eval-points or --eval-windows shorten it)"
    return line
