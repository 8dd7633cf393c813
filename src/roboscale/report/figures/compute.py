"""Loss against compute: every learning curve, the compute-efficient frontier and its law."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from roboscale.report.analysis import GroupData
from roboscale.report.figures.panel import Panel, unavailable
from roboscale.report.formatting import as_float, is_number, number, shorten
from roboscale.report.plotting import (
    LABEL_C,
    LABEL_LOSS,
    LABEL_N,
    log_axes,
    log_color_norm,
    log_colorbar,
    render_svg,
)

EXTEND_LAW = 10.0
"""The fitted law is drawn (dashed) this many times beyond the largest compute of the frontier."""

CURVE_COLORMAP = "viridis"


def loss_compute_panel(data: GroupData) -> Panel:
    """Figure (b): learning curves of the group's finished runs with the frontier law."""
    figure_id = f"fig-loss-compute-{data.slug}"
    title = f"Loss vs compute · {data.label}"
    curves = _finished_curves(data)
    frontier = data.fit("frontier")
    if not curves and frontier is None:
        problem = f"no learning curves recorded; frontier fit: {data.fit_error('frontier')}"
        return unavailable(figure_id, title, problem)
    svg = render_svg(lambda figure: _draw(figure, data, curves, frontier, title), figure_id)
    return Panel(figure_id, title, _caption(frontier, data.fit_error("frontier"), len(curves)), svg=svg)


def _finished_curves(data: GroupData) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(N, FLOPs, validation loss) of each finished run's learning curve, positive points only."""
    curves = []
    for run in data.measured_runs:
        points = data.curves.get(run.get("run_id")) or []
        xy = [(as_float(p.get("flops")), as_float(p.get("val_loss"))) for p in points]
        xy = [(x, y) for x, y in xy if x > 0 and y > 0]  # NaN compares False: dropped too
        if xy:
            C, loss = np.array(xy).T
            curves.append((as_float(run["N"]), C, loss))
    return curves


def _draw(figure: Figure, data, curves, frontier: dict | None, title: str) -> None:
    axes = log_axes(figure, title, LABEL_C, LABEL_LOSS, plain_y=True)
    norm = log_color_norm([N for N, _, _ in curves])
    cmap = matplotlib.colormaps[CURVE_COLORMAP]
    for N, C, loss in sorted(curves, key=lambda curve: curve[0]):
        axes.plot(C, loss, "-", color=cmap(norm(N)), linewidth=0.8, alpha=0.85)
    handles = []
    if curves:
        log_colorbar(figure, axes, norm, CURVE_COLORMAP, LABEL_N)
        handles.append(Line2D([], [], color="grey", linewidth=0.8, label="learning curve of a run (colour: N)"))
    if frontier is not None:
        handles += _draw_frontier(axes, frontier)
    axes.legend(handles=handles, loc="upper right")


def _draw_frontier(axes, frontier: dict) -> list:
    """Frontier points and the law ``E + A C^-alpha``: solid over the data, dashed 10x beyond."""
    points = frontier.get("frontier") or {}
    C = np.array([as_float(c) for c in points.get("C") or []])
    loss = np.array([as_float(v) for v in points.get("loss") or []])
    handles = []
    if C.size:
        (marker,) = axes.plot(C, loss, "o", color="black", markersize=2.5, label="frontier: lowest loss at each C")
        handles.append(marker)
    if not all(is_number(frontier.get(key)) for key in ("E", "A", "alpha")):
        return handles
    low, high = _law_range(frontier, C)
    if not (math.isfinite(low) and math.isfinite(high)):
        return handles
    E, A, alpha = (as_float(frontier[key]) for key in ("E", "A", "alpha"))
    inside, beyond = np.geomspace(low, high, 100), np.geomspace(high, EXTEND_LAW * high, 30)
    label = f"fit L(C) = {number(E)} + {number(A)}·C^−{number(alpha)}"
    (line,) = axes.plot(inside, E + A * inside**-alpha, "-", color="#d62728", linewidth=1.8, label=label)
    (dashed,) = axes.plot(
        beyond, E + A * beyond**-alpha, "--", color="#d62728", linewidth=1.8, label=f"extrapolated {EXTEND_LAW:g}x"
    )
    return handles + [line, dashed]


def _law_range(frontier: dict, frontier_C: np.ndarray) -> tuple[float, float]:
    """Compute range (FLOPs) the law was fitted on: the frontier points, else the fit's compute_range."""
    finite = frontier_C[np.isfinite(frontier_C) & (frontier_C > 0)]
    if finite.size:
        return float(finite.min()), float(finite.max())
    low, high = (frontier.get("compute_range") or [None, None])[:2]
    return as_float(low), as_float(high)


def _caption(frontier: dict | None, error: str | None, n_curves: int) -> str:
    text = (
        f"Validation loss against training compute along the learning curves of {n_curves} finished runs "
        "(thin lines, coloured by model size on a log scale)."
    )
    if frontier is None:
        return text + f" No frontier law: {shorten(error)}."
    alpha = frontier.get("alpha")
    ci = (frontier.get("ci") or {}).get("alpha")
    text += (
        " Black points: the compute-efficient frontier (the lowest loss any run reached at each compute); "
        f"red: the law L(C) = E + A·C^−alpha fitted to it (alpha = {number(alpha)}"
    )
    if ci and all(is_number(end) for end in ci):
        text += f", {number(ci[0])}–{number(ci[1])}"
    return text + f"), dashed where it is extrapolated up to {EXTEND_LAW:g}x beyond the data."
