"""`roboscale study`, `roboscale runs`, `roboscale report` and `roboscale demo`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Self

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
    """The study file's spec with the command line's executor flags (checked first, so a
    bad flag is blamed on the flag, not on the file)."""
    from dataclasses import replace

    from roboscale.study import load_study

    if executor is not None and executor not in ("local", "ray"):
        raise BadInputError(f"--executor {executor!r}: use local or ray")
    if workers is not None and workers < 0:
        raise BadInputError(f"--workers {workers}: must be >= 0 (0: one per CPU)")
    spec = load_study(file)
    changes = {"kind": executor, "address": address, "workers": workers}
    return replace(spec, executor=replace(spec.executor, **{k: v for k, v in changes.items() if v is not None}))


def _write_output(path: Path, content, option: str, example_name: str) -> None:
    """``content`` written atomically to ``path``, or one line naming ``option`` when it
    cannot be (``example_name``: a file name to suggest when ``path`` is a folder)."""
    from roboscale.files import write_atomically

    if path.is_dir():
        raise BadInputError(f"{option} {path} is a folder: give a file name, e.g. {path / example_name}")
    try:
        write_atomically(path, content)
    except OSError as error:
        raise BadInputError(
            f"{option} {path}: cannot write there ({error.strerror or error}); choose a path you can write to"
        ) from None


@app.command()
def init(
    file: Annotated[Path, typer.Argument(help="Where to write the example study file.")] = Path("study.toml"),
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a study file that runs as written: a small pointmass study (about 2 minutes on 2 cores)
    that fits an IsoFLOP law, every setting shown with a comment."""
    from roboscale.study import EXAMPLE

    if file.is_file() and not force:
        raise BadInputError(f"{file} already exists: choose another name or pass --force")
    _write_output(file, EXAMPLE, "FILE", "study.toml")
    make_console().print(
        f"wrote {file} (a pointmass study of about 2 minutes on 2 cores): `roboscale study plan {file}` "
        f"shows its runs, `roboscale study run {file}` trains them and fits the laws; then edit it"
    )


