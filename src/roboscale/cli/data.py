"""`roboscale data`: generate, inspect and import demonstration datasets."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from roboscale.cli.output import make_console, note
from roboscale.errors import BadInputError

app = typer.Typer(
    help="Generate, inspect and import demonstration datasets (LeRobot v3 folders).", no_args_is_help=True
)
import_app = typer.Typer(help="Import an existing dataset into roboscale's layout.", no_args_is_help=True)
app.add_typer(import_app, name="import")

Out = Annotated[Path, typer.Option("--out", help="Destination folder (must not exist unless --overwrite).")]
Overwrite = Annotated[
    bool, typer.Option(help="Replace an existing dataset at --out (only once the new one is complete).")
]
ValidationFraction = Annotated[float, typer.Option(help="Share of whole episodes held out for validation.")]
Seed = Annotated[int, typer.Option(help="Seed: the same seed gives byte-identical files.")]


@app.command("generate")
def generate_command(
    env: Annotated[
        str, typer.Option(help="Simulator: pointmass (numpy, built in) or metaworld (MuJoCo).")
    ] = "pointmass",
    tasks: Annotated[
        str, typer.Option(help="Task set (mt10, mt50, all) or comma-separated names (push-v3,reach-v3).")
    ] = "all",
    episodes: Annotated[
        int | None, typer.Option(help="Train + validation episodes (default 200; held-out-task episodes come on top).")
    ] = None,
    transitions: Annotated[int | None, typer.Option(help="Instead of --episodes: training frames to generate.")] = None,
    quality: Annotated[
        str, typer.Option(help="expert, noise:STD, epsilon:PROB, or both, e.g. noise:0.1+epsilon:0.05.")
    ] = "expert",
    random_episodes: Annotated[float, typer.Option(help="Fraction of episodes driven by a random policy.")] = 0.0,
    successful_only: Annotated[
        bool, typer.Option(help="Keep only episodes that solve the task (curated data).")
    ] = False,
    configs_per_task: Annotated[
        int | None, typer.Option(help="Distinct initial configurations per task (default: a new one per episode).")
    ] = None,
    num_tasks: Annotated[int | None, typer.Option(help="Train on a seeded subset of this many tasks.")] = None,
    heldout_tasks: Annotated[
        str, typer.Option(help="Comma-separated tasks kept out of training (own split; set aside before --num-tasks).")
    ] = "",
    validation_fraction: ValidationFraction = 0.1,
    max_steps: Annotated[int | None, typer.Option(help="Episode horizon in steps (default: the simulator's).")] = None,
    run_after_success: Annotated[bool, typer.Option(help="Keep stepping after the task is solved.")] = False,
    seed: Seed = 0,
    workers: Annotated[int, typer.Option(help="Worker processes (one simulator each).")] = 1,
    out: Annotated[
        Path | None, typer.Option("--out", help="Destination folder (default: data/ENV-TASKS-AMOUNT-sSEED).")
    ] = None,
    overwrite: Overwrite = False,
    file_size_mb: Annotated[float, typer.Option(help="Target size of each data parquet file.")] = 100.0,
    camera: Annotated[
        str,
        typer.Option(
            help="Record this camera's frames as observation.images.CAMERA (default: the env's first; "
            "pointmass: top, metaworld: corner2)."
        ),
    ] = "",
    image_size: Annotated[int, typer.Option(help="Camera frame size in pixels (square), with --camera.")] = 64,
) -> None:
    """Generate demonstrations with a scripted expert, with amount, quality and diversity as knobs."""
    from roboscale.data import GenerationSpec, Quality, generate
    from roboscale.data.generate import default_out

    spec = GenerationSpec(
        env=env,
        tasks=tasks,
        episodes=episodes,
        transitions=transitions,
        num_tasks=num_tasks,
        configs_per_task=configs_per_task,
        quality=Quality.parse(quality, random_episodes=random_episodes, successful_only=successful_only),
        validation_fraction=validation_fraction,
        heldout_tasks=tuple(t.strip() for t in heldout_tasks.split(",") if t.strip()),
        seed=seed,
        max_steps=max_steps,
        stop_on_success=not run_after_success,
        file_size_mb=file_size_mb,
        camera=camera,
        image_size=image_size,
    )
    spec.validate()
    out = default_out(spec) if out is None else out
    progress, update = _generation_progress()
    try:
        report = generate(spec, out, workers=workers, overwrite=overwrite, progress=update)
    finally:
        if progress.live.is_started:
            progress.stop()
    console = make_console()
    console.print(
        f"wrote {report.out}: {report.total_episodes} episodes ({', '.join(f'{k} {v}' for k, v in report.episodes.items())}), "
        f"{report.transitions} frames in {report.seconds:.1f} s "
        f"({report.total_episodes / report.seconds:.1f} episodes/s, {report.transitions / report.seconds:.0f} frames/s)"
    )
    rates = ", ".join(f"{task} {rate:.0%}" for task, rate in report.success_rate.items())
    console.print(f"success per task: {rates}")


def _generation_progress() -> tuple[Progress, Callable[[int, int, int, int | None], None]]:
    """A progress bar on stderr and the callback that drives it. The bar is shown from
    the first episode on, so a refusal before any work prints no empty bar."""
    columns = (
        BarColumn(bar_width=20),
        TextColumn("{task.completed:.0f}/{task.fields[expected]} episodes"),
        TextColumn("{task.fields[rate]:.1f} ep/s, {task.fields[frames_rate]:.0f} frames/s"),
        TextColumn("success {task.fields[success]:.0%}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=Console(stderr=True), transient=False)
    job = progress.add_task("generating", total=None, expected="?", rate=0.0, frames_rate=0.0, success=0.0)

    def update(done: int, frames: int, successes: int, expected: int | None) -> None:
        if not progress.live.is_started:
            progress.start()
        elapsed = max(progress.tasks[0].elapsed or 1e-9, 1e-9)
        progress.update(
            job,
            completed=done,
            total=expected,
            expected=expected if expected is not None else "?",
            rate=done / elapsed,
            frames_rate=frames / elapsed,
            success=successes / done,
        )

    return progress, update


@app.command()
def info(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Episodes, frames, tasks, success rate, quality knobs and size on disk of a dataset (validates it)."""
    from roboscale.data import open_dataset

    dataset = open_dataset(path)
    dataset.frames(check_values=True)  # read every frame: NaN/inf and shape problems surface here
    summary = dataset.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    console = make_console()
    console.print(
        f"[bold]{summary['path']}[/bold]  LeRobot {summary['codebase_version']}, robot {summary['robot_type']}, "
        f"{summary['fps']} fps"
    )
    size_mb = summary["size_on_disk_bytes"] / 1024 / 1024
    length = summary["episode_length"]
    console.print(
        f"{summary['episodes']} episodes, {summary['frames']} frames, {summary['tasks']} tasks, "
        f"state {summary['state_dim']} dims, action {summary['action_dim']} dims, {size_mb:.1f} MB on disk, "
        f"fingerprint {summary['fingerprint']}"
    )
    console.print(f"episode length: mean {length['mean']:.1f}, min {length['min']}, max {length['max']} steps")
    if "images" in summary:
        console.print("images: " + ", ".join(f"{key} {'x'.join(map(str, shape))}" for key, shape in summary["images"].items()))
    console.print("splits: " + ", ".join(f"{name} {count} episodes" for name, count in summary["splits"].items()))
    if "success_rate" in summary:
        console.print(f"success rate: {summary['success_rate']:.1%}")
    generation = summary.get("generation")
    if generation:
        shown = {k: v for k, v in generation.items() if v is not None}
        console.print("made with: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    table = Table(show_edge=False, header_style="bold", title="per task", title_justify="left")
    for name in ("task", "episodes", "frames", "success"):
        table.add_column(name, justify="left" if name == "task" else "right")
    for row in summary["per_task"]:
        success = f"{row['success_rate']:.0%}" if "success_rate" in row else "-"
        table.add_row(row["task"], str(row["episodes"]), str(row["frames"]), success)
    console.print(table)


@app.command()
def floor(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    task: Annotated[str, typer.Option(help="bc (predict actions) or wm (predict the next observation).")] = "bc",
    tokenizer: Annotated[
        str, typer.Option(help="State tokenizer as a study names it: uniform:BINS, quantile:BINS or continuous.")
    ] = "uniform:256",
    action_tokenizer: Annotated[
        str, typer.Option(help="Action tokenizer; empty: the state tokenizer's kind and bins (as training does).")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """The task's known (analytic) floor on data made with injected noise: the loss no model can beat."""
    from roboscale.data.floors import known_floor

    result = known_floor(path, task, tokenizer, action_tokenizer=action_tokenizer or None)
    if as_json:
        sys.stdout.write(json.dumps({"task": task, "tokenizer": tokenizer, **result.to_dict()}, indent=2) + "\n")
        return
    console = make_console()
    if result.loss is None:
        console.print(f"{task} · {tokenizer}: no known floor ({result.note})", highlight=False)
        return
    per_dim = ", ".join(f"{value:.3f}" for value in result.per_dim)
    console.print(f"{task} · {tokenizer}: known floor {result.loss:.4f} ({result.kind})", highlight=False)
    console.print(f"per dimension: {per_dim}", highlight=False, soft_wrap=True)
    console.print(result.note, highlight=False, soft_wrap=True)


@app.command("derive")
def derive_command(
    sources: Annotated[
        list[str],
        typer.Option(
            "--from",
            help="A source: NAME=PATH for all its training episodes, NAME=PATH:EPISODES for the first EPISODES "
            "(repeat for a mixture).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Destination folder (an identical derivation is reused).")],
    reference: Annotated[
        str, typer.Option(help="Source whose validation split and held-out tasks score every run (default: the first).")
    ] = "",
    tasks: Annotated[
        str, typer.Option(help="Comma-separated training tasks to keep from every source (default: all).")
    ] = "",
    overwrite: Annotated[bool, typer.Option(help="Replace a dataset at --out derived with another recipe.")] = False,
) -> None:
    """Cut one data level (a LeRobot v3 folder) from the first EPISODES training episodes of each source.

    Splits: train (every source's episodes), validation (the reference's whole validation split, at every level).

    Also validation.NAME (each other source's validation split) and heldout_tasks (the reference's).

    Levels are nested: 50 episodes of a source are its first 50 of 100. The same recipe again reuses --out.
    """
    import time

    from roboscale.data.derive import derive_dataset, recorded_recipe

    chosen = tuple(t.strip() for t in tasks.split(",") if t.strip()) or None
    takes = [_parse_take(text, chosen) for text in sources]
    before = recorded_recipe(out)
    started = time.perf_counter()
    dataset = derive_dataset(takes, out, reference=reference or (takes[0].name if takes else ""), overwrite=overwrite)
    reused = before is not None and before == recorded_recipe(out)
    counts = dataset.episodes.groupby("split", sort=False).size()
    train = dataset.episodes[dataset.episodes["split"] == "train"].groupby("source", sort=False).size()
    verb = "reused (same recipe)" if reused else f"wrote in {time.perf_counter() - started:.1f} s"
    make_console().print(
        f"{out}: {verb}; train {', '.join(f'{name} {n}' for name, n in train.items())} episodes; "
        + ", ".join(f"{split} {n}" for split, n in counts.items() if split != "train")
        + f"; {dataset.total_frames} frames",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _parse_take(text: str, tasks: tuple[str, ...] | None):
    """A --from value, NAME=PATH or NAME=PATH:EPISODES, as a SourceTake."""
    from roboscale.data.derive import SourceTake

    name, equals, rest = text.partition("=")
    if not equals or not name.strip() or not rest:
        raise BadInputError(f"--from {text!r}: write NAME=PATH or NAME=PATH:EPISODES (e.g. expert=data/mt10:100)")
    path, colon, amount = rest.rpartition(":")
    if not colon or not amount.strip().isdigit():
        return SourceTake(name.strip(), rest, None, tasks)
    return SourceTake(name.strip(), path, int(amount), tasks)


@import_app.command("lerobot")
def import_lerobot_command(
    source: Annotated[Path, typer.Argument(help="A local LeRobot v3 dataset folder.")],
    out: Out,
    validation_fraction: ValidationFraction = 0.1,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Import a local LeRobot v3 folder (states, actions, reward, success) with an episode-level split."""
    from roboscale.data import import_lerobot

    written = import_lerobot(source, out, validation_fraction=validation_fraction, seed=seed, overwrite=overwrite)
    note(f"imported {source} -> {written}")
    info(written, as_json=False)


@import_app.command("minari")
def import_minari_command(
    dataset: Annotated[str, typer.Argument(help="Local Minari dataset id (under MINARI_DATASETS_PATH) or its folder.")],
    out: Out,
    fps: Annotated[float, typer.Option(help="Control rate of the data (Minari does not record it).")] = 30.0,
    validation_fraction: ValidationFraction = 0.1,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    """Import a local Minari dataset (needs the minari extra, pip install -e ".[minari]" or roboscale\\[minari]); never downloads."""
    from roboscale.data import import_minari

    if fps <= 0:
        raise BadInputError(f"--fps {fps}: must be > 0")
    written = import_minari(
        dataset, out, fps=fps, validation_fraction=validation_fraction, seed=seed, overwrite=overwrite
    )
    note(f"imported {dataset} -> {written}")
    info(written, as_json=False)
