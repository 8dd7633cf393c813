"""Readable terminal tables (rich) for fitted laws."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

import roboscale.fit as fits  # its submodules load on first use, not at CLI start-up

if TYPE_CHECKING:
    from roboscale.fit import (
        BrokenPowerLawFit,
        ComputeOptimal,
        DataConstrainedFit,
        ExtrapolationAudit,
        FrontierFit,
        IsoFlopFit,
        ParametricFit,
        PowerLawFit,
    )


def number(value: float, digits: int = 4) -> str:
    """Compact number: ``digits`` significant digits, ``1.39e9`` style when large or small."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
        mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if magnitude >= 10 ** (digits - 1):
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def interval(bounds, digits: int = 4) -> str:
    if bounds is None or len(bounds) != 2 or any(b is None or not math.isfinite(b) for b in bounds):
        return "-"
    return f"[{number(bounds[0], digits)}, {number(bounds[1], digits)}]"


def with_interval(value: float, bounds, digits: int = 3) -> str:
    text = number(value, digits)
    span = interval(bounds, digits)
    return text if span == "-" else f"{text} {span}"


def _parameter_table(fit, rows: list[tuple[str, str, str]]) -> Table:
    level = round(100 * fit.ci_level)
    # Why resamples were left out goes under the table, so "931 of 1000" is never unexplained.
    dropped = ", ".join(f"{count} {why}" for why, count in fit.bootstrap_dropped.items())
    table = Table(
        show_edge=False,
        header_style="bold",
        caption=f"resamples left out: {dropped}" if fit.bootstrap and dropped else None,
        caption_justify="left",
        caption_style="dim",
    )
    table.add_column("parameter")
    table.add_column("estimate", justify="right")
    table.add_column(
        f"{level}% CI ({fit.bootstrap_converged} of {fit.bootstrap} resamples)" if fit.bootstrap else "CI",
        justify="right",
    )
    table.add_column("meaning")
    for name, meaning, unit in rows:
        table.add_row(name, number(getattr(fit, name)), interval(fit.ci.get(name)), f"{meaning}{unit}")
    return table


def parametric(fit: ParametricFit) -> Group:
    title = Text.assemble(
        ("Parametric law  ", "bold"),
        "L(N, D) = E + A / N^alpha + B / D^beta",
        (f"   {fit.n_runs} runs, Huber delta {fit.huber_delta:g}, {fit.starts} starts", "dim"),
    )
    rows = [
        ("E", "irreducible loss", ""),
        ("A", "model-size coefficient", ""),
        ("alpha", "model-size exponent", ""),
        ("B", "data coefficient", ""),
        ("beta", "data exponent", ""),
        ("a", "N_opt ∝ C^a  (beta / (alpha + beta))", ""),
        ("b", "D_opt ∝ C^b  (alpha / (alpha + beta))", ""),
    ]
    quality = Text(
        f"fit: objective {fit.objective:.6g} (sum of Huber losses), rms error {100 * fit.residual_rms:.2f}% of loss"
        + (", E held fixed" if fit.fixed_E else ""),
        style="dim",
    )
    return Group(title, _parameter_table(fit, rows), quality, convention(fit, "N_opt and D_opt solve C = k N D"))


def convention(fit, use: str) -> Text:
    """The fit's FLOP convention ``C = k N D`` and what the allocation does with it."""
    k = getattr(fit, "flops_per_param_token", math.nan)
    return Text(f"compute: C = {number(k, 3)} N D ({number(k, 3)} FLOPs per parameter per token); {use}", style="dim")