@app.command()
def plan(
    file: StudyFile,
    workers: Annotated[int | None, typer.Option(help="Workers to estimate the wall time for.")] = None,
    calibrate: Annotated[bool, typer.Option(help="Time a few steps of each model size on this machine.")] = True,
) -> None:
    """Print the planned runs, the total FLOPs and the estimated wall time (nothing is trained)."""
    spec = _spec_with(file, None, None, workers)  # a bad file is refused before the planner loads

    from roboscale.study import prepare_study
    from roboscale.study.execute import local_workers

    study_plan, _ = prepare_study(spec, calibrate=calibrate, data_progress=_data_progress_note(spec))
    console = make_console()
    table = Table(show_edge=False, header_style="bold", title=f"Study {spec.name}: planned runs", title_justify="left")
    for name in (
        *(["level"] if spec.axes is not None else []),
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
        table.add_column(name, justify="left" if name in ("level", "task", "tokenizer", "note") else "right")
    from roboscale.study.plan import stack_runs

    stacked = {run.run_id: len(job) for job in stack_runs(study_plan.active, spec.executor.stack) for run in job}
    for run in study_plan.runs:
        estimate = study_plan.estimated_seconds(run)
        note = run.skip or ("held-out budget" if run.holdout else f"seed {run.seed}")
        if stacked.get(run.run_id, 1) > 1:
            note += f" (one job of {stacked[run.run_id]} seeds)"
        table.add_row(
            *([run.level["level"]] if spec.axes is not None else []),
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
    if spec.axes is not None:
        console.print(levels_table(spec, study_plan))
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
            what = "sources" if spec.axes is not None else "dataset"
            note(f"generating the study's {what} in {spec.folder() / 'data' / ('sources' if spec.axes else '')} ...")
            announced.append(True)

    return announce


def levels_table(spec, study_plan) -> Table:
    """A data-axes study's axes (in the title) and data levels: training episodes by source,
    tasks, quality and the runs of each."""
    axes = spec.axes
    given = [f"{name} {getattr(axes, name)}" for name in ("amount", "repetition", "quality", "configs", "tasks")]
    given = [text for text in given if not text.endswith("[]")]
    if axes.mixture is not None:
        mixture = axes.mixture
        levels = (
            f"proportions {mixture.proportions} of {mixture.total}"
            if mixture.total
            else f"{mixture.base} + {mixture.added}"
        )
        given.append(f"mixture {'/'.join(mixture.sources)} {levels}")
    length = f"budget {axes.budget:.3g} FLOPs" if axes.budget else "length: repetitions x the level's frames"
    title = f"Data axes ({'; '.join(given)}), widths {axes.widths}, {length}: levels"
    table = Table(show_edge=False, header_style="bold", title=title, title_justify="left")
    for name in ("level", "axis", "episodes", "by source", "tasks", "quality", "runs"):
        table.add_column(name, justify="right" if name in ("episodes", "tasks", "runs") else "left")
    levels: dict[str, dict] = {}
    counts: dict[str, int] = {}
    for run in study_plan.active:
        levels.setdefault(run.level["level"], {**run.level, "axis": run.axis})
        counts[run.level["level"]] = counts.get(run.level["level"], 0) + 1
    for name, level in levels.items():
        by_source = ", ".join(f"{s} {k}" for s, k in level["episodes_by_source"].items() if k)
        table.add_row(
            name,
            level["axis"],
            str(level["episodes"]),
            by_source,
            str(level["train_tasks"]),
            level["quality"] or "-",
            str(counts[name]),
        )
    return table


def _run_and_summarise(spec, bootstrap: int, *, forecast_check: bool = False) -> None:
    """Run the study, then print its headline (and, with ``forecast_check``, each group's
    forecast-check table before it)."""
    from roboscale.study import run_study

    with _StudyDisplay(spec) as display:
        result = run_study(spec, progress=display.progress(), bootstrap=bootstrap)
    if forecast_check:
        console = make_console()
        for group in result.analysis["groups"]:
            console.print(forecast_check_table(group))
    _headline(result.analysis, result.report, result.counts)


def forecast_check_table(group: dict) -> Table:
    """One group's forecast check as a terminal table: every law's forecast of every
    held-out run (observed, predicted with its prediction interval, relative error, inside
    or not), then the IsoFLOP N_opt forecast against the best held-out size."""
    check = group.get("forecast_check") or {}
    budgets = ", ".join(f"{budget:.2g}" for budget in check.get("held_out_budgets") or []) or "none"
    table = Table(
        show_edge=False,
        header_style="bold",
        title=f"{group['label']}: forecast check (held-out {budgets} FLOPs, never fitted)",
        title_justify="left",
    )
    for name in ("law", "run", "N", "observed", "predicted [interval]", "rel. error", "inside"):
        table.add_column(name, justify="left" if name in ("law", "run", "inside") else "right")
    for law, summary in (check.get("laws") or {}).items():
        if "error" in summary:
            table.add_row(law, "-", "-", "-", summary["error"], "-", "-")
            continue
        for point in summary.get("points") or []:
            low, high = point.get("predicted_lo"), point.get("predicted_hi")
            bracket = f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None else ""
            inside = {True: "inside", False: "[red]OUTSIDE[/red]"}.get(point.get("inside"), "-")
            table.add_row(
                law,
                str(point.get("run_id") or "-"),
                number(point.get("N"), 3),
                f"{point['observed']:.4g}",
                f"{point['predicted']:.4g}{bracket}",
                f"{100 * point['relative_error']:+.1f}%",
                inside,
            )
        for row in summary.get("optimum") or []:
            table.add_row(
                f"{law} N_opt",
                f"best d_model {row['d_model_best']}",
                number(row["N_best_observed"], 3),
                "-",
                f"{row['N_opt_predicted']:.3g}",
                f"x{row['ratio']:.2f}",
                "-",
            )
    return table


class _StudyDisplay:
    """:func:`run_study`'s progress on stderr: a note when the dataset is generated, a bar
    over the training FLOPs (runs done, running, left), a bar over the closed-loop evaluations."""

    TRAINING_FIELDS = ("{task.fields[runs]}", "{task.fields[flops]}")
    EVALUATION_FIELDS = ("{task.completed:.0f}/{task.total:.0f} runs",)

    def __init__(self, spec) -> None:
        from roboscale.study.execute import local_workers

        self.spec = spec
        self.workers = local_workers(spec.executor)
        self.bar: Progress | None = None
        self.jobs: list[list] = []
        self.budgets: dict[str, float] = {}
        self.recorded: set[str] = set()
        self.done_before = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def progress(self):
        from roboscale.study import StudyProgress

        return StudyProgress(
            data=_data_progress_note(self.spec),
            training_started=self.training_started,
            run_done=self.run_done,
            training_done=lambda counts: self._stop(),
            evaluation_started=self.evaluation_started,
            run_evaluated=lambda done, total, run_id: self.bar.update(self.task, completed=done),
        )

    def training_started(self, jobs: list[list], done_before: int) -> None:
        self.jobs, self.done_before = jobs, done_before
        self.budgets = {run.run_id: run.budget for job in jobs for run in job}
        self.total_flops = sum(self.budgets.values())
        if jobs:
            where = f"{self.workers} worker(s)" if self.spec.executor.kind == "local" else "Ray"
            stacked = f" as {len(jobs)} job(s)" if len(jobs) < len(self.budgets) else ""
            note(f"{len(self.budgets)} run(s) to train{stacked} on {where}; {done_before} already finished")
        self._start(self.TRAINING_FIELDS, f"study {self.spec.name}", max(self.total_flops, 1.0))
        self.bar.update(self.task, runs=self._runs_field({}), flops="")

    def run_done(self, outcome, counts: dict) -> None:
        self.recorded.add(outcome.run_id)
        self.bar.advance(self.task, self.budgets.get(outcome.run_id, 0.0))
        flops_done = self.bar.tasks[0].completed
        self.bar.update(
            self.task, runs=self._runs_field(counts), flops=f"{flops_done:.2g}/{self.total_flops:.2g} FLOPs"
        )

    def evaluation_started(self, total: int) -> None:
        self._stop()
        note(f"closed-loop evaluation of {total} bc run(s), {self.spec.evaluate.episodes} episodes per task")
        self._start(self.EVALUATION_FIELDS, "evaluate", total)

    def _runs_field(self, counts: dict) -> str:
        # Jobs go out in order, one per worker: the first unfinished ones are the running ones.
        unfinished = [job for job in self.jobs if any(run.run_id not in self.recorded for run in job)]
        running = sum(len(job) for job in unfinished[: self.workers]) if self.spec.executor.kind == "local" else 0
        left = len(self.budgets) - len(self.recorded) - running
        failed = f", {counts['failed']} failed" if counts.get("failed") else ""
        busy = f"{running} running, " if running else ""
        return f"runs {self.done_before + counts.get('finished', 0)} done{failed}, {busy}{max(left, 0)} left"

    def _start(self, fields: tuple[str, ...], description: str, total: float) -> None:
        """A bar: its description, the bar, ``fields`` (rich format strings), elapsed and remaining time."""
        columns = (TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), *map(TextColumn, fields))
        self.bar = Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self.bar.start()
        self.task = self.bar.add_task(description, total=total, runs="", flops="")

    def _stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _headline(analysis: dict, report: Path, counts: dict) -> None:
    console = make_console()
    failed = [r for r in analysis["runs"] if r["status"] == "failed"]
    console.print(f"[bold]report:[/bold] {report}")
    for group in analysis["groups"]:
        console.print(group_headline(group, analysis["runs"]))
        if group.get("recommendation"):
            rec = group["recommendation"]
            caveat = (
                " — from a law that failed its checks: a guess"
                if (group.get("verdict") or {}).get("status") == "fails"
                else ""
            )
            console.print(
                f"  next run: {rec['budget']:.2g} FLOPs, d_model {rec['d_model']} ({rec['method']} law: "
                f"N_opt {rec['N']:.3g}, D_opt {rec['D']:.3g} tokens){caveat}"
            )
        success = group.get("success") or {}
        correlation = success.get("correlation") or {}
        if success.get("best_per_budget"):
            best = ", ".join(f"{b['success']:.0%} at {b['C']:.2g}" for b in success["best_per_budget"])
            line = f"  closed-loop success (best run per budget): {best}"
            if "pearson" in correlation:
                line += f"; loss vs success: Pearson r = {correlation['pearson']:.2f} over {correlation['n']} runs"
            console.print(line)
        open_loop = open_loop_headline(group.get("open_loop"))
        if open_loop is not None:
            console.print(open_loop)
    for line in data_axes_headline(analysis.get("data_axes")):
        console.print(line, highlight=False)
    if failed:
        console.print(f"[yellow]{len(failed)} run(s) failed[/yellow] (listed in the report)")


def data_axes_headline(data_axes: dict | None) -> list[str]:
    """A data-axes study's headline at its largest width: the exponent of every axis at the
    operating point (and the amount law at every noise level), what a noisy episode is worth,
    the optimal mixture, and the recommendation for the next episodes."""
    if not data_axes:
        return []
    width = max(data_axes.get("widths") or [0])
    floors = data_axes.get("known_floors") or {}
    lines = [
        _exponent_line(row, floors)
        for row in data_axes.get("exponents", [])
        if row["width"] == width and (row.get("primary") or _amount_at_operating_tasks(row, data_axes))
    ]
    lines += _worth_lines(data_axes, width)
    for entry in data_axes.get("mixture", []):
        optimal = entry.get("optimal") or {}
        if "proportions" not in optimal:
            continue
        ci = optimal.get("ci") or {}
        shares = ", ".join(
            f"{name} {share:.2f}" + (f" [{ci[name][0]:.2f}, {ci[name][1]:.2f}]" if name in ci else "")
            for name, share in optimal["proportions"].items()
        )
        note = " (outside the trained mixtures: train it to check)" if optimal.get("extrapolated") else ""
        lines.append(f"  optimal mixture for the reference's loss (d_model {entry['width']}): {shares}{note}")
    recommendation = data_axes.get("recommendation") or {}
    if recommendation.get("sentence"):
        lines.append(f"  [bold]{recommendation['sentence']}[/bold]")
    return lines


def _amount_at_operating_tasks(row: dict, data_axes: dict) -> bool:
    """An amount law of the loss at another noise level, other levels at the operating point."""
    if (row["axis"], row["y"]) != ("amount", "loss") or "noise" not in (row.get("slice") or {}):
        return False
    operating = next(iter(data_axes.get("marginal") or []), {}).get("operating_point") or {}
    return all(
        abs(value - operating[key]) < 1e-9 for key, value in row["slice"].items() if key != "noise" and key in operating
    )


def _exponent_line(row: dict, floors: dict) -> str:
    low, high = row.get("alpha_ci") or (float("nan"), float("nan"))
    where = ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in (row.get("slice") or {}).items()
    )
    y = "1 - success" if row["y"] == "success" else row["y"]
    if row["y"] in floors:
        y = f"{y} - {floors[row['y']]:.3g} (known floor)"
    return (
        f"  {row['axis']}: {y} ∝ {row['x']}^{-row['alpha']:.3g} (alpha 95% interval {low:.3g} to {high:.3g}; "
        f"d_model {row['width']}{', ' + where if where else ''}; {row['n_points']} runs)"
    )


