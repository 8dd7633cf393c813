"""`roboscale eval`: closed-loop success of a policy, open-loop error of a world model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TextColumn
from rich.table import Table

from roboscale.cli.output import LateProgress, bar_columns, make_console, note
from roboscale.errors import BadInputError, check_seed

MODES = ("auto", "closed-loop", "open-loop")


def eval_command(
    run: Annotated[Path, typer.Argument(help="Run folder (the --out of `roboscale train`).")],
    mode: Annotated[
        str, typer.Option(help="auto (closed-loop for bc runs, open-loop for wm runs), closed-loop or open-loop.")
    ] = "auto",
    env: Annotated[
        str | None, typer.Option(help="Simulator (default: the one the run's dataset was generated in).")
    ] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Tasks to roll out, names or a set (default: the tasks the run trained on).")
    ] = None,
    heldout_tasks: Annotated[
        bool, typer.Option("--heldout-tasks", help="Roll out the dataset's held-out tasks instead.")
    ] = False,
    episodes: Annotated[
        int, typer.Option(help="Closed loop: episodes per task. Open loop: validation episodes (at most).")
    ] = 50,
    seed: Annotated[
        int, typer.Option(help="Seed of the held-out configurations (and of sampling), from 0 to 2^63 - 1.")
    ] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes (results do not depend on it).")] = 1,
    envs: Annotated[int, typer.Option(help="Environments per worker, batched into one policy call.")] = 25,
    sample: Annotated[
        bool, typer.Option("--sample", help="Sample discrete actions instead of taking the argmax.")
    ] = False,
    max_steps: Annotated[int | None, typer.Option(help="Episode horizon (default: the dataset's).")] = None,
    horizons: Annotated[str, typer.Option(help="Open loop: prediction horizons in steps.")] = "1,5,20",
    starts: Annotated[int, typer.Option(help="Open loop: start frames per validation episode.")] = 4,
    data: Annotated[
        Path | None, typer.Option(help="The run's dataset, if it moved (must be the same dataset).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Evaluate a run: roll a behaviour-cloning policy out on held-out configurations (success with
    Wilson 95% intervals, return, length), or measure a world model's open-loop prediction error.
    Runs on camera frames are rolled out with their dataset's camera rendered every step, and image
    world models are scored in token space (code accuracy and cross-entropy, or patch MSE) and pixel
    space (PSNR of the decoded frames).

    Results are also written to RUN/eval/*.json.
    """
    from roboscale.runfolder import read_run_folder  # no torch: bad folders are refused at once

    if mode not in MODES:
        raise BadInputError(f"--mode {mode}: choose {', '.join(MODES)}")
    check_seed(seed)
    for option, count in {"--episodes": episodes, "--starts": starts, "--max-steps": max_steps}.items():
        if count is not None and count < 1:
            raise BadInputError(f"{option} {count}: must be at least 1")
    steps = _horizons(horizons)
    task = read_run_folder(run).task
    if mode == "open-loop" or (mode == "auto" and task == "wm"):
        _open_loop(run, steps, episodes, starts, data, device, as_json)
    else:
        settings = {
            "tasks": tasks,
            "heldout_tasks": heldout_tasks,
            "episodes": episodes,
            "seed": seed,
            "sample": sample,
        }
        _closed_loop(run, settings, max_steps, env, data, workers, envs, device, as_json)


