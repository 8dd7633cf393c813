"""`roboscale train`: one training run, resumable, with an exact cost record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from roboscale.cli.output import make_console


def train_command(
    data: Annotated[Path, typer.Option(help="Dataset folder (LeRobot v3, e.g. from roboscale data generate).")],
    task: Annotated[str, typer.Option(help="bc: predict actions; wm: predict the next observation.")] = "bc",
    tokenizer: Annotated[
        str,
        typer.Option(
            help="State tokenizer: uniform:BINS, quantile:BINS or continuous; @K for K tokens per observation."
        ),
    ] = "uniform:256",
    action_tokenizer: Annotated[
        str | None, typer.Option(help="Action tokenizer (default: the state tokenizer's kind and bins).")
    ] = None,
    d_model: Annotated[int, typer.Option(help="Width.")] = 64,
    n_layer: Annotated[int | None, typer.Option(help="Depth (default: the ladder rule, d_model / 32).")] = None,
    n_head: Annotated[int | None, typer.Option(help="Heads (default: 32-dimensional heads).")] = None,
    context_steps: Annotated[int, typer.Option(help="Timesteps per sequence.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 64,
    steps: Annotated[int | None, typer.Option(help="Run length in optimiser steps.")] = None,
    tokens: Annotated[float | None, typer.Option(help="Run length in training tokens.")] = None,
    flops: Annotated[float | None, typer.Option(help="Run length as a FLOP budget, e.g. 1e12.")] = None,
    tokens_per_param: Annotated[
        float | None, typer.Option(help="Run length as tokens per parameter (e.g. 20).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate (default: a width rule, see --help of the API).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and data order.")] = 0,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: all).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default: runs/NAME from the settings).")
    ] = None,
) -> None:
    """Train a world model or behaviour-cloning policy; writes a run record and a checkpoint.

    Re-running the same command resumes from the last checkpoint (or returns at once if finished).
    """
    from roboscale.train import TrainConfig, train  # torch loads here, not on every CLI start
    from roboscale.train.config import run_name

    if steps is None and tokens is None and flops is None and tokens_per_param is None:
        steps = 1000
    config = TrainConfig(
        data=str(data),
        task=task,
        tokenizer=tokenizer,
        action_tokenizer=action_tokenizer,
        d_model=d_model,
        n_layer=n_layer,
        n_head=n_head,
        context_steps=context_steps,
        batch_size=batch_size,
        steps=steps,
        tokens=tokens,
        flops=flops,
        tokens_per_param=tokens_per_param,
        lr=lr,
        seed=seed,
        threads=threads,
        device=device,
    )
    config.validate()
    out = out or Path("runs") / run_name(config)
    columns = (
        TextColumn("[bold]training[/bold]"),
        BarColumn(bar_width=24),
        TextColumn("step {task.completed:.0f}/{task.total}"),
        TextColumn("{task.fields[rate]:,.0f} tokens/s"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        job = bar.add_task("train", total=None, rate=0.0, loss=float("nan"))

        def update(step: int, total: int, metrics: dict) -> None:
            rate = metrics["tokens"] / max(metrics["seconds"], 1e-9)
            bar.update(job, completed=step, total=total, loss=metrics["loss"], rate=rate)

        record = train(config, out, progress=update)
    _summary(record, out)


def _summary(record: dict, out: Path) -> None:
    console = make_console()
    params = record["params"]
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
    console.print(
        f"validation loss {final['val_loss']:.4f}, train loss {train_loss}; "
        f"{record['tokens_per_second']:,.0f} tokens/s, {record['flops_per_second'] / 1e9:.2f} GFLOP/s, "
        f"{record['wall_seconds']:.1f} s"
    )
