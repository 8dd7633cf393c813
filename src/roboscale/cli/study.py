"""`roboscale study`, `roboscale runs`, `roboscale report` and `roboscale demo`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from roboscale.cli.output import make_console, note
from roboscale.cli.render import number
from roboscale.errors import BadInputError

app = typer.Typer(help="Scaling studies: write, plan and run a study file.", no_args_is_help=True)
runs_app = typer.Typer(
    help="The runs of a study: list them or export them for `roboscale fit` and pandas.", no_args_is_help=True
)

StudyFile = Annotated[Path, typer.Argument(help="Study file (TOML).")]
StudyRef = Annotated[Path, typer.Argument(help="A study file or a study folder (with study.db).")]


def _spec_with(file: Path, executor: str | None, address: str | None, workers: int | None):
    from dataclasses import replace

    from roboscale.study import load_study

    spec = load_study(file)
    changes = {}
    if executor is not None:
        changes["kind"] = executor
    if address is not None:
        changes["address"] = address
    if workers is not None:
        changes["workers"] = workers
    if changes:
        from roboscale.study.spec import study_from_dict

        raw = spec.to_dict()
        raw["executor"] = {**raw["executor"], **changes}
        spec = replace(study_from_dict(raw, source=spec.source), source=spec.source)
    return spec


@app.command()
def init(
    file: Annotated[Path, typer.Argument(help="Where to write the example study file.")] = Path("study.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example study file (every value shown is its default)."""
    from roboscale.study import EXAMPLE

    if file.exists() and not force:
        raise BadInputError(f"{file} already exists: choose another name or pass --force")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(EXAMPLE)
    make_console().print(f"wrote {file}: edit it, then `roboscale study plan {file}` and `roboscale study run {file}`")


@app.command()
def plan(
    file: StudyFile,
    workers: Annotated[int | None, typer.Option(help="Workers to estimate the wall time for.")] = None,
    calibrate: Annotated[bool, typer.Option(help="Time a few steps of each model size on this machine.")] = True,
) -> None:
    """Print the planned runs, the total FLOPs and the estimated wall time (nothing is trained)."""
    from roboscale.study import prepare_study
    from roboscale.study.execute import local_workers

    spec = _spec_with(file, None, None, workers)
    study_plan, _ = prepare_study(spec, calibrate=calibrate, data_progress=_data_progress_note(spec))
    console = make_console()
    table = Table(show_edge=False, header_style="bold", title=f"Study {spec.name}: planned runs", title_justify="left")
    for name in (
        "task",
        "tokenizer",
        "budget (FLOPs)",
        "d_model",
        "layers",
        "N (params)",
        "steps",
        "tokens",
        "passes",
        "est. time (job)",
        "note",
    ):
        table.add_column(name, justify="left" if name in ("task", "tokenizer", "note") else "right")
    from roboscale.study.plan import stack_runs

    stacked = {run.run_id: len(job) for job in stack_runs(study_plan.active, spec.executor.stack) for run in job}
    for run in study_plan.runs:
        estimate = study_plan.estimated_seconds(run)
        note = run.skip or ("held-out budget" if run.holdout else f"seed {run.seed}")
        if stacked.get(run.run_id, 1) > 1:
            note += f" (one job of {stacked[run.run_id]} seeds)"
        table.add_row(
            run.task,
            run.tokenizer,
            number(run.budget, 3),
            str(run.d_model),
            str(run.n_layer),
            f"{run.N:,}",
            str(run.steps),
            number(float(run.tokens), 3),
            f"{run.epochs:.2f}",
            "-" if estimate is None else f"{estimate:.0f} s",
            note,
            style="dim" if run.skip else None,
        )
    console.print(table)
    workers_used = local_workers(spec.executor)
    wall = study_plan.estimated_wall_seconds(workers_used)
    console.print(
        f"{len(study_plan.active)} runs ({len(study_plan.runs) - len(study_plan.active)} left out), "
        f"total {study_plan.total_flops:.3g} FLOPs; "
        + (f"estimated wall time {wall / 60:.1f} min on {workers_used} worker(s)" if wall else "no time estimate")
    )
    for warning in study_plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@app.command()