def _closed_loop(run, settings, max_steps, env, data, workers, envs, device, as_json) -> None:
    from roboscale.evaluate.plan import plan_policy_evaluation

    plan = plan_policy_evaluation(run, max_steps=max_steps, env=env, data=data, **settings)
    for remark in plan.notes:
        note(remark)
    from roboscale.evaluate.closed_loop import run_policy_evaluation  # torch loads here

    # The bar measures environment steps against the horizon's budget (an episode that ends
    # early hands back the rest of its steps), so it moves from the first step on.
    columns = bar_columns(
        "rolling out",
        TextColumn("{task.fields[done]}/{task.fields[planned]} episodes"),
        TextColumn("success {task.fields[success]}"),
    )
    budget, planned = len(plan.episodes) * plan.max_steps, len(plan.episodes)
    counts = {"done": 0, "successes": 0, "steps": 0}
    with LateProgress(columns, done=0, planned=planned, success="-") as bar:

        def show() -> None:
            success = f"{counts['successes'] / counts['done']:.0%}" if counts["done"] else "-"
            bar.update(completed=counts["steps"], total=budget, done=counts["done"], success=success)

        def episode_done(result, total: int) -> None:
            counts["done"] += 1
            counts["successes"] += int(result.success)
            counts["steps"] += plan.max_steps - result.length
            show()

        def steps_taken(steps: int) -> None:
            counts["steps"] += steps
            show()

        evaluation = run_policy_evaluation(
            plan, workers=workers, envs=envs, device=device, progress=episode_done, steps_progress=steps_taken
        )
    if as_json:
        sys.stdout.write(json.dumps(evaluation.to_dict(), indent=2) + "\n")
        return
    _print_closed_loop(evaluation)


def _print_closed_loop(evaluation) -> None:
    console = make_console()
    console.print(
        f"[bold]{evaluation.run}[/bold]: checkpoint step {evaluation.checkpoint_step} ({evaluation.run_status}), "
        f"{evaluation.env}, {len(evaluation.tasks)} task(s) ({evaluation.task_selection}) x "
        f"{evaluation.episodes_per_task} episodes on held-out configurations (seed {evaluation.seed}), "
        f"{evaluation.decoding} actions, horizon {evaluation.max_steps} steps"
        + (_camera_text(evaluation.camera) if evaluation.camera else ""),
        highlight=False,
        soft_wrap=True,
    )
    table = Table(show_edge=False, header_style="bold")
    for name in ("task", "episodes", "success", "95% CI", "mean return", "mean length", "failed"):
        table.add_column(name, justify="left" if name == "task" else "right")
    for summary in [*evaluation.per_task, evaluation.mean]:
        table.add_row(
            summary.task,
            str(summary.episodes),
            f"{summary.success_rate:.1%}",
            f"{summary.ci_low:.1%} - {summary.ci_high:.1%}",
            f"{summary.mean_return:.2f}",
            f"{summary.mean_length:.1f}",
            str(summary.failures),
            end_section=summary is evaluation.per_task[-1],
        )
    console.print(table)
    timing = evaluation.timing
    console.print(
        f"{timing.env_steps:,} environment steps at {timing.steps_per_second:,.0f} steps/s per process "
        f"({timing.steps_per_policy_call:.1f} environments per policy call, "
        f"{timing.policy_seconds / max(timing.loop_seconds, 1e-12):.0%} of the time in the policy); "
        f"{evaluation.wall_seconds:.1f} s with {evaluation.workers} worker(s)",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"wrote {evaluation.path}", highlight=False, soft_wrap=True)


def _camera_text(camera: dict) -> str:
    """ ", seeing camera corner2 at 64x64 px (osmesa)" for a policy that sees images."""
    return f", seeing camera {camera['camera']} at {camera['size']}x{camera['size']} px ({camera['backend']})"


def _horizons(text: str) -> tuple[int, ...]:
    """``--horizons 1,5,20`` as step counts, each at least 1."""
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        steps = ()
    if not steps or min(steps) < 1:
        raise BadInputError(f"--horizons {text!r}: give comma-separated step counts of at least 1, e.g. 1,5,20")
    return steps