def _worth_lines(data_axes: dict, width: int) -> list[str]:
    """What one noisy episode is worth in reference episodes, at the largest amount studied."""
    lines = []
    operating = next(iter(data_axes.get("marginal") or []), {}).get("operating_point") or {}
    for table in data_axes.get("quality", []):
        rows = [
            row
            for row in table["rows"]
            if row.get("worth") is not None
            and row["noise"] != table["clean_noise"]
            and (
                "train_tasks" not in row
                or abs(row["train_tasks"] - operating.get("train_tasks", row["train_tasks"])) < 1e-9
            )
        ]
        if table["width"] != width or not rows:
            continue
        largest = max(row["episodes"] for row in rows)
        parts = []
        for row in sorted((r for r in rows if r["episodes"] == largest), key=lambda r: r["noise"]):
            low, high = row.get("worth_ci") or (float("nan"), float("nan"))
            parts.append(f"noise {row['noise']:g}: {row['worth']:.2g} (95% interval {low:.2g} to {high:.2g})")
        lines.append(
            f"  one noisy episode is worth this many noise-{table['clean_noise']:g} episodes, at {largest:,.0f} "
            f"episodes (d_model {width}): {'; '.join(parts)}"
        )
    return lines


def open_loop_headline(open_loop: dict | None) -> str | None:
    """Whether a group's world models beat predicting that nothing moves (rich markup), or None
    when none was evaluated open-loop."""
    if not open_loop:
        return None
    if open_loop["worse"]:
        return (
            f"  [bold red]{open_loop['worse']} of {open_loop['evaluated']} world model(s) are worse than predicting "
            "that nothing moves[/bold red] (open loop; see the report)"
        )
    return f"  all {open_loop['evaluated']} world model(s) evaluated beat predicting that nothing moves (open loop)"