def run(
    file: StudyFile,
    executor: Annotated[str | None, typer.Option(help="local or ray (overrides the study file).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (e.g. auto).")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the fits.")] = 1000,
) -> None:
    """Run a study: train every run not yet finished, record each, fit the laws and write the report."""
    spec = _spec_with(file, executor, address, workers)
    _run_and_summarise(spec, bootstrap)


def _data_progress_note(spec):
    announced = []

    def announce(done: int, frames: int, successes: int, expected: int | None) -> None:
        if not announced:
            note(f"generating the study's dataset in {spec.folder() / 'data'} ...")
            announced.append(True)

    return announce


def _run_and_summarise(spec, bootstrap: int) -> None:
    from roboscale.study import prepare_study
    from roboscale.study.execute import execute, local_workers, pending_runs
    from roboscale.study.plan import stack_runs
    from roboscale.study.run import analyze_study, write_study_report

    study_plan, store = prepare_study(spec, data_progress=_data_progress_note(spec))
    todo = pending_runs(study_plan.active, store, spec.executor.retry_failed)
    done_before = len(study_plan.active) - len(todo)
    workers = local_workers(spec.executor)
    jobs = stack_runs(todo, spec.executor.stack)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[runs]}"),
        TextColumn("{task.fields[flops]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    total_flops = sum(run.budget for run in todo)
    budgets = {run.run_id: run.budget for run in todo}
    recorded: set[str] = set()

    def runs_field(counts: dict) -> str:
        # Jobs go out in order, one per worker: the first unfinished ones are the running ones.
        unfinished = [job for job in jobs if any(run.run_id not in recorded for run in job)]
        running = sum(len(job) for job in unfinished[:workers]) if spec.executor.kind == "local" else 0
        left = len(todo) - len(recorded) - running
        failed = f", {counts['failed']} failed" if counts.get("failed") else ""
        busy = f"{running} running, " if running else ""
        return f"runs {done_before + counts.get('finished', 0)} done{failed}, {busy}{max(left, 0)} left"

    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"study {spec.name}", total=max(total_flops, 1.0), runs=runs_field({}), flops="")

        def update(outcome, counts) -> None:
            recorded.add(outcome.run_id)
            bar.advance(task, budgets.get(outcome.run_id, 0.0))
            flops_done = bar.tasks[0].completed
            bar.update(task, runs=runs_field(counts), flops=f"{flops_done:.2g}/{total_flops:.2g} FLOPs")

        if todo:
            where = f"{workers} worker(s)" if spec.executor.kind == "local" else "Ray"
            stacked = f" as {len(jobs)} job(s)" if len(jobs) < len(todo) else ""
            note(f"{len(todo)} run(s) to train{stacked} on {where}; {done_before} already finished")
        counts = execute(study_plan.active, store, spec.folder() / "runs", spec.executor, progress=update)
    errors = _evaluate_with_progress(spec, study_plan, store)
    analysis = analyze_study(spec, study_plan, store, bootstrap=bootstrap, warnings=errors)
    report = write_study_report(spec, analysis)
    _headline(analysis, report, counts)


def _evaluate_with_progress(spec, study_plan, store) -> list[str]:
    """Closed-loop evaluation of the bc runs ``[evaluate]`` asks for, with a progress bar."""
    from roboscale.study.run import evaluate_study, runs_to_evaluate

    todo = runs_to_evaluate(spec, study_plan, store)
    if not todo:
        return []
    note(f"closed-loop evaluation of {len(todo)} bc run(s), {spec.evaluate.episodes} episodes per task")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.completed:.0f}/{task.total:.0f} runs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("evaluate", total=len(todo))
        return evaluate_study(
            spec, study_plan, store, progress=lambda done, total, run_id: bar.update(task, completed=done)
        )


def _headline(analysis: dict, report: Path, counts: dict) -> None:
    console = make_console()
    failed = [r for r in analysis["runs"] if r["status"] == "failed"]
    console.print(f"[bold]report:[/bold] {report}")
    for group in analysis["groups"]:
        iso = group["isoflop"]
        line = f"[bold]{group['label']}[/bold]: "
        if "a" in iso:
            a_ci, b_ci = iso.get("ci", {}).get("a"), iso.get("ci", {}).get("b")
            line += f"N_opt ∝ C^{iso['a']:.3f}" + (f" [{a_ci[0]:.3f}, {a_ci[1]:.3f}]" if a_ci else "")
            line += f", D_opt ∝ C^{iso['b']:.3f}" + (f" [{b_ci[0]:.3f}, {b_ci[1]:.3f}]" if b_ci else "")
        else:
            line += f"IsoFLOP fit not possible ({iso.get('error', '?')[:120]})"
        audit = group["audit"].get("parametric", {})
        if "mean_abs_relative_error" in audit:
            line += (
                f"; forecast of the largest budget off by {100 * audit['mean_abs_relative_error']:.1f}% (parametric)"
            )
        console.print(line)
        if group.get("recommendation"):
            rec = group["recommendation"]
            console.print(
                f"  next run: {rec['budget']:.2g} FLOPs, d_model {rec['d_model']} ({rec['method']} law: "
                f"N_opt {rec['N']:.3g}, D_opt {rec['D']:.3g} tokens)"
            )
        success = group.get("success") or {}
        correlation = success.get("correlation") or {}
        if success.get("best_per_budget"):
            best = ", ".join(f"{b['success']:.0%} at {b['C']:.2g}" for b in success["best_per_budget"])
            line = f"  closed-loop success (best run per budget): {best}"
            if "pearson" in correlation:
                line += f"; loss vs success: Pearson r = {correlation['pearson']:.2f} over {correlation['n']} runs"
            console.print(line)
    if failed:
        console.print(f"[yellow]{len(failed)} run(s) failed[/yellow] (listed in the report)")


