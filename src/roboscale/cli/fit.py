"""`roboscale fit`: fit scaling laws to a runs table from the shell."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console

from roboscale.cli import render
from roboscale.cli.output import make_console, note
from roboscale.errors import BadInputError, RoboscaleError
from roboscale.fit import (
    audit_extrapolation,
    compute_optimal,
    fit_broken_power_law,
    fit_frontier,
    fit_isoflop,
    fit_parametric,
    fit_power_law,
    load_runs,
)
from roboscale.fit.audit import METHODS
from roboscale.fit.examples import example_path
from roboscale.fit.runs_table import RunsTable

app = typer.Typer(
    help="Fit scaling laws to a runs table (CSV, Parquet or JSON lines; one row per trained model).",
    no_args_is_help=True,
)

# Options shared by every fit command (typer needs them in each signature).
RunsArg = Annotated[
    Path | None,
    typer.Argument(help="Runs table: .csv, .tsv, .parquet or .jsonl, one row per run (or per learning-curve point)."),
]
NCol = Annotated[str | None, typer.Option("--n", help="Column holding N, the parameter count.")]
DCol = Annotated[str | None, typer.Option("--d", help="Column holding D, training tokens (or samples).")]
CCol = Annotated[str | None, typer.Option("--c", help="Column holding C, training FLOPs.")]
LossCol = Annotated[str | None, typer.Option("--loss", help="Column holding the loss.")]
GroupCol = Annotated[str | None, typer.Option("--group", help="Fit each value of this column separately.")]
Bootstrap = Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals (0: none).")]
Seed = Annotated[int, typer.Option(help="Seed of the bootstrap resampling.")]
CiLevel = Annotated[float, typer.Option(help="Confidence level of the intervals.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]
FlopsPerParamToken = Annotated[
    float,
    typer.Option(help="FLOP convention C = k*N*D used to derive a missing C or D (6: dense forward+backward)."),
]
DropHighest = Annotated[int, typer.Option(help="Leave out this many runs with the highest loss (outliers).")]
DropInvalid = Annotated[bool, typer.Option(help="Leave out rows with NaN/inf/zero/negative values (counted).")]
MinFlops = Annotated[float | None, typer.Option(help="Keep only runs with C >= this many FLOPs.")]
MaxFlops = Annotated[float | None, typer.Option(help="Keep only runs with C <= this many FLOPs.")]
Budgets = Annotated[
    list[float] | None,
    typer.Option("--budget", help="FLOP budget for the compute-optimal table (repeatable; default 1-1000x the data)."),
]


def _load(
    runs: Path, n, d, c, loss, flops_per_param_token, drop_highest_loss, drop_invalid, min_flops, max_flops, run=None
):
    return load_runs(
        runs,
        n=n,
        d=d,
        c=c,
        loss=loss,
        run=run,
        flops_per_param_token=flops_per_param_token,
        drop_invalid=drop_invalid,
        drop_highest_loss=drop_highest_loss,
        min_flops=min_flops,
        max_flops=max_flops,
    )


def _run(
    table: RunsTable,
    group: str | None,
    as_json: bool,
    fit_one: Callable[[RunsTable], object],
    show: Callable[[Console, object], None],
    describe: Callable[[object], dict],
    activity: str,
) -> None:
    """Fit every group (or the whole table), then print tables or one JSON object."""
    parts = list(table.groups(group)) if group else [(None, table)]
    console = make_console()
    status = Console(stderr=True)
    results: dict[str, dict] = {}
    failures = 0
    for name, part in parts:
        label = (
            f"{activity} ({group}={name}, {len(part)} runs)" if name is not None else f"{activity} ({len(part)} runs)"
        )
        try:
            with status.status(label, spinner="dots") if status.is_terminal and not as_json else nullcontext():
                fit = fit_one(part)
        except RoboscaleError as error:
            if name is None:
                raise
            failures += 1
            results[name] = {"error": str(error)}
            if not as_json:
                console.print(f"[bold]{group} = {name}[/bold]: [red]not fitted[/red]: {error}\n")
            continue
        results[name if name is not None else ""] = describe(fit)
        if not as_json:
            if name is not None:
                console.rule(f"{group} = {name}")
            show(console, fit)
    if as_json:
        runs_info = {
            "source": table.source,
            "n_runs": len(table),
            "columns": table.columns_used,
            "dropped": table.dropped,
            "flops_per_param_token": table.flops_per_param_token,
        }
        payload = (
            {"group": group, "results": results, "runs": runs_info} if group else {**results[""], "runs": runs_info}
        )
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    elif table.dropped:
        note("left out: " + ", ".join(f"{count} {why}" for why, count in table.dropped.items()))
    if group and failures == len(parts):
        raise BadInputError(f"no group of {group!r} could be fitted (see the messages above)")


def _with_allocation(fit, budgets) -> dict:
    return {**fit.to_dict(), "compute_optimal": compute_optimal(fit, budgets).to_dict()}


def _example(runs: Path | None, name: str) -> Path:
    if runs is not None:
        return runs
    path = example_path(name)
    note(f"no RUNS given: using the bundled example {path.name} (see --help)")
    return path


@app.command()
def parametric(
    runs: RunsArg = None,
    n: NCol = None,
    d: DCol = None,
    c: CCol = None,
    loss: LossCol = None,
    group: GroupCol = None,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    ci_level: CiLevel = 0.95,
    as_json: AsJson = False,
    huber_delta: Annotated[float, typer.Option(help="Huber loss threshold on log loss.")] = 1e-3,
    fixed_e: Annotated[
        float | None, typer.Option("--fixed-e", help="Hold the irreducible loss E at this value.")
    ] = None,
    max_iter: Annotated[int, typer.Option(help="Iteration limit of the final L-BFGS stage.")] = 5000,
    budget: Budgets = None,
    flops_per_param_token: FlopsPerParamToken = 6.0,
    drop_highest_loss: DropHighest = 0,
    drop_invalid: DropInvalid = False,
    min_flops: MinFlops = None,
    max_flops: MaxFlops = None,
) -> None:
    """Approach 3: L(N, D) = E + A/N^alpha + B/D^beta, plus the compute-optimal allocation.

    Without RUNS, fits the bundled Hoffmann et al. (2022) runs (Epoch's extraction).
    """
    table = _load(
        _example(runs, "hoffmann2022"),
        n,
        d,
        c,
        loss,
        flops_per_param_token,
        drop_highest_loss,
        drop_invalid,
        min_flops,
        max_flops,
    )

    def fit_one(part):
        return fit_parametric(
            part,
            huber_delta=huber_delta,
            fixed_E=fixed_e,
            max_iter=max_iter,
            bootstrap=bootstrap,
            seed=seed,
            ci_level=ci_level,
        )

    def show(console, fit):
        render.show(console, render.parametric(fit), render.allocation(compute_optimal(fit, budget)))

    _run(
        table,
        group,
        as_json,
        fit_one,
        show,
        lambda fit: _with_allocation(fit, budget),
        f"fitting L(N, D) from 4,500 starts + {bootstrap} bootstrap resamples",
    )


@app.command()
def isoflop(
    runs: RunsArg = None,
    n: NCol = None,
    d: DCol = None,
    c: CCol = None,
    loss: LossCol = None,
    group: GroupCol = None,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    ci_level: CiLevel = 0.95,
    as_json: AsJson = False,
    budget_col: Annotated[
        str | None, typer.Option(help="Column naming each run's FLOP budget (default: group runs by C).")
    ] = None,
    budget_tolerance: Annotated[float, typer.Option(help="Runs within this many decades of C share a budget.")] = 0.1,
    window: Annotated[
        int, typer.Option(help="Model sizes on each side of the lowest loss used for the parabola (0: all).")
    ] = 3,
    unweighted: Annotated[bool, typer.Option(help="Do not weight budgets by their bootstrap spread.")] = False,
    budget: Budgets = None,
    flops_per_param_token: FlopsPerParamToken = 6.0,
    drop_highest_loss: DropHighest = 0,
    drop_invalid: DropInvalid = False,
    min_flops: MinFlops = None,
    max_flops: MaxFlops = None,
) -> None:
    """Approach 2: a parabola per FLOP budget, then N_opt = k C^a and D_opt = k C^b.

    Without RUNS, fits the bundled Atari behaviour-cloning runs of Tuyls et al. (2023), one fit per game.
    """
    if runs is None:
        group = group or "game"
        drop_invalid = True
    table = _load(
        _example(runs, "atari_bc"),
        n,
        d,
        c,
        loss,
        flops_per_param_token,
        drop_highest_loss,
        drop_invalid,
        min_flops,
        max_flops,
    )

    def fit_one(part):
        return fit_isoflop(
            part,
            budget=budget_col,
            budget_tolerance=budget_tolerance,
            window=window or None,
            weighted=not unweighted,
            bootstrap=bootstrap,
            seed=seed,
            ci_level=ci_level,
        )

    def show(console, fit):
        render.show(console, render.isoflop(fit), render.allocation(compute_optimal(fit, budget)))

    _run(table, group, as_json, fit_one, show, lambda fit: _with_allocation(fit, budget), "fitting IsoFLOP profiles")


@app.command()
def frontier(
    runs: Annotated[Path, typer.Argument(help="Learning curves (run, C, D, loss per row) or one row per run.")],
    n: NCol = None,
    d: DCol = None,
    c: CCol = None,
    loss: LossCol = None,
    run: Annotated[str | None, typer.Option("--run", help="Column holding the run id of each curve point.")] = None,
    group: GroupCol = None,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    ci_level: CiLevel = 0.95,
    as_json: AsJson = False,
    grid_points: Annotated[int, typer.Option(help="Log-spaced compute values the curves are compared at.")] = 100,
    budget: Budgets = None,
    flops_per_param_token: FlopsPerParamToken = 6.0,
    drop_highest_loss: DropHighest = 0,
    drop_invalid: DropInvalid = False,
    min_flops: MinFlops = None,
    max_flops: MaxFlops = None,
) -> None:
    """Approach 1: the lowest loss at each compute across runs, L(C) = E + A C^-alpha, N_opt ∝ C^a."""
    table = _load(
        runs, n, d, c, loss, flops_per_param_token, drop_highest_loss, drop_invalid, min_flops, max_flops, run=run
    )

    def fit_one(part):
        return fit_frontier(part, grid_points=grid_points, bootstrap=bootstrap, seed=seed, ci_level=ci_level)

    def show(console, fit):
        render.show(console, render.frontier(fit), render.allocation(compute_optimal(fit, budget)))

    _run(
        table, group, as_json, fit_one, show, lambda fit: _with_allocation(fit, budget), "fitting the compute frontier"
    )


@app.command("power-law")
def power_law(
    runs: Annotated[Path, typer.Argument(help="Runs table: .csv, .tsv, .parquet or .jsonl.")],
    x: Annotated[str, typer.Option(help="Column on the x axis (N, D, C or any positive column).")] = "C",
    y: Annotated[str, typer.Option(help="Column on the y axis.")] = "loss",
    group: GroupCol = None,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    ci_level: CiLevel = 0.95,
    as_json: AsJson = False,
    no_offset: Annotated[bool, typer.Option(help="Fit y = A x^-alpha (no floor E).")] = False,
    complement: Annotated[
        float | None, typer.Option(help="Fit (COMPLEMENT - y), e.g. 1 for a success rate (fits the failure rate).")
    ] = None,
    broken: Annotated[bool, typer.Option(help="Fit a broken power law with one bend (Caballero et al. 2022).")] = False,
    n: NCol = None,
    d: DCol = None,
    c: CCol = None,
    loss: LossCol = None,
    flops_per_param_token: FlopsPerParamToken = 6.0,
    drop_highest_loss: DropHighest = 0,
    drop_invalid: DropInvalid = False,
    min_flops: MinFlops = None,
    max_flops: MaxFlops = None,
) -> None:
    """y = E + A x^-alpha on any single axis (loss vs N, D or C; failure rate vs data)."""
    table = _load(runs, n, d, c, loss, flops_per_param_token, drop_highest_loss, drop_invalid, min_flops, max_flops)
    for name in (x, y):
        table.column(name)  # an unknown name fails here, before any fitting

    def fit_one(part):
        xs = pd.to_numeric(part.column(x), errors="coerce").to_numpy(float)
        ys = pd.to_numeric(part.column(y), errors="coerce").to_numpy(float)
        if broken:
            return fit_broken_power_law(
                xs, ys, complement=complement, bootstrap=bootstrap, seed=seed, ci_level=ci_level, x_name=x, y_name=y
            )
        return fit_power_law(
            xs,
            ys,
            offset=not no_offset,
            complement=complement,
            bootstrap=bootstrap,
            seed=seed,
            ci_level=ci_level,
            x_name=x,
            y_name=y,
        )

    def show(console, fit):
        render.show(console, render.power_law(fit))

    _run(table, group, as_json, fit_one, show, lambda fit: fit.to_dict(), f"fitting {y} against {x}")


@app.command()
def audit(
    runs: Annotated[Path, typer.Argument(help="Runs table (see `roboscale fit parametric --help`).")],
    method: Annotated[str, typer.Option(help=f"Law to audit: {', '.join(METHODS)}.")] = "parametric",
    holdout: Annotated[int, typer.Option(help="Number of largest compute budgets to hold out.")] = 1,
    holdout_decades: Annotated[
        float, typer.Option(help="Learning curves (frontier): hold out the top this-many decades of compute.")
    ] = 0.5,
    n: NCol = None,
    d: DCol = None,
    c: CCol = None,
    loss: LossCol = None,
    run: Annotated[str | None, typer.Option("--run", help="Column holding the run id (learning curves).")] = None,
    group: GroupCol = None,
    bootstrap: Bootstrap = 200,
    seed: Seed = 0,
    as_json: AsJson = False,
    flops_per_param_token: FlopsPerParamToken = 6.0,
    drop_highest_loss: DropHighest = 0,
    drop_invalid: DropInvalid = False,
    min_flops: MinFlops = None,
    max_flops: MaxFlops = None,
) -> None:
    """Refit without the largest-compute runs and report how well the law predicts them."""
    if method not in METHODS:
        raise BadInputError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    table = _load(
        runs, n, d, c, loss, flops_per_param_token, drop_highest_loss, drop_invalid, min_flops, max_flops, run=run
    )

    def fit_one(part):
        return audit_extrapolation(
            part, method, holdout=holdout, holdout_decades=holdout_decades, bootstrap=bootstrap, seed=seed
        )

    def show(console, result):
        render.show(console, render.audit(result))

    _run(table, group, as_json, fit_one, show, lambda result: result.to_dict(), f"auditing the {method} law")