def group_headline(group: dict, runs: list[dict]) -> str:
    """One group's headline (rich markup): when its verdict fails, that the law does not
    extrapolate and why, with no exponent; else the IsoFLOP exponents with their intervals
    and how far the forecast check (or the audit of the largest fitted budget) was off."""
    from roboscale.fit.forecast_check import extrapolates

    verdict = group.get("verdict") or {}
    label = f"[bold]{group['label']}[/bold]: "
    if verdict.get("status") == "fails":
        reasons = "; ".join(verdict.get("reasons") or ["see the report"])
        what = "the law does not extrapolate" if not extrapolates(verdict) else "the law is not pinned down"
        return f"{label}{what}: {reasons}; exponents not shown as results — see the report"
    line = label + _exponents_text(group, runs)
    if verdict.get("status") == "holds":
        return line + "; " + _held_out_text(group.get("forecast_check") or {})
    audit = group["audit"].get("parametric", {})
    if "mean_abs_relative_error" in audit:
        line += f"; forecast of the largest budget off by {100 * audit['mean_abs_relative_error']:.1f}% (parametric)"
    if verdict.get("status") == "unchecked":
        line += "; not checked beyond the fitted budgets"
    return line


def _exponents_text(group: dict, runs: list[dict]) -> str:
    """The IsoFLOP exponents with their intervals, or why there are none."""
    iso = group["isoflop"]
    if "a" in iso:
        a_ci, b_ci = iso.get("ci", {}).get("a"), iso.get("ci", {}).get("b")
        text = f"N_opt ∝ C^{iso['a']:.3f}" + (f" [{a_ci[0]:.3f}, {a_ci[1]:.3f}]" if a_ci else "")
        return text + f", D_opt ∝ C^{iso['b']:.3f}" + (f" [{b_ci[0]:.3f}, {b_ci[1]:.3f}]" if b_ci else "")
    if not any(
        run["status"] == "finished" and (run["task"], run["tokenizer"]) == (group["task"], group["tokenizer"])
        for run in runs
    ):
        return "no finished run to fit"
    return f"IsoFLOP fit not possible ({iso.get('error', '?')})"