def isoflop(fit: IsoFlopFit) -> Group:
    title = Text.assemble(
        ("IsoFLOP profiles  ", "bold"),
        "N_opt = k_N C^a,  D_opt = k_D C^b",
        (
            (
                f"   {len(fit.usable_profiles)} of {len(fit.profiles)} budgets usable, "
                f"{'weighted' if fit.weighted else 'unweighted'} least squares"
            ),
            "dim",
        ),
    )
    params = _parameter_table(
        fit,
        [
            ("a", "N_opt exponent", ""),
            ("k_N", "N_opt coefficient", " (parameters at C = 1 FLOP)"),
            ("b", "D_opt exponent", ""),
            ("k_D", "D_opt coefficient", ""),
        ],
    )
    profiles = Table(show_edge=False, header_style="bold", title="per budget", title_justify="left")
    for name, justify in (
        ("C (FLOPs)", "right"),
        ("runs", "right"),
        ("N_opt", "right"),
        ("95% CI", "right"),
        ("D_opt", "right"),
        ("loss_opt", "right"),
        ("status", "left"),
    ):
        profiles.add_column(name, justify=justify)
    for p in fit.profiles:
        status = "flat: minimum not resolved" if p.flat else ("ok" if p.usable else p.reason)
        style = "yellow" if p.flat else (None if p.usable else "dim")
        profiles.add_row(
            number(p.C),
            str(p.n_runs),
            number(p.N_opt),
            interval(p.n_opt_ci),
            number(p.D_opt),
            number(p.loss_opt),
            status,
            style=style,
        )
    use = "each D_opt is read off the runs' own D" if fit.n_runs else "a missing D_opt is C / (k N_opt)"
    parts = [title, params, profiles, convention(fit, use)]
    if fit.flat_profiles:
        parts.append(
            Text(
                f"warning: {len(fit.flat_profiles)} budget(s) too flat to locate the minimum; "
                "add seeds or model sizes around it before trusting the exponent",
                style="yellow",
            )
        )
    if fit.loss_law is not None:
        law = fit.loss_law
        parts.append(
            Text(f"loss at the optimum: {number(law.E)} + {number(law.A)} * C^-{number(law.alpha)}", style="dim")
        )
    return Group(*parts)


def frontier(fit: FrontierFit) -> Group:
    source = "learning curves" if fit.from_curves else "final runs (Pareto front)"
    title = Text.assemble(
        ("Compute frontier  ", "bold"),
        "L(C) = E + A C^-alpha,  N_opt = k_N C^a,  D_opt = k_D C^b",
        (f"   {fit.n_runs} runs, {len(fit.frontier_C)} frontier points from {source}", "dim"),
    )
    rows = [
        ("E", "irreducible loss", _floor_note(fit)),
        ("A", "compute coefficient", ""),
        ("alpha", "compute exponent", ""),
        ("a", "N_opt exponent", ""),
        ("b", "D_opt exponent", ""),
    ]
    return Group(
        title,
        _parameter_table(fit, rows),
        Text(f"rms error {100 * fit.residual_rms:.2f}% of loss", style="dim"),
        convention(fit, "D_opt is the tokens the frontier's runs had seen"),
    )


def _floor_note(fit: FrontierFit) -> str:
    """What the E row adds when the floor sits at its lower bound 0."""
    if not fit.E_at_lower_bound:
        return ""
    count = f" (nor do {fit.E_at_lower_bound_resamples} of {fit.bootstrap_converged} resamples)"
    return ": at the lower bound 0: the frontier shows no floor" + (count if fit.bootstrap else "")


def power_law(fit: PowerLawFit | BrokenPowerLawFit) -> Group:
    if isinstance(fit, fits.BrokenPowerLawFit):
        title = Text.assemble(
            ("Broken power law  ", "bold"), fit.to_dict()["law"], (f"   {fit.n_points} points", "dim")
        )
        rows = [
            ("E", "floor", ""),
            ("A", "coefficient", ""),
            ("c0", "slope before the break", ""),
            ("c1", "change of slope at the break", ""),
            ("d1", f"break location ({fit.x_name})", ""),
            ("f1", "sharpness of the break (smaller = sharper)", ""),
        ]
    else:
        how = "Huber loss in log space" if fit.offset else "least squares in log-log space"
        title = Text.assemble(("Power law  ", "bold"), fit.law, (f"   {fit.n_points} points, {how}", "dim"))
        rows = [("E", "floor", "")] if fit.offset else []
        rows += [("A", "coefficient", ""), ("alpha", "exponent", "")]
    r_squared = f", R^2 {fit.r_squared:.4f} in log space" if isinstance(fit, fits.PowerLawFit) else ""
    quality = Text(f"rms error {100 * fit.residual_rms:.2f}% of {fit.y_name}{r_squared}", style="dim")
    parts = [title, _parameter_table(fit, rows), quality]
    if isinstance(fit, fits.PowerLawFit) and fit.alpha < 0:
        parts.append(Text(f"warning: alpha < 0, the fitted curve rises with {fit.x_name}", style="yellow"))
    return Group(*parts)


