"""`roboscale fit`: fit scaling laws to a runs table from the shell."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

import roboscale.fit as fits  # its submodules load on first use, not at CLI start-up
from roboscale.cli import render
from roboscale.cli.options import fields_of, options_from
from roboscale.cli.output import make_console, note
from roboscale.errors import BadInputError, RoboscaleError, check_seed
from roboscale.fit import AUDIT_METHODS as METHODS
from roboscale.fit.examples import example_path

if TYPE_CHECKING:
    from roboscale.fit import RunsTable

app = typer.Typer(
    help="Fit scaling laws to a runs table (CSV, Parquet or JSON lines; one row per trained model).",
    no_args_is_help=True,
)

RunsArg = Annotated[
    Path | None,
    typer.Argument(help="Runs table: .csv, .tsv, .parquet or .jsonl, one row per run (or per learning-curve point)."),
]
Budgets = Annotated[
    list[float] | None,
    typer.Option("--budget", help="FLOP budget for the compute-optimal table (repeatable; default 1-1000x the data)."),
]


def _flag(name: str, help: str):
    """A boolean option that is only switched on: ``--unweighted``, not ``--unweighted/--no-unweighted``."""
    return typer.Option(name, help=help)


@dataclass(frozen=True)
class FitOptions:
    """What every fit command shares: where N, D, C and the loss are, which runs to
    keep, the bootstrap, and the output. Each field is an option of each command."""

    n: str | None = None
    """Column holding N, the parameter count."""
    d: str | None = None
    """Column holding D, training tokens (or samples)."""
    c: str | None = None
    """Column holding C, training FLOPs."""
    loss: str | None = None
    """Column holding the loss."""
    group: str | None = None
    """Fit each value of this column separately."""
    bootstrap: int = 1000
    """Bootstrap resamples for confidence intervals (0: none)."""
    seed: int = 0
    """Seed of the bootstrap resampling, from 0 to 2^63 - 1."""
    ci_level: float = 0.95
    """Confidence level of the intervals."""
    as_json: bool = field(default=False, metadata={"flag": "--json"})
    """Print one JSON object on stdout instead of tables."""
    flops_per_param_token: float | None = None
    """FLOPs per parameter per token k of C = k*N*D, for allocations and to derive a missing C or D (default: the runs' median C/(N*D); 6 if C or D is missing)."""
    drop_highest_loss: int = 0
    """Leave out this many runs with the highest loss (outliers)."""
    drop_invalid: bool = False
    """Leave out rows with NaN/inf/zero/negative values (counted)."""
    min_flops: float | None = None
    """Keep only runs with C >= this many FLOPs."""
    max_flops: float | None = None
    """Keep only runs with C <= this many FLOPs."""

    def __post_init__(self) -> None:
        check_seed(self.seed)

    def resampling(self) -> dict:
        """The keyword arguments of every fit function for its bootstrap intervals."""
        return {"bootstrap": self.bootstrap, "seed": self.seed, "ci_level": self.ci_level}

    def load(self, runs: Path, run: str | None = None) -> RunsTable:
        """The runs table, with these columns and filters."""
        return fits.load_runs(
            runs,
            n=self.n,
            d=self.d,
            c=self.c,
            loss=self.loss,
            run=run,
            flops_per_param_token=self.flops_per_param_token,
            drop_invalid=self.drop_invalid,
            drop_highest_loss=self.drop_highest_loss,
            min_flops=self.min_flops,
            max_flops=self.max_flops,
        )


def fit_options(**overrides):
    """The FitOptions of one command: every field an option, ``defaults``/``skip`` as given."""
    return options_from(fields_of(FitOptions), into="options", build=FitOptions, **overrides)


def _run(
    table: RunsTable,
    options: FitOptions,
    fit_one: Callable[[RunsTable], object],
    show: Callable[[Console, object], None],
    describe: Callable[[object], dict],
    activity: str,
) -> None:
    """Fit every group (or the whole table), then print tables or one JSON object."""
    group, as_json = options.group, options.as_json
    parts = list(table.groups(group)) if group else [(None, table)]
    results = _fit_parts(parts, group, as_json, fit_one, show, describe, activity)
    if as_json:
        runs_info = {
            "source": table.source,
            "n_runs": len(table),
            "columns": table.columns_used,
            "dropped": table.dropped,
        }
        if table.columns_used:  # a runs table with N, D and C (not any table, as power-law reads)
            runs_info["flops_per_param_token"] = table.flops_per_param_token
            runs_info["compute_convention"] = table.compute_convention.to_dict()
        payload = (
            {"group": group, "results": results, "runs": runs_info} if group else {**results[""], "runs": runs_info}
        )
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    elif table.dropped:
        note("left out: " + ", ".join(f"{count} {why}" for why, count in table.dropped.items()))
    _check_some_group_fitted(group, results)


def _fit_parts(parts, group: str | None, as_json: bool, fit_one, show, describe, activity: str) -> dict[str, dict]:
    """Fit every (name, part) of ``parts`` (name None: the whole table) with a spinner, print
    each fit (unless ``as_json``), and return ``describe(fit)`` per name ("" for the whole
    table), or ``{"error": ...}`` for a group that could not be fitted."""
    console = make_console()
    status = Console(stderr=True)
    results: dict[str, dict] = {}
    for name, part in parts:
        where = f"{group}={name}, " if name is not None else ""
        label = f"{activity} ({where}{len(part)} runs)"
        try:
            with status.status(label, spinner="dots") if status.is_terminal and not as_json else nullcontext():
                fit = fit_one(part)
        except RoboscaleError as error:
            if name is None:
                raise
            results[name] = {"error": str(error)}
            if not as_json:
                console.print(f"[bold]{group} = {name}[/bold]: [red]not fitted[/red]: {error}\n")
            continue
        results[name if name is not None else ""] = describe(fit)
        if not as_json:
            if name is not None:
                console.rule(f"{group} = {name}")
            show(console, fit)
    return results


def _check_some_group_fitted(group: str | None, results: dict[str, dict]) -> None:
    if group and all("error" in result for result in results.values()):
        raise BadInputError(f"no group of {group!r} could be fitted (see the messages above)")


def _with_allocation(fit, budgets) -> dict:
    return {**fit.to_dict(), "compute_optimal": fits.compute_optimal(fit, budgets).to_dict()}


def _example(runs: Path | None, name: str) -> Path:
    if runs is not None:
        return runs
    path = example_path(name)
    note(f"no RUNS given: using the bundled example {path.name} (see --help)")
    return path


@app.command()
@fit_options()
def parametric(
    runs: RunsArg = None,
    huber_delta: Annotated[float, typer.Option(help="Huber loss threshold on log loss.")] = 1e-3,
    fixed_e: Annotated[
        float | None, typer.Option("--fixed-e", help="Hold the irreducible loss E at this value.")
    ] = None,
    max_iter: Annotated[int, typer.Option(help="Iteration limit of the final L-BFGS stage (>= 1).")] = 5000,
    budget: Budgets = None,
    *,
    options: FitOptions,
) -> None:
    """Approach 3: L(N, D) = E + A/N^alpha + B/D^beta, plus the compute-optimal allocation.

    Without RUNS, fits the bundled Hoffmann et al. (2022) runs (Epoch's extraction).
    """
    if max_iter < 1:
        raise BadInputError(f"--max-iter {max_iter}: the optimiser needs at least 1 iteration (default 5000)")
    table = options.load(_example(runs, "hoffmann2022"))

    def fit_one(part):
        return fits.fit_parametric(
            part, huber_delta=huber_delta, fixed_E=fixed_e, max_iter=max_iter, **options.resampling()
        )

    def show(console, fit):
        render.show(console, render.parametric(fit), render.allocation(fits.compute_optimal(fit, budget)))

    activity = f"fitting L(N, D) from 4,500 starts + {options.bootstrap} bootstrap resamples"
    _run(table, options, fit_one, show, lambda fit: _with_allocation(fit, budget), activity)


@app.command()
@fit_options()
def isoflop(
    runs: RunsArg = None,
    budget_col: Annotated[
        str | None, typer.Option(help="Column naming each run's FLOP budget (default: group runs by C).")
    ] = None,
    budget_tolerance: Annotated[float, typer.Option(help="Runs within this many decades of C share a budget.")] = 0.1,
    window: Annotated[
        int, typer.Option(help="Model sizes on each side of the lowest loss used for the parabola (0: all).")
    ] = 3,
    unweighted: Annotated[bool, _flag("--unweighted", "Do not weight budgets by their bootstrap spread.")] = False,
    budget: Budgets = None,
    *,
    options: FitOptions,
) -> None:
    """Approach 2: a parabola per FLOP budget, then N_opt = k C^a and D_opt = k C^b.

    Without RUNS, fits the bundled Atari behaviour-cloning runs of Tuyls et al. (2023), one fit per game.
    """
    if window < 0:
        raise BadInputError(f"--window {window}: give a number of model sizes on each side, or 0 for all of them")
    if runs is None:
        options = replace(options, group=options.group or "game", drop_invalid=True)
    table = options.load(_example(runs, "atari_bc"))

    def fit_one(part):
        return fits.fit_isoflop(
            part,
            budget=budget_col,
            budget_tolerance=budget_tolerance,
            window=window or None,
            weighted=not unweighted,
            **options.resampling(),
        )

    def show(console, fit):
        render.show(console, render.isoflop(fit), render.allocation(fits.compute_optimal(fit, budget)))

    _run(table, options, fit_one, show, lambda fit: _with_allocation(fit, budget), "fitting IsoFLOP profiles")


@app.command()
@fit_options()
def frontier(
    runs: Annotated[Path, typer.Argument(help="Learning curves (run, C, D, loss per row) or one row per run.")],
    run: Annotated[str | None, typer.Option("--run", help="Column holding the run id of each curve point.")] = None,
    grid_points: Annotated[int, typer.Option(help="Log-spaced compute values the curves are compared at.")] = 100,
    budget: Budgets = None,
    *,
    options: FitOptions,
) -> None:
    """Approach 1: the lowest loss at each compute across runs, L(C) = E + A C^-alpha, N_opt ∝ C^a."""
    table = options.load(runs, run=run)

    def fit_one(part):
        return fits.fit_frontier(part, grid_points=grid_points, **options.resampling())

    def show(console, fit):
        render.show(console, render.frontier(fit), render.allocation(fits.compute_optimal(fit, budget)))

    _run(table, options, fit_one, show, lambda fit: _with_allocation(fit, budget), "fitting the compute frontier")


@app.command("power-law")
@fit_options()
def power_law(
    runs: Annotated[Path, typer.Argument(help="Any table with numeric columns: .csv, .tsv, .parquet or .jsonl.")],
    x: Annotated[
        str, typer.Option(help="Column on the x axis: any positive numeric column (N, D, C also by their aliases).")
    ] = "C",
    y: Annotated[str, typer.Option(help="Column on the y axis.")] = "loss",
    floor: Annotated[
        bool, _flag("--floor", "Fit y = E + A x^-alpha with a floor E (Huber loss in log space, L-BFGS).")
    ] = False,
    no_offset: Annotated[
        bool, _flag("--no-offset", "Fit y = A x^-alpha without a floor (the default; kept for older scripts).")
    ] = False,
    complement: Annotated[
        float | None, typer.Option(help="Fit (COMPLEMENT - y), e.g. 1 for a success rate (fits the failure rate).")
    ] = None,
    broken: Annotated[bool, _flag("--broken", "Fit a broken power law with one bend (Caballero et al. 2022).")] = False,
    *,
    options: FitOptions,
) -> None:
    """y = A x^-alpha on any single axis: a gap vs tasks, loss vs episodes, N, D or C, failure rate vs data.

    Default, no floor: ordinary least squares of log y on log x, which is what robot-learning papers report (Lin et al. 2024: gap = a x^-b); the objective is the sum of squared log residuals, R^2 is in log space, and the intervals bootstrap over the points. --floor fits the saturating y = E + A x^-alpha instead (a loss that levels off), by a Huber loss in log space.

    x needs at least 3 distinct values, and x and y (or COMPLEMENT - y) must be > 0. Rows with an empty x or y (e.g. the success of a run that was not evaluated) are left out and counted; --drop-invalid also leaves out zero or negative ones.
    """
    if floor and no_offset:
        raise BadInputError("--floor and --no-offset contradict each other: give one (no floor is the default)")
    table = _rows_to_fit(_table_for_axes(runs, x, y, options), x, y, complement, options.drop_invalid)
    spread = options.resampling()

    def fit_one(part):
        import pandas as pd

        xs = pd.to_numeric(part.column(x), errors="coerce").to_numpy(float)
        ys = pd.to_numeric(part.column(y), errors="coerce").to_numpy(float)
        if broken:
            return fits.fit_broken_power_law(xs, ys, complement=complement, x_name=x, y_name=y, **spread)
        return fits.fit_power_law(xs, ys, offset=floor, complement=complement, x_name=x, y_name=y, **spread)

    def show(console, fit):
        render.show(console, render.power_law(fit))

    _run(table, options, fit_one, show, lambda fit: fit.to_dict(), f"fitting {y} against {x}")


def _table_for_axes(runs: Path, x: str, y: str, options: FitOptions) -> RunsTable:
    """The table a single-axis fit reads: any table, its columns as they are, when ``x``
    and ``y`` are columns of it; a runs table (N, D, C, loss found by their aliases and
    checked) when one of them names N, D, C or loss by an alias, or a runs-table
    option (a column mapping or a FLOP range) is given."""
    from roboscale.fit.runs_table import QUANTITIES

    frame = fits.read_table(runs)
    runs_options = (options.n, options.d, options.c, options.loss, options.min_flops, options.max_flops)
    aliased = any(name not in frame.columns and name in QUANTITIES for name in (x, y))
    if aliased or any(value is not None for value in runs_options) or options.drop_highest_loss:
        return options.load(runs)
    if len(frame) == 0:
        raise BadInputError(f"the table {runs} is empty: it needs one row per point")
    numeric = [str(name) for name in frame.columns if _is_numeric(frame[name])]
    for option, name in (("--x", x), ("--y", y)):
        if name not in frame.columns:
            raise BadInputError(
                f"column {name!r} (given with {option}) is not in {runs}; numeric columns: {', '.join(numeric) or '(none)'}"
            )
        if str(name) not in numeric:
            raise BadInputError(
                f"column {name!r} (given with {option}) of {runs} is not numeric; "
                f"numeric columns: {', '.join(numeric) or '(none)'}"
            )
    return fits.RunsTable(frame=frame, source=str(runs))


def _is_numeric(column) -> bool:
    """True when every non-empty cell of ``column`` reads as a number (an empty column
    is numeric: it is refused later, as empty)."""
    import pandas as pd

    return bool(pd.to_numeric(column.dropna(), errors="coerce").notna().all())


def _rows_to_fit(table: RunsTable, x: str, y: str, complement: float | None, drop_invalid: bool) -> RunsTable:
    """``table`` without the rows whose ``x`` or ``y`` cell is empty, and with
    ``drop_invalid`` without those whose x or fitted y (``complement - y``) is zero or
    negative (each counted in its ``dropped``); a column empty in every row is refused."""
    import numpy as np
    import pandas as pd

    xs = pd.to_numeric(table.column(x), errors="coerce")
    ys = pd.to_numeric(table.column(y), errors="coerce")
    empty = (xs.isna() | ys.isna()).to_numpy()
    if empty.all():
        raise BadInputError(f"{x} or {y} is empty in every row of {table.source}: nothing to fit")
    target = ys if complement is None else complement - ys
    invalid = ~empty & ~((xs > 0) & (target > 0) & np.isfinite(xs) & np.isfinite(target)).to_numpy()
    invalid = invalid if drop_invalid else np.zeros_like(empty)
    if not (empty.any() or invalid.any()):
        return table
    dropped = {f"without a value of {x} or {y}": int(empty.sum()), f"zero or negative {x} or {y}": int(invalid.sum())}
    kept = table.subset(~(empty | invalid))
    return replace(kept, dropped={**table.dropped, **{why: count for why, count in dropped.items() if count}})


UNIQUE_COLUMNS = ("unique_tokens", "U_D", "unique", "unique_samples")
EPOCH_COLUMNS = ("epochs", "repetitions")
Stage1Value = Annotated[float | None, typer.Option(help="Stage-1 law parameter (overrides --stage1).")]


@app.command("data-constrained")
@fit_options(skip=("c", "min_flops", "max_flops", "flops_per_param_token"))
def data_constrained(
    runs: Annotated[
        Path | None,
        typer.Argument(
            help="Runs table: N, tokens (D) and unique tokens (U_D) and loss per run (default: the bundled 182 runs "
            "of Muennighoff et al. 2023, with --stage1 published)."
        ),
    ] = None,
    unique: Annotated[
        str | None,
        typer.Option(
            help=f"Column of unique tokens U_D (default: the first of {', '.join(UNIQUE_COLUMNS)}).", metavar="COL"
        ),
    ] = None,
    epochs: Annotated[
        str | None,
        typer.Option(
            help="Without a U_D column: column of epochs, U_D = D / epochs (default: epochs or repetitions).",
            metavar="COL",
        ),
    ] = None,
    stage1: Annotated[
        str | None,
        typer.Option(
            help="The fixed stage-1 law: 'published' (Muennighoff et al.'s C4 fit) or the JSON of "
            "`roboscale fit parametric --json` on runs without repetition.",
        ),
    ] = None,
    stage1_e: Annotated[float | None, typer.Option("--E", help="Stage-1 E (overrides --stage1).")] = None,
    stage1_a: Annotated[float | None, typer.Option("--A", help="Stage-1 A (overrides --stage1).")] = None,
    stage1_b: Annotated[float | None, typer.Option("--B", help="Stage-1 B (overrides --stage1).")] = None,
    stage1_alpha: Annotated[float | None, typer.Option("--alpha", help="Stage-1 alpha (overrides --stage1).")] = None,
    stage1_beta: Annotated[float | None, typer.Option("--beta", help="Stage-1 beta (overrides --stage1).")] = None,
    huber_delta: Annotated[float, typer.Option(help="Huber loss threshold on log loss.")] = 1e-3,
    *,
    options: FitOptions,
) -> None:
    """What repeated data is worth (Muennighoff et al. 2023): R*_D and R*_N of the data-constrained law.

    U_D unique tokens trained on for D tokens repeat R_D = D/U_D - 1 times beyond the first epoch and count as D' = U_D + U_D R*_D (1 - exp(-R_D/R*_D)) tokens: early repeats almost as good as new data, later ones worth less and less, never more than R*_D epochs' worth in all. Parameters beyond U_N (the compute-optimal size for U_D under the stage-1 law) decay the same way with R*_N, and L = E + A/N'^alpha + B/D'^beta.

    Stage 1 (E, A, B, alpha, beta) is given and held fixed; R*_D and R*_N minimise the summed Huber loss (delta 1e-3) of log-prediction minus log-loss, by L-BFGS from a grid of starts. The objective has several local minima: every distinct one found is listed, lowest first. U_D comes from --unique (or D / --epochs).
    """
    if runs is None and stage1 is None:
        stage1 = "published"  # the bundled runs come with their own published stage-1 law
    law = _stage1_law(stage1, E=stage1_e, A=stage1_a, B=stage1_b, alpha=stage1_alpha, beta=stage1_beta)
    table = options.load(_example(runs, "muennighoff2023"))
    unique_of = _unique_data(table, unique, epochs)

    def fit_one(part):
        return fits.fit_data_constrained(
            part.N, part.D, unique_of(part), part.loss, **law, huber_delta=huber_delta, **options.resampling()
        )

    def show(console, fit):
        render.show(console, render.data_constrained(fit))

    _run(table, options, fit_one, show, lambda fit: fit.to_dict(), "fitting R*_D and R*_N")


def _stage1_law(source: str | None, **given: float | None) -> dict[str, float]:
    """E, A, B, alpha, beta: from ``source`` ('published' or a fit's JSON file), each
    overridden by a value given on its own; all five must end up known."""
    law: dict[str, float] = {}
    if source == "published":
        law = dict(fits.MUENNIGHOFF_C4_STAGE1)
    elif source is not None:
        path = Path(source)
        if not path.is_file():
            raise BadInputError(
                f"--stage1 {source!r}: give 'published' or the JSON file of `roboscale fit parametric --json`"
            )
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise BadInputError(
                f"--stage1 {source!r} is not JSON ({error}): give the output of `roboscale fit parametric --json`"
            ) from None
        law = {
            name: payload[name]
            for name in given
            if isinstance(payload, dict) and isinstance(payload.get(name), (int, float))
        }
    law.update({name: float(value) for name, value in given.items() if value is not None})
    missing = [name for name in given if name not in law]
    if missing:
        raise BadInputError(
            f"the stage-1 law lacks {', '.join(missing)}: give --stage1 published (Muennighoff et al.'s C4 fit), "
            "--stage1 FIT.json (from `roboscale fit parametric --json` on runs without repetition) or --E --A --B --alpha --beta"
        )
    return law


def _unique_data(table: RunsTable, unique: str | None, epochs: str | None) -> Callable[[RunsTable], object]:
    """How to read U_D from a (part of the) table: its unique-tokens column, or D / epochs."""
    import pandas as pd

    columns = list(table.frame.columns)
    if unique is None and epochs is None:
        unique = next((name for name in UNIQUE_COLUMNS if name in columns), None)
        epochs = None if unique else next((name for name in EPOCH_COLUMNS if name in columns), None)
    if unique is None and epochs is None:
        raise BadInputError(
            f"{table.source} has no unique-tokens column ({', '.join(UNIQUE_COLUMNS)}) nor epochs column "
            f"({', '.join(EPOCH_COLUMNS)}): name one with --unique COL or --epochs COL; columns: {', '.join(map(str, columns))}"
        )
    name = unique or epochs
    table.column(name)  # an unknown column is refused here, before any fit

    def read(part: RunsTable):
        values = pd.to_numeric(part.column(name), errors="coerce").to_numpy(float)
        return values if unique else part.D / values

    return read


@app.command()
@fit_options(skip=("ci_level",), defaults={"bootstrap": 200})
def audit(
    runs: Annotated[Path, typer.Argument(help="Runs table (see `roboscale fit parametric --help`).")],
    method: Annotated[str, typer.Option(help=f"Law to audit: {', '.join(METHODS)}.")] = "parametric",
    holdout: Annotated[int, typer.Option(help="Number of largest compute budgets to hold out.")] = 1,
    holdout_decades: Annotated[
        float, typer.Option(help="Learning curves (frontier): hold out the top this-many decades of compute.")
    ] = 0.5,
    run: Annotated[str | None, typer.Option("--run", help="Column holding the run id (learning curves).")] = None,
    *,
    options: FitOptions,
) -> None:
    """Refit without the largest-compute runs and report how well the law predicts them."""
    if method not in METHODS:
        raise BadInputError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    table = options.load(runs, run=run)
    if method == "frontier" and table.has_curves:
        _check_holdout_decades(holdout_decades, table)

    def fit_one(part):
        return fits.audit_extrapolation(
            part,
            method,
            holdout=holdout,
            holdout_decades=holdout_decades,
            bootstrap=options.bootstrap,
            seed=options.seed,
        )

    def show(console, result):
        render.show(console, render.audit(result))

    _run(table, options, fit_one, show, lambda result: result.to_dict(), f"auditing the {method} law")


def _check_holdout_decades(decades: float, table: RunsTable) -> None:
    """Holding out the top ``decades`` of compute must leave part of the curves to fit on."""
    span = math.log10(table.C.max() / table.C.min())
    if not 0 < decades < span:
        raise BadInputError(
            f"--holdout-decades {decades:g}: the learning curves span {span:.2g} decades of compute "
            f"({table.C.min():.3g} to {table.C.max():.3g} FLOPs); hold out more than 0 and less than that, e.g. 0.5"
        )


# ----------------------------------------------------------------------------------
# Data-axis fits (issue 14): `fit mixture`, `fit effective-data`, `fit joint-data`.
# They read any table (no N, D or C needed), so they share a small runner of their own.
# ----------------------------------------------------------------------------------

TABLE_ONLY = (
    "n",
    "d",
    "c",
    "loss",
    "flops_per_param_token",
    "drop_highest_loss",
    "drop_invalid",
    "min_flops",
    "max_flops",
)
"""FitOptions fields that only runs tables with N, D, C have."""

TableArg = Annotated[Path, typer.Argument(help="Table: .csv, .tsv, .parquet or .jsonl, one row per run.")]


def _column_list(text: str, option: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BadInputError(f"{option} {text!r}: give comma-separated column names")
    return names


def _read_columns(path: Path, columns: list[str], group: str | None):
    """The table with only the rows where every one of ``columns`` has a value (the
    others are counted), or a one-line error naming an unknown column."""
    frame = fits.read_table(path)
    wanted = [*columns, *([group] if group else [])]
    unknown = [name for name in dict.fromkeys(wanted) if name not in frame.columns]
    if unknown:
        raise BadInputError(
            f"{path.name} has no column {unknown[0]!r}: its columns are {', '.join(map(str, frame.columns))}"
        )
    empty = frame[columns].isna().any(axis=1).to_numpy()
    if empty.all():
        raise BadInputError(f"every row of {path.name} lacks one of {', '.join(columns)}: nothing to fit")
    if empty.any():
        note(f"left out: {int(empty.sum())} rows without a value of {', '.join(columns)}")
    return frame[~empty]


def _row_names(frame, path: Path) -> list[str]:
    """How to point at each row of ``frame``: its line in a CSV/TSV file, else its row number from 0."""
    if path.suffix.lower() in (".csv", ".tsv"):
        return [f"line {index + 2} of {path.name}" for index in frame.index]
    return [f"row {index} of {path.name}" for index in frame.index]


def _one_or_many(key: str, results: dict[str, dict]) -> dict:
    """``{key: results}``, with the single result's fields also at the top when there is one."""
    return {**(next(iter(results.values())) if len(results) == 1 else {}), key: results}


def _run_on_table(frame, path: Path, options: FitOptions, fit_one, show, describe, activity: str) -> None:
    """Fit every group of ``frame`` (or all of it); tables or one JSON object, as :func:`_run`."""
    group, as_json = options.group, options.as_json
    parts = [(str(name), part) for name, part in frame.groupby(group, sort=True)] if group else [(None, frame)]
    results = _fit_parts(parts, group, as_json, fit_one, show, describe, activity)
    if as_json:
        table_info = {"source": str(path), "n_runs": len(frame)}
        payload = {"group": group, "results": results} if group else results[""]
        sys.stdout.write(json.dumps({**payload, "runs": table_info}, indent=2) + "\n")
    _check_some_group_fitted(group, results)


def _target_weights(text: str | None, losses: list[str]) -> dict[str, float] | None:
    """``--target COL`` or ``--target COL=W,COL=W`` as weights over loss columns."""
    if text is None:
        return None
    weights: dict[str, float] = {}
    for part in _column_list(text, "--target"):
        name, _, weight = part.partition("=")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise BadInputError(f"--target {text!r}: {weight!r} is not a number (write COL=0.7,COL=0.3)") from None
        if name.strip() not in losses:
            raise BadInputError(f"--target {name.strip()!r} is not one of the --loss columns ({', '.join(losses)})")
    return weights


@app.command("mixture")
@fit_options(skip=TABLE_ONLY)
def mixture(
    table: Annotated[
        Path | None,
        typer.Argument(
            help="Table: .csv, .tsv, .parquet or .jsonl, one row per run (default: the bundled five-domain "
            "mixtures of Ye et al. 2024, every r_ column and every loss_ column but the overall one)."
        ),
    ] = None,
    proportions: Annotated[
        str | None,
        typer.Option(help="Comma-separated columns with each training source's share (each row sums to 1)."),
    ] = None,
    loss: Annotated[
        str | None,
        typer.Option(help="Comma-separated loss columns, one mixture law each (one per validation source)."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            help="Loss the optimal mixture minimises: a --loss column, or weights COL=W,COL=W (default: the first --loss column)."
        ),
    ] = None,
    huber_delta: Annotated[float, typer.Option(help="Huber threshold on the loss (Ye et al.: 0.05).")] = 0.05,
    *,
    options: FitOptions,
) -> None:
    """Data mixing law (Ye et al. 2024): L_i(r) = c_i + k_i exp(t_i . r) per loss column, and the optimal mixture.

    Fitted by the mean Huber loss on the loss itself with L-BFGS from a grid of starts; t is reported
    relative to the last proportion column (its t is 0: only differences of t are identified).
    """
    from roboscale.fit.mixture import check_proportions

    if table is None:
        table = _example(None, "ye2024_mixing")
        domains = ("academic", "prose", "dialogue", "symbolic", "internet")
        proportions = proportions or ",".join(f"r_{name}" for name in domains)
        loss = loss or ",".join(f"loss_{name}" for name in domains)
    if proportions is None or loss is None:
        raise BadInputError("fit mixture needs --proportions COL,COL[,...] and --loss COL[,...] for a table of yours")
    sources, losses = _column_list(proportions, "--proportions"), _column_list(loss, "--loss")
    weights = _target_weights(target, losses)
    frame = _read_columns(table, [*sources, *losses], options.group)
    check_proportions(frame[sources].to_numpy(float), sources, _row_names(frame, table))

    def fit_one(part):
        laws = [
            fits.fit_mixture_law(
                part[sources].to_numpy(float),
                part[column].to_numpy(float),
                sources,
                name=column,
                huber_delta=huber_delta,
                **options.resampling(),
            )
            for column in losses
        ]
        return laws, fits.optimal_mixture(laws, weights)

    def show(console, fitted):
        laws, best = fitted
        render.show(console, render.mixture_laws(laws), render.optimal_mixture(best))

    def describe(fitted) -> dict:
        laws, best = fitted
        return {**_one_or_many("laws", {law.name: law.to_dict() for law in laws}), "optimal_mixture": best.to_dict()}

    _run_on_table(frame, table, options, fit_one, show, describe, f"fitting {len(losses)} mixture law(s)")


@app.command("effective-data")
@fit_options(skip=TABLE_ONLY)
def effective_data(
    table: TableArg,
    amount: Annotated[str, typer.Option(help="Column with each run's episodes of its source.")],
    loss: Annotated[str, typer.Option(help="Loss column (on the reference's validation set).")],
    source: Annotated[str, typer.Option(help="Column naming each run's source.")],
    reference: Annotated[str, typer.Option(help="The reference source (a value of --source), e.g. expert.")],
    base: Annotated[
        str | None,
        typer.Option(
            help="Column with reference episodes the other sources' runs ALSO had (data added to a fixed set)."
        ),
    ] = None,
    floor: Annotated[bool, _flag("--floor", "Fit the reference law with a floor: E + A D^-alpha.")] = False,
    *,
    options: FitOptions,
) -> None:
    """Effective data (Hernandez et al. 2021): reference episodes one episode of another source is worth.

    The reference's loss law L = A D^-alpha (least squares in log-log space; E + A D^-alpha with --floor) is
    inverted at each other-source level's loss; worth = D_eff / D per level, and D_eff = k D^beta across levels.
    """
    frame = _read_columns(table, [amount, loss, source, *([base] if base else [])], options.group)
    names = sorted(map(str, frame[source].unique()))
    if reference not in names:
        raise BadInputError(f"--reference {reference!r} is not a value of {source!r}: it has {', '.join(names)}")
    if len(names) < 2:
        raise BadInputError(f"{source!r} has only {reference!r}: give runs of another source too")

    def fit_one(part):
        labels = part[source].astype(str)
        ref = part[labels == reference]
        fitted = {}
        for other in sorted(set(labels) - {reference}):
            runs = part[labels == other]
            fitted[other] = fits.fit_effective_data(
                ref[amount].to_numpy(float),
                ref[loss].to_numpy(float),
                runs[amount].to_numpy(float),
                runs[loss].to_numpy(float),
                base_ref_amount=runs[base].to_numpy(float) if base else 0.0,
                floor=floor,
                reference=reference,
                other=other,
                **options.resampling(),
            )
        return fitted

    def show(console, fitted):
        render.show(console, *(render.effective_data(fit) for fit in fitted.values()))

    def describe(fitted) -> dict:
        return _one_or_many("sources", {name: fit.to_dict() for name, fit in fitted.items()})

    _run_on_table(frame, table, options, fit_one, show, describe, "fitting effective data")


@app.command("joint-data")
@fit_options(skip=TABLE_ONLY)
def joint_data(
    table: TableArg,
    n: Annotated[str, typer.Option("--n", help="Column with each run's parameter count N.")],
    amounts: Annotated[
        str,
        typer.Option(help="Comma-separated columns with each source's amount (e.g. episodes_expert,episodes_noisy)."),
    ],
    loss: Annotated[str, typer.Option(help="Loss column.")],
    reference: Annotated[str, typer.Option(help="The --amounts column whose weight is 1.")],
    *,
    options: FitOptions,
) -> None:
    """L = E + A N^-alpha + B (sum_s w_s D_s)^-beta: what a unit of each source is worth (w_reference = 1).

    Needs runs at several model sizes and at least (parameters + 2) runs.
    """
    columns = _column_list(amounts, "--amounts")
    if reference not in columns:
        raise BadInputError(f"--reference {reference!r} is not one of the --amounts columns ({', '.join(columns)})")
    frame = _read_columns(table, [n, *columns, loss], options.group)

    def fit_one(part):
        return fits.fit_joint_data_law(
            part[n].to_numpy(float),
            part[columns].to_numpy(float),
            part[loss].to_numpy(float),
            columns,
            reference,
            **options.resampling(),
        )

    def show(console, fit):
        render.show(console, render.joint_data(fit))

    _run_on_table(frame, table, options, fit_one, show, lambda fit: fit.to_dict(), "fitting the joint data law")