HEADLINE_LAWS = {"parametric": "parametric", "isoflop": "IsoFLOP loss"}
"""The laws a passing forecast check names in the headline, and how."""


def _held_out_text(check: dict) -> str:
    """ "held-out 10x check: off by 2.1% (parametric), inside the interval"."""
    checked = {
        name: law
        for key, name in HEADLINE_LAWS.items()
        if (law := (check.get("laws") or {}).get(key) or {}).get("n_points")
    }
    errors = ", ".join(f"{100 * law['mean_abs_relative_error']:.1f}% ({name})" for name, law in checked.items())
    inside = all(law.get("n_outside") == 0 for law in checked.values())
    factor = check.get("factor")
    times = f" {factor:.0f}x" if isinstance(factor, int | float) else ""
    return f"held-out{times} check: off by {errors}, " + ("inside the interval" if inside else "no interval to check")


def _store_for(ref: Path):
    from roboscale.study import RunStore, load_study

    if not ref.exists():
        raise BadInputError(f"{ref} does not exist: give a study file (TOML) or a study folder (with study.db)")
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
            row.error or "",
        )
    console = make_console()
    console.print(table)
    console.print(", ".join(f"{count} {status}" for status, count in store.status_counts().items()))


EXPORT_FORMATS = ("csv", "parquet")