def data_constrained(fit: DataConstrainedFit) -> Group:
    """The fitted R*_D, R*_N, every optimum found, and how much the law explains."""
    title = Text.assemble(
        ("Data-constrained law  ", "bold"),
        "L = E + A/N'^alpha + B/D'^beta, D' = U_D + U_D R_D_star (1 - exp(-R_D/R_D_star)), N' likewise",
        (f"   {fit.n_runs} runs, Huber delta {fit.huber_delta:g}", "dim"),
    )
    rows = [
        ("R_D_star", "repetitions of the data at which one more is worth 1/e of new data", ""),
        ("R_N_star", "excess parameters (multiples of U_N) at which more are worth 1/e", ""),
    ]
    optima = Table(show_edge=False, header_style="bold", title="Every optimum found", title_justify="left")
    for name in ("R_D_star", "R_N_star", "objective", "R^2"):
        optima.add_column(name, justify="right")
    for optimum in fit.optima:
        optima.add_row(
            number(optimum.R_D_star), number(optimum.R_N_star), f"{optimum.objective:.7f}", f"{optimum.r_squared:.4f}"
        )
    law = fit.stage1
    stage1 = f"stage 1 (held fixed): E {number(law.E)}, A {number(law.A)}, B {number(law.B)}, "
    stage1 += f"alpha {number(law.alpha)}, beta {number(law.beta)}"
    quality = Text(
        f"objective {fit.objective:.7f}, R^2 {fit.r_squared:.4f} (the stage-1 law alone: "
        f"{fit.chinchilla_r_squared:.4f}), rms error {100 * fit.residual_rms:.2f}% of loss",
        style="dim",
    )
    parts = [title, _parameter_table(fit, rows), quality, Text(stage1, style="dim")]
    if fit.unbounded_above:
        parts.append(
            Text(
                f"the interval of {' and '.join(fit.unbounded_above)} has no upper end: too many resamples put it at "
                "infinity (repeats as good as new); runs with more repetitions would bound it",
                style="yellow",
            )
        )
    return Group(*parts, optima)


def allocation(plan: ComputeOptimal) -> Table:
    level = round(100 * plan.ci_level)
    table = Table(
        show_edge=False,
        header_style="bold",
        title_justify="left",
        title_style="bold",
        title=f"Compute-optimal allocation ({level}% intervals)",
    )
    for name in ("C (FLOPs)", "x data", "N_opt (parameters)", "D_opt (tokens/samples)", "tokens/param", "loss"):
        table.add_column(name, justify="right")
    for row in plan.to_frame().itertuples():
        table.add_row(
            number(row.C, 3),
            f"{row.extrapolation:.4g}",
            with_interval(row.N_opt, (row.N_opt_lo, row.N_opt_hi)),
            with_interval(row.D_opt, (row.D_opt_lo, row.D_opt_hi)),
            number(row.tokens_per_param, 3),
            with_interval(row.loss, (row.loss_lo, row.loss_hi), 4),
        )
    return table


def audit(result: ExtrapolationAudit) -> Group:
    title = Text.assemble(
        ("Extrapolation audit  ", "bold"),
        f"{result.method} law refitted on runs up to C = {number(result.threshold_C)} FLOPs "
        f"({result.n_train} runs), predicting {result.n_test} held-out runs",
    )
    summary = Text(
        f"mean |error| {100 * result.mean_abs_relative_error:.2f}%, max {100 * result.max_abs_relative_error:.2f}%, "
        f"bias {100 * result.bias:+.2f}%"
        + (
            f", {100 * result.coverage:.0f}% of observations inside the {int(100 * result.ci_level)}% interval"
            if math.isfinite(result.coverage)
            else ""
        )
    )
    table = Table(show_edge=False, header_style="bold")
    for name in ("C (FLOPs)", "N", "observed", "predicted", "interval", "error"):
        table.add_column(name, justify="right")
    for row in result.points.itertuples():
        table.add_row(
            number(row.C),
            number(row.N),
            number(row.observed),
            number(row.predicted),
            interval((row.predicted_lo, row.predicted_hi)),
            f"{100 * row.relative_error:+.2f}%",
        )
    parts = [title, summary, table]
    if result.optimum is not None:
        for row in result.optimum.itertuples():
            parts.append(
                Text(
                    f"N_opt at C = {number(row.C)}: observed {number(row.N_opt_observed)}, "
                    f"predicted {number(row.N_opt_predicted)} (off by x{10 ** abs(row.log10_ratio):.2f})"
                )
            )
    return Group(*parts)


def show(console: Console, *renderables) -> None:
    for item in renderables:
        console.print(item)
    console.print()


# ----------------------------------------------------------------------------------
# Data-axis laws (issue 14): mixtures, effective data, the joint law per source
# ----------------------------------------------------------------------------------


def _resamples_header(fit) -> str:
    level = round(100 * fit.ci_level)
    return f"{level}% CI ({fit.bootstrap_converged} of {fit.bootstrap} resamples)" if fit.bootstrap else "CI"