def _store_for(ref: Path):
    from roboscale.study import RunStore, load_study

    folder = load_study(ref).folder() if ref.is_file() else ref
    if not (folder / "study.db").exists():
        raise BadInputError(f"no run store at {folder / 'study.db'}: run the study first (roboscale study run FILE)")
    return folder, RunStore(folder / "study.db")


@runs_app.command("list")
def list_runs(
    study: StudyRef, as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False
) -> None:
    """The study's runs with their status and headline numbers."""
    _, store = _store_for(study)
    runs = store.runs()
    if as_json:
        sys.stdout.write(json.dumps(runs.to_dict(orient="records"), indent=2, default=str) + "\n")
        return
    table = Table(show_edge=False, header_style="bold")
    for name in ("run_id", "status", "task", "tokenizer", "budget", "d_model", "seed", "N", "D", "C", "loss", "error"):
        table.add_column(
            name, justify="left" if name in ("run_id", "status", "task", "tokenizer", "error") else "right"
        )
    for row in runs.itertuples():
        table.add_row(
            row.run_id,
            row.status,
            row.task,
            row.tokenizer,
            number(row.budget, 3),
            str(row.d_model),
            str(row.seed),
            "-" if row.N != row.N or row.N is None else f"{int(row.N):,}",
            number(row.D, 3),
            number(row.C, 3),
            number(row.loss, 4),
            (row.error or "")[:60],
        )
    console = make_console()
    console.print(table)
    console.print(", ".join(f"{count} {status}" for status, count in store.status_counts().items()))


@runs_app.command("export")
def export_runs(
    study: StudyRef,
    format: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: STUDY/runs.FORMAT).")] = None,
    curves: Annotated[bool, typer.Option(help="Export the learning curves instead of the runs.")] = False,
) -> None:
    """Write the runs table (N, D, C, loss, budget, ...) for `roboscale fit` or pandas."""
    if format not in ("csv", "parquet"):
        raise BadInputError(f"--format {format!r}: choose csv or parquet")
    folder, store = _store_for(study)
    table = store.curves() if curves else store.runs()
    if curves:
        sizes = store.runs().set_index("run_id")["N"]
        table = table.assign(N=table["run_id"].map(sizes))
    out = out or folder / f"{'curves' if curves else 'runs'}.{format}"
    from roboscale.files import write_atomically

    if format == "csv":
        write_atomically(out, lambda path: table.to_csv(path, index=False))
    else:
        write_atomically(out, lambda path: table.to_parquet(path, index=False))
    make_console().print(f"wrote {out}: {len(table)} rows")


def report_command(
    study: StudyRef,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the fits.")] = 1000,
) -> None:
    """Fit the study's finished runs again and write its HTML report and JSON of every number."""
    from roboscale.study import plan_study, study_from_dict
    from roboscale.study.run import analyze_study, write_study_report

    folder, store = _store_for(study)
    saved = store.study()
    spec = study_from_dict(saved["spec"])
    from dataclasses import replace

    spec = replace(spec, out=str(folder))
    study_plan = plan_study(spec, saved["dataset"])
    analysis = analyze_study(spec, study_plan, store, bootstrap=bootstrap)
    report = write_study_report(spec, analysis)
    _headline(analysis, report, {})


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Study folder.")] = Path("studies/demo"),
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per CPU).")] = None,
) -> None:
    """The built-in study: Meta-World demonstrations, BC and WM IsoFLOP sweeps, fits, report (<10 min, 2 CPUs)."""
    from dataclasses import replace

    from roboscale.study.demo import demo_spec

    spec = demo_spec(out)
    if workers is not None:
        spec = replace(spec, executor=replace(spec.executor, workers=workers))
    note(f"roboscale demo: a scaling study in {out} (see README: what the demo shows)")
    _run_and_summarise(spec, bootstrap=1000)