@runs_app.command("export")
def export_runs(
    study: StudyRef,
    format: Annotated[
        str | None, typer.Option("--format", help="csv or parquet (default: --out's suffix, else csv).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: STUDY/runs.FORMAT).")] = None,
    curves: Annotated[bool, typer.Option(help="Export the learning curves instead of the runs.")] = False,
) -> None:
    """Write the runs table (N, D, C, loss, budget, success, ...) for `roboscale fit` or pandas.

    success: closed-loop success rate (fraction of episodes solved, 0 to 1); empty for runs not evaluated.
    Data axes: axis ("" for IsoFLOP runs), episodes, unique_episodes, repetitions (passes), train_tasks,
    quality, noise, per source s episodes_<s>, r_<s> (share of the training episodes) and loss_<s> (final
    loss on s's validation split), heldout_loss (on held-out tasks); loss is on the reference's validation."""
    format = _export_format(format, out)
    folder, store = _store_for(study)
    table = store.curves() if curves else _runs_with_success(store)
    if curves:
        sizes = store.runs().set_index("run_id")["N"]
        table = table.assign(N=table["run_id"].map(sizes))
    name = f"{'curves' if curves else 'runs'}.{format}"
    out = out or folder / name
    if format == "csv":
        _write_output(out, lambda path: table.to_csv(path, index=False), "--out", name)
    else:
        _write_output(out, lambda path: table.to_parquet(path, index=False), "--out", name)
    make_console().print(f"wrote {out}: {len(table)} rows")


def _runs_with_success(store):
    """The runs table with the success rates of the closed-loop evaluations made with
    the study's current ``[evaluate]`` settings (the ones its report shows)."""
    from roboscale.study import study_from_dict
    from roboscale.study.run import evaluation_settings

    return store.runs_for_export(evaluation_settings(study_from_dict(store.study()["spec"])))


def _export_format(format: str | None, out: Path | None) -> str:
    """The export format: ``--format``, else the suffix of ``--out``, else csv; refused
    when the two disagree (parquet bytes in a .csv file would mislead every reader)."""
    suffix = out.suffix.lstrip(".").lower() if out is not None else ""
    if format is None:
        return suffix if suffix in EXPORT_FORMATS else "csv"
    if format not in EXPORT_FORMATS:
        raise BadInputError(f"--format {format!r}: choose csv or parquet")
    if suffix in EXPORT_FORMATS and suffix != format:
        raise BadInputError(
            f"--format {format} but --out {out} ends in .{suffix}: make them agree (without --format, the suffix decides)"
        )
    return format


def report_command(
    study: StudyRef,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the fits.")] = 1000,
) -> None:
    """Fit the study's finished runs again and write its HTML report and JSON of every number
    (from its run store, study.db, alone: neither the dataset nor the runs' folders are read)."""
    from dataclasses import replace

    from roboscale.fit.bootstrap import check_bootstrap_options
    from roboscale.study import study_from_dict
    from roboscale.study.run import analyze_study, write_study_report

    check_bootstrap_options(bootstrap, 0.95)  # before anything is read or written
    folder, store = _store_for(study)
    planned = set(store.plan().planned)
    if not store.runs("finished")["run_id"].isin(planned).any():
        raise BadInputError(
            f"{folder} has no finished run to report on yet: run the study first (roboscale study run FILE)"
        )
    spec = replace(study_from_dict(store.study()["spec"]), out=str(folder))
    analysis = analyze_study(spec, None, store, bootstrap=bootstrap)
    report = write_study_report(spec, analysis)
    _headline(analysis, report, {})


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Study folder.")] = Path("studies/demo"),
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per CPU).")] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Also train one budget 10x the demo's largest, kept out of every fit, and print how far each "
            "law's forecast of it is off (the forecast check and its verdict). Up to ~30 minutes on 2 CPU "
            "cores; the demo's finished runs in the same --out folder are reused (their run ids do not change).",
        ),
    ] = False,
) -> None:
    """The built-in study: Meta-World demonstrations, BC and WM IsoFLOP sweeps, fits, report (<10 min, 2 CPUs)."""
    from dataclasses import replace

    from roboscale.study.demo import demo_check_spec, demo_spec

    spec = demo_check_spec(out) if check else demo_spec(out)
    if workers is not None:
        spec = replace(spec, executor=replace(spec.executor, workers=workers))
    what = "a scaling study and its 10x forecast check" if check else "a scaling study"
    note(f"roboscale demo: {what} in {out} (see README: what the demo shows)")
    _run_and_summarise(spec, bootstrap=1000, forecast_check=check)
