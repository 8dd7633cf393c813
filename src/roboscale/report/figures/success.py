"""Closed-loop success of a group's bc runs: does lower loss make a better robot?

Three figures, present only when the study evaluated the group's policies:

- ``fig-success-compute-SLUG``: success rate against training compute, one point
  per evaluated run (coloured by model size) with its Wilson 95% interval, the best
  run of each budget joined, and the fitted failure-rate law;
- ``fig-success-loss-SLUG``: success rate against validation loss, with the
  Pearson and Spearman correlations;
- ``fig-intrinsic-SLUG``: intrinsic performance (the least compute on the success
  frontier that reaches a run's success) against model size, with its power law.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from roboscale.report.analysis import GroupData
from roboscale.report.figures.panel import Panel, unavailable
from roboscale.report.formatting import as_float, is_number, number
from roboscale.report.plotting import LABEL_C, LABEL_LOSS, LABEL_N, log_axes, log_color_norm, log_colorbar, render_svg

LABEL_SUCCESS = "closed-loop success rate (held-out configurations)"
COLORMAP = "viridis"
SUCCESS_KINDS = ("success-compute", "success-loss", "intrinsic")


def success_panels(data: GroupData) -> list[Panel]:
    """The success figures of a group, or none when its policies were not evaluated."""
    success = data.group.get("success")
    if not success or not success.get("runs"):
        return []
    return [_compute_panel(data, success), _loss_panel(data, success), _intrinsic_panel(data, success)]


def _runs(success: dict) -> tuple[np.ndarray, ...]:
    runs = success["runs"]
    return tuple(np.array([as_float(run.get(key)) for run in runs]) for key in ("N", "C", "loss", "success"))


def _errors(success: dict) -> np.ndarray:
    """Wilson interval as (2, runs) distances below and above each success rate."""
    runs = success["runs"]
    rate = np.array([as_float(run["success"]) for run in runs])
    low = np.array([as_float(run["ci_low"]) for run in runs])
    high = np.array([as_float(run["ci_high"]) for run in runs])
    return np.vstack([np.clip(rate - low, 0, None), np.clip(high - rate, 0, None)])


def _scatter(figure, axes, success: dict, x: np.ndarray) -> None:
    """Runs as points coloured by model size, with their Wilson intervals."""
    N, _, _, rate = _runs(success)
    norm = log_color_norm(N)
    cmap = matplotlib.colormaps[COLORMAP]
    errors = _errors(success)
    for i in range(len(rate)):
        color = cmap(norm(N[i]))
        axes.errorbar(x[i], rate[i], yerr=errors[:, i : i + 1], fmt="o", color=color, capsize=2.5, markersize=5)
    log_colorbar(figure, axes, norm, COLORMAP, LABEL_N)
    axes.set_ylim(-0.03, 1.03)


def _compute_panel(data: GroupData, success: dict) -> Panel:
    figure_id = f"fig-success-compute-{data.slug}"
    title = f"Success vs compute · {data.label}"
    law = success.get("failure_law") or {}

    def draw(figure: Figure) -> None:
        axes = log_axes(figure, title, LABEL_C, LABEL_SUCCESS, logy=False)
        _, C, _, _ = _runs(success)
        _scatter(figure, axes, success, C)
        best = success.get("best_per_budget") or []
        if best:
            axes.plot([b["C"] for b in best], [b["success"] for b in best], "-", color="grey", label="best per budget")
        if "A" in law and "alpha" in law:
            grid = np.geomspace(C.min(), C.max() * 10, 60)
            curve = 1.0 - as_float(law["A"]) * grid ** -as_float(law["alpha"])
            label = f"1 - success = A C^-α, α = {number(law['alpha'])}"
            axes.plot(grid, np.clip(curve, 0, 1), "--", color="black", label=label)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best")

    caption = (
        f"Closed-loop success rate of each evaluated run ({success.get('episodes')} episodes per run, on "
        "initial configurations the dataset does not contain), with its Wilson 95% interval, against training "
        "compute; colour: model size. Grey: the most successful run of each budget."
    )
    caption += (
        f" Dashed: its failure rate fitted as a power law in compute, α = {number(law['alpha'])}."
        if "alpha" in law
        else f" Failure-rate law: {law.get('error', 'not fitted')}."
    )
    return Panel(figure_id, title, caption, svg=render_svg(draw, figure_id))


def _loss_panel(data: GroupData, success: dict) -> Panel:
    figure_id = f"fig-success-loss-{data.slug}"
    title = f"Success vs validation loss · {data.label}"
    correlation = success.get("correlation") or {}

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        axes.set_title(title)
        axes.set_xlabel(LABEL_LOSS)
        axes.set_ylabel(LABEL_SUCCESS)
        _, _, loss, _ = _runs(success)
        _scatter(figure, axes, success, loss)
        if "pearson" in correlation:
            text = f"Pearson r = {number(correlation['pearson'])}\nSpearman ρ = {number(correlation['spearman'])}"
            axes.text(0.97, 0.97, text, transform=axes.transAxes, ha="right", va="top")

    if "pearson" in correlation:
        ci = correlation.get("pearson_ci")
        interval = f" [{number(ci[0])}, {number(ci[1])}]" if ci and all(is_number(v) for v in ci) else ""
        verdict = (
            "lower loss goes with more success"
            if correlation["pearson"] < 0 and (not ci or ci[1] < 0)
            else "no clear link between loss and success here"
        )
        caption = (
            f"Success rate against final validation loss, one point per evaluated run. Pearson r = "
            f"{number(correlation['pearson'])}{interval} (95% bootstrap over runs), Spearman ρ = "
            f"{number(correlation['spearman'])}, {correlation['n']} runs: {verdict}."
        )
    else:
        caption = f"Success rate against final validation loss. Correlation: {correlation.get('error', 'none')}."
    return Panel(figure_id, title, caption, svg=render_svg(draw, figure_id))


def _intrinsic_panel(data: GroupData, success: dict) -> Panel:
    figure_id = f"fig-intrinsic-{data.slug}"
    title = f"Intrinsic performance · {data.label}"
    intrinsic = success.get("intrinsic") or {}
    if "slope" not in intrinsic:
        return unavailable(figure_id, title, f"Intrinsic performance: {intrinsic.get('error', 'not computed')}")

    def draw(figure: Figure) -> None:
        axes = log_axes(figure, title, LABEL_N, "intrinsic performance (FLOPs to reach the run's success)")
        points = [p for p in intrinsic["runs"] if as_float(p["success"]) > 0]
        N = np.array([as_float(p["N"]) for p in points])
        performance = np.array([as_float(p["intrinsic_flops"]) for p in points])
        axes.plot(N, performance, "o", color="#1f77b4", label="evaluated runs")
        grid = np.geomspace(N.min(), N.max(), 50)
        label = f"fit: ∝ N^{number(intrinsic['slope'])}"
        axes.plot(
            grid, as_float(intrinsic["k"]) * grid ** as_float(intrinsic["slope"]), "-", color="black", label=label
        )
        axes.legend(loc="best")

    ci = intrinsic.get("slope_ci")
    interval = f" [{number(ci[0])}, {number(ci[1])}]" if ci else ""
    caption = (
        "Intrinsic performance (Hilton et al. 2023): for each evaluated run, the least training compute at which "
        "any run of the family reached the same success (log-linear between the points of the compute frontier "
        f"of success), against model size. Power-law slope {number(intrinsic['slope'])}{interval} "
        "(95% bootstrap over runs); runs that never succeeded are left out."
    )
    return Panel(figure_id, title, caption, svg=render_svg(draw, figure_id))
