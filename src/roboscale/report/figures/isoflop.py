"""IsoFLOP profiles: loss against model size at each compute budget, with the fitted parabolas."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from roboscale.report.analysis import GroupData, same_budget
from roboscale.report.figures.panel import Panel, unavailable
from roboscale.report.formatting import as_float, flops, is_number, number
from roboscale.report.plotting import LABEL_LOSS, LABEL_N, log_axes, render_svg, sequential_colors

PROFILE_CI_LEVEL = 0.95
"""Level of each profile's ``n_opt_ci`` (the IsoFLOP fit computes it at 95% whatever its own level)."""


def isoflop_panel(data: GroupData) -> Panel:
    """Figure (a): the IsoFLOP curves of one group, or the fit's error."""
    figure_id = f"fig-isoflop-{data.slug}"
    title = f"IsoFLOP profiles · {data.label}"
    fit = data.fit("isoflop")
    if fit is None:
        return unavailable(figure_id, title, f"IsoFLOP fit: {data.fit_error('isoflop')}")
    profiles = sorted(fit.get("profiles") or [], key=lambda profile: as_float(profile.get("C")))
    if not profiles:
        return unavailable(figure_id, title, "IsoFLOP fit has no profiles to draw")
    svg = render_svg(lambda figure: _draw(figure, data, profiles, title), figure_id)
    return Panel(figure_id, title, _caption(profiles), svg=svg)


def _draw(figure: Figure, data: GroupData, profiles: list[dict], title: str) -> None:
    axes = log_axes(figure, title, LABEL_N, LABEL_LOSS, plain_y=True)
    for profile, color in zip(profiles, sequential_colors(len(profiles))):
        _draw_profile(axes, profile, color, _profile_runs(data.fitted_runs, profile))
    held_out = data.holdout_runs
    if held_out:
        axes.plot(
            [run["N"] for run in held_out], [run["loss"] for run in held_out], "x", color="black", label="held out"
        )
    handles, _ = axes.get_legend_handles_labels()
    handles += _vertex_legend(any(profile.get("usable") and profile.get("flat") for profile in profiles))
    axes.legend(handles=handles, loc="best", ncols=2 if len(handles) > 7 else 1)


def _profile_runs(runs: list[dict], profile: dict) -> list[dict]:
    """The runs whose budget is this profile's C, smallest model first."""
    members = [run for run in runs if same_budget(run.get("budget"), profile.get("C"))]
    return sorted(members, key=lambda run: run["N"])


def _draw_profile(axes, profile: dict, color, runs: list[dict]) -> None:
    """The runs of one budget as points, its parabola over the fitted window and its vertex."""
    usable = bool(profile.get("usable"))
    label = f"C = {flops(profile.get('C'))}" + ("" if usable else " (not used)")
    N = [run["N"] for run in runs]
    loss = [run["loss"] for run in runs]
    points = profile.get("points") or []
    if points:  # several seeds per size: every run faint, each size's mean with its standard error
        axes.plot(N, loss, ".", color=color, alpha=0.35, markersize=3)
        means = [point[1] for point in points]
        errors = [point[2] for point in points]
        axes.errorbar(
            [point[0] for point in points],
            means,
            yerr=errors,
            fmt="o",
            color=color,
            alpha=0.9 if usable else 0.45,
            markersize=4.5,
            capsize=2.5,
            label=label,
        )
    else:
        axes.plot(N, loss, "o", color=color, alpha=0.9 if usable else 0.45, markersize=4.5, label=label)
    if not usable or not all(is_number(profile.get(key)) for key in ("N_opt", "loss_opt", "curvature")):
        return
    window = profile.get("window") or [None, None]
    if all(is_number(end) for end in window):
        grid = np.geomspace(as_float(window[0]), as_float(window[1]), 80)
        axes.plot(grid, parabola(profile, grid), "-", color=color, linewidth=1.3)
    _draw_vertex(axes, profile, color)


def parabola(profile: dict, N: np.ndarray) -> np.ndarray:
    """The profile's fitted loss at model sizes N: ``loss_opt + curvature/2 (ln N - ln N_opt)^2``."""
    offset = np.log(N) - np.log(as_float(profile["N_opt"]))
    return as_float(profile["loss_opt"]) + 0.5 * as_float(profile["curvature"]) * offset**2


def _draw_vertex(axes, profile: dict, color) -> None:
    """The vertex (N_opt, loss_opt), hollow when the profile is flat, with its N_opt interval."""
    N_opt, loss_opt = as_float(profile["N_opt"]), as_float(profile["loss_opt"])
    low, high = (as_float(end) for end in (profile.get("n_opt_ci") or [None, None]))
    xerr = [[N_opt - low], [high - N_opt]] if np.isfinite(low) and np.isfinite(high) else None
    axes.errorbar(
        [N_opt],
        [loss_opt],
        xerr=xerr,
        fmt="D",
        markersize=6.5,
        color=color,
        markerfacecolor="white" if profile.get("flat") else color,
        markeredgecolor="black",
        ecolor=color,
        elinewidth=1.2,
        capsize=3,
        zorder=3,
    )


def _vertex_legend(any_flat: bool) -> list[Line2D]:
    """Legend entries that explain the vertex markers."""
    level = f"{100 * PROFILE_CI_LEVEL:.0f}%"
    handles = [
        Line2D(
            [],
            [],
            marker="D",
            linestyle="-",
            color="grey",
            markeredgecolor="black",
            label=f"parabola and vertex N_opt ({level} CI)",
        ),
    ]
    if any_flat:
        handles.append(
            Line2D(
                [],
                [],
                marker="D",
                linestyle="none",
                color="grey",
                markerfacecolor="white",
                markeredgecolor="black",
                label="flat profile: minimum not resolved",
            )
        )
    return handles


def _caption(profiles: list[dict]) -> str:
    """What the figure shows, which profiles are flat and which were left out (and why)."""
    text = (
        "Final validation loss of each finished run against its model size, one colour per compute "
        "budget. Lines: the parabola in ln N fitted to each usable profile over its window of model "
        f"sizes; diamonds: its vertex N_opt with the {100 * PROFILE_CI_LEVEL:.0f}% bootstrap interval."
    )
    seeds = max((int(p["seeds"]) for p in profiles if is_number(p.get("seeds"))), default=1)
    if seeds > 1:
        text += (
            f" With up to {seeds} seeds per size: small dots are single runs, circles the mean of each size with "
            "its standard error (seed variance pooled over the budget); the parabola is weighted by 1/SE^2."
        )
    flat = [flops(p.get("C")) for p in profiles if p.get("usable") and p.get("flat")]
    if flat:
        text += f" Flat profiles (hollow vertex, minimum not resolved by the data): {', '.join(flat)}."
    unusable = [f"{flops(p.get('C'))}: {p.get('reason') or 'no reason given'}" for p in profiles if not p.get("usable")]
    if unusable:
        text += f" Left out of the fit: {'; '.join(unusable)}."
    usable = [p for p in profiles if p.get("usable") and is_number(p.get("N_opt"))]
    if usable:
        optima = ", ".join(f"{number(p['N_opt'])} at {flops(p['C'])}" for p in usable)
        text += f" N_opt: {optima}."
    return text