def _open_loop(run, horizons: tuple[int, ...], episodes: int, starts: int, data, device, as_json: bool) -> None:
    from roboscale.evaluate.world_model import evaluate_world_model  # torch loads here

    with LateProgress(bar_columns("predicting")) as bar:
        evaluation = evaluate_world_model(
            run,
            horizons=horizons,
            episodes=episodes,
            starts_per_episode=starts,
            data=data,
            device=device,
            progress=lambda done, total: bar.update(completed=done, total=total),
        )
    if as_json:
        sys.stdout.write(json.dumps(evaluation.to_dict(), indent=2) + "\n")
        return
    for remark in evaluation.notes:
        note(remark)
    console = make_console()
    console.print(
        f"[bold]{evaluation.run}[/bold]: checkpoint step {evaluation.checkpoint_step} ({evaluation.run_status}), "
        f"open-loop prediction on {len(evaluation.starts)} starts in {evaluation.episodes} validation episodes",
        highlight=False,
        soft_wrap=True,
    )
    if evaluation.image_tokenizer is None:
        _print_state_errors(console, evaluation)
    else:
        _print_image_errors(console, evaluation)
    _print_persistence_verdict(console, evaluation.persistence_warning)
    console.print(f"wrote {evaluation.path}", highlight=False, soft_wrap=True)


def _print_state_errors(console, evaluation) -> None:
    table = Table(show_edge=False, header_style="bold")
    columns = ("horizon", "predictions", "MSE (normalised)", "MSE (data units)", "persistence MSE (normalised)")
    for name in (*columns, "beats persistence"):
        table.add_column(name, justify="right")
    for error in evaluation.horizons:
        table.add_row(
            str(error.horizon),
            str(error.predictions),
            f"{error.mse_normalised:.4g}",
            f"{error.mse:.4g}",
            f"{error.persistence_mse_normalised:.4g}",
            _beats(error),
        )
    console.print(table)
    console.print(
        "normalised: squared error in units of each state dimension's standard deviation (meta/stats.json); "
        "persistence: predicting that the state does not change",
        highlight=False,
        soft_wrap=True,
    )


def _print_image_errors(console, evaluation) -> None:
    """Pixel-space (PSNR) and token-space errors of a world model that predicts camera frames."""
    vq = evaluation.horizons[0].code_accuracy is not None
    token_columns = ("code accuracy", "code CE (nats)") if vq else ("patch MSE",)
    table = Table(show_edge=False, header_style="bold")
    columns = ("horizon", "predictions", "PSNR dB", "tokenizer PSNR", "persistence PSNR")
    for name in (*columns, *token_columns, "beats persistence"):
        table.add_column(name, justify="right")
    for error in evaluation.horizons:
        tokens = (f"{error.code_accuracy:.1%}", f"{error.cross_entropy:.4g}") if vq else (f"{error.patch_mse:.4g}",)
        table.add_row(
            str(error.horizon),
            str(error.predictions),
            *(_psnr(value) for value in (error.psnr_db, error.reconstruction_psnr_db, error.persistence_psnr_db)),
            *tokens,
            _beats(error),
        )
    console.print(table)
    console.print(
        f"{evaluation.image_tokenizer} image tokens, greedy decoding; PSNR (dB): predicted frames decoded by the "
        "run's image tokenizer against the real frames (pixel values in [0, 1]); tokenizer PSNR: the real frames "
        "through the tokenizer and back (the ceiling); persistence: the last real frame's tokens; code CE: cross-entropy of "
        "the real code; patch MSE: of the normalised patch values; beats persistence compares pixel MSE in units of "
        "each channel's standard deviation",
        highlight=False,
        soft_wrap=True,
    )


def _psnr(value: float) -> str:
    """dB to 2 decimals; "exact" for identical frames (a lossless tokenizer's reconstruction)."""
    from roboscale.evaluate.images import PSNR_CAP_DB

    return "exact" if value >= PSNR_CAP_DB else f"{value:.2f}"


def _beats(error) -> str:
    return "[bold red]no[/bold red]" if error.worse_than_persistence else "yes"


def _print_persistence_verdict(console, warning: str | None) -> None:
    """Whether the world model beats predicting no change, in one line (red when it does not)."""
    if warning is None:
        console.print("better than predicting no change at every horizon", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold red]warning:[/bold red] this world model is {warning}", highlight=False, soft_wrap=True)
