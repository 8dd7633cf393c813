"""`roboscale tune`: the learning-rate sweep at a study's base width, written to tune.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from roboscale.cli.output import make_console, note
from roboscale.cli.study import _data_progress_note


def tune_command(
    file: Annotated[Path, typer.Argument(help="Study file (TOML) with an optional tune section.")],
) -> None:
    """Train the study's [tune] learning rates at [train] base_width and write the best
    per task and tokenizer to tune.json in the study folder; [train] lr = "tuned" uses it."""
    from roboscale.study import ensure_dataset, load_study  # torch loads here, not on every CLI start
    from roboscale.study.tune import run_tune, tune_budget, tune_path

    spec = load_study(file)
    dataset = ensure_dataset(spec, progress=_data_progress_note(spec))
    note(
        f"tuning {len(spec.tune.lrs)} learning rates x {len(spec.tune.seeds)} seed(s) at width"
        f" {spec.train.base_width} ({spec.train.parametrization}), {tune_budget(spec):.3g} FLOPs per run ..."
    )

    def announce(task: str, tokenizer: str, lr: float, loss: float) -> None:
        note(f"  {task} {tokenizer} lr {lr:g}: validation loss {loss:.4f}")

    results = run_tune(spec, dataset, progress=announce)
    table = Table(title=f"validation loss at width {spec.train.base_width} ({spec.train.parametrization})")
    table.add_column("task")
    table.add_column("tokenizer")
    for lr in spec.tune.lrs:
        table.add_column(f"lr {lr:g}", justify="right")
    table.add_column("best lr", justify="right")
    for result in results:
        cells = [f"{loss:.4f}" if math.isfinite(loss) else "diverged" for loss in result.losses]
        table.add_row(result.task, result.tokenizer, *cells, f"{result.best_lr:g}")
    console = make_console()
    console.print(table)
    console.print(f'wrote {tune_path(spec)}: set [train] lr = "tuned" in {file} to use it')