def mixture_laws(laws: list) -> Group:
    """One parameter table per validation source: c, k, t per training source (last t = 0)."""
    first = laws[0]
    parts: list = [
        Text.assemble(
            ("Mixture laws  ", "bold"),
            "L(r) = c + k exp(t . r)",
            (f"   {first.n_mixtures} mixtures; t relative to {first.source_names[-1]} (its t = 0)", "dim"),
        )
    ]
    for law in laws:
        table = Table(show_edge=False, header_style="bold", title=law.name, title_justify="left", title_style="bold")
        table.add_column("parameter")
        table.add_column("estimate", justify="right")
        table.add_column(_resamples_header(law), justify="right")
        table.add_column("meaning")
        table.add_row("c", number(law.c), interval(law.ci.get("c")), "floor: the loss no mixture goes below")
        table.add_row("k", number(law.k), interval(law.ci.get("k")), "scale")
        for source, t in zip(law.source_names[:-1], law.t[:-1]):
            table.add_row(f"t_{source}", number(t), interval(law.ci.get(f"t_{source}")), f"effect of {source}'s share")
        parts.append(table)
        parts.append(
            Text(f"mean Huber objective {number(law.objective)}, rms error {number(law.residual_rms, 3)}", style="dim")
        )
    return Group(*parts)


def optimal_mixture(result) -> Group:
    target = " + ".join(f"{weight:.3g} x {name}" for name, weight in result.target.items())
    level = round(100 * result.ci_level)
    title = Text.assemble(
        ("Optimal mixture  ", "bold"),
        f"minimises {target}",
        (f"   {level}% intervals, {result.bootstrap} resamples", "dim"),
    )
    table = Table(show_edge=False, header_style="bold")
    table.add_column("source")
    table.add_column("proportion", justify="right")
    for name, share in zip(result.source_names, result.proportions):
        table.add_row(name, with_interval(share, result.proportions_ci.get(name)))
    loss = Text(f"predicted target loss {with_interval(result.loss, result.loss_ci, 4)}")
    parts = [title, table, loss]
    if result.extrapolated:
        parts.append(
            Text("warning: outside the range of the trained mixtures: check it by training it", style="yellow")
        )
    return Group(*parts)


def effective_data(fit) -> Group:
    title = Text.assemble(("Effective data  ", "bold"), fit.law, (f"   {fit.reference_runs} reference runs", "dim"))
    reference = Text(
        f"reference law: L = {number(fit.E) + ' + ' if fit.floor else ''}{number(fit.A)} D^-{number(fit.alpha, 3)}"
        f" over {number(fit.reference_range[0])}-{number(fit.reference_range[1])} {fit.reference} episodes"
    )
    table = Table(show_edge=False, header_style="bold", caption=_resamples_header(fit), caption_justify="left")
    for name in (f"{fit.other} episodes", f"+ {fit.reference}", "runs", "loss", "effective", "worth", ""):
        table.add_column(name, justify="right")
    for level in fit.levels:
        table.add_row(
            number(level.amount),
            number(level.base),
            str(level.runs),
            number(level.loss),
            with_interval(level.effective, level.effective_ci),
            with_interval(level.worth, level.worth_ci),
            "extrapolated" if level.extrapolated else "",
        )
    law = (
        Text(
            f"D_eff = k D^beta: k = {with_interval(fit.k, fit.ci.get('k'))}, beta = {with_interval(fit.beta, fit.ci.get('beta'))}"
        )
        if math.isfinite(fit.k)
        else Text(fit.note, style="yellow")
    )
    return Group(title, reference, table, law)


def joint_data(fit) -> Group:
    title = Text.assemble(("Joint data law  ", "bold"), fit.law, (f"   {fit.n_runs} runs", "dim"))
    rows = [
        ("E", "irreducible loss", ""),
        ("A", "model-size coefficient", ""),
        ("alpha", "model-size exponent", ""),
        ("B", "data coefficient", ""),
        ("beta", "data exponent", ""),
    ]
    table = _parameter_table(fit, rows)
    for name, weight in fit.weights.items():
        meaning = "reference (fixed)" if name == fit.reference else f"{fit.reference} units per unit of {name}"
        table.add_row(f"w_{name}", number(weight), interval(fit.ci.get(f"w_{name}")), meaning)
    quality = Text(f"rms error {100 * fit.residual_rms:.2f}% of the loss", style="dim")
    return Group(title, table, quality)
