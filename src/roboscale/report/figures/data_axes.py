"""The data section's figures: loss (or success) against each data axis, with the fitted laws.

From the analysis's ``data_axes`` entry (see :mod:`roboscale.study.data_analysis`):

- ``fig-data-AXIS-METRIC``: one per fitted (axis, metric), e.g. ``fig-data-amount-loss``,
  ``fig-data-diversity-heldoutloss``: runs as points, each law (one per width and slice of
  the crossed axes) as a line over its levels, its bootstrap interval as a band; log-log
  (success: log x, linear y);
- ``fig-data-repetition``: loss against epochs at fixed unique episodes, beside fresh data;
- ``fig-data-quality``: loss against the noise level, one line per width and amount;
- ``fig-data-mixture``: each validation source's loss against the first source's share, with its law.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from roboscale.report.analysis import slug
from roboscale.report.figures.panel import Panel
from roboscale.report.formatting import as_float, is_number, number
from roboscale.report.plotting import log_axes, render_svg, sequential_colors

LEVEL_LABELS = {
    "episodes": "training episodes",
    "train_tasks": "training tasks",
    "repetitions": "epochs over the unique episodes",
    "noise": "noise level of the demonstrations",
}
METRIC_LABELS = {
    "loss": "validation loss (primary validation set)",
    "heldout_loss": "held-out-task loss",
    "success": "closed-loop success rate",
}
WIDTH_MARKERS = ("o", "s", "^", "D", "v")


def data_panels(data_axes: dict) -> list[Panel]:
    """Every figure of the data section, in page order."""
    panels = [_law_panel(data_axes, axis, metric) for axis, metric in law_kinds(data_axes)]
    if data_axes.get("repetition"):
        panels.append(_repetition_panel(data_axes["repetition"]))
    if data_axes.get("quality"):
        panels.append(_quality_panel(data_axes["quality"]))
    if any(entry.get("laws") for entry in data_axes.get("mixture") or []):
        panels.append(_mixture_panel(data_axes["mixture"]))
    return panels


def law_kinds(data_axes: dict) -> list[tuple[str, str]]:
    """The (axis, metric) pairs with laws, in the order the analysis lists them."""
    kinds: list[tuple[str, str]] = []
    for law in data_axes.get("laws") or []:
        if (law["axis"], law["y"]) not in kinds:
            kinds.append((law["axis"], law["y"]))
    return kinds


def figure_id(axis: str, metric: str | None = None) -> str:
    """``fig-data-AXIS[-METRIC]`` in lowercase letters and digits."""
    return f"fig-data-{slug(axis)}" + (f"-{slug(metric)}" if metric else "")


def series_label(law: dict) -> str:
    """ "width 32, noise 0.2": the width and the slice of the crossed axes."""
    parts = [f"width {law['width']}"] + [f"{column} {number(value)}" for column, value in law["slice"].items()]
    return ", ".join(parts)


def _law_panel(data_axes: dict, axis: str, metric: str) -> Panel:
    laws = [law for law in data_axes["laws"] if (law["axis"], law["y"]) == (axis, metric)]
    x_label = LEVEL_LABELS.get(laws[0]["x"], laws[0]["x"])
    y_label = METRIC_LABELS.get(metric, metric)
    title = f"{y_label} vs {x_label}"
    identifier = figure_id(axis, metric)
    colors = sequential_colors(len(laws))

    def draw(figure: Figure) -> None:
        axes = log_axes(figure, title, x_label, y_label, logy=metric != "success", plain_y=True)
        for law, color in zip(laws, colors):
            _draw_law(axes, law, color)
        axes.legend(loc="best", fontsize=7)

    return Panel(identifier, title, _law_caption(laws, x_label, y_label), svg=render_svg(draw, identifier))


def _draw_law(axes, law: dict, color) -> None:
    """Points, the law's curve and its interval band."""
    fit = law.get("fit") or {}
    label = series_label(law)
    axes.plot(law["points"]["x"], law["points"]["y"], "o", color=color, markersize=3.5, alpha=0.8)
    curve = law.get("curve")
    if not curve:
        axes.plot([], [], "o", color=color, label=f"{label} (no law: {fit.get('error', 'not fitted')})")
        return
    axes.plot(curve["x"], curve["y"], "-", color=color, label=f"{label}: α = {number(fit.get('alpha'))}")
    if curve.get("low") and curve.get("high"):
        low = [as_float(v) for v in curve["low"]]
        high = [as_float(v) for v in curve["high"]]
        axes.fill_between(curve["x"], low, high, color=color, alpha=0.15, linewidth=0)


def _law_caption(laws: list[dict], x_label: str, y_label: str) -> str:
    law = "1 - success = A x^-α" if laws[0]["y"] == "success" else "y = A x^-α (least squares in log space)"
    alphas = "; ".join(f"{series_label(entry)}: {_alpha_text(entry)}" for entry in laws)
    return (
        f"{y_label.capitalize()} of each run against {x_label} (points), the power law {law} fitted per width "
        f"and level of the crossed axes (lines, drawn to 2x the largest level) and its 95% bootstrap interval "
        f"(band). α: {alphas}."
    )


def _alpha_text(law: dict) -> str:
    fit = law.get("fit") or {}
    if not is_number(fit.get("alpha")):
        return f"no law ({fit.get('error', 'not fitted')})"
    ci = (fit.get("ci") or {}).get("alpha")
    interval = f" [{number(ci[0])}, {number(ci[1])}]" if ci and all(is_number(v) for v in ci) else ""
    return f"{number(fit['alpha'])}{interval}"


def _repetition_panel(entries: list[dict]) -> Panel:
    identifier = figure_id("repetition")
    title = "Repeated vs fresh data"
    colors = sequential_colors(len(entries))

    def draw(figure: Figure) -> None:
        axes = log_axes(figure, title, LEVEL_LABELS["repetitions"], METRIC_LABELS["loss"], plain_y=True)
        for entry, color in zip(entries, colors):
            rows = entry["rows"]
            epochs = [row["repetitions"] for row in rows]
            label = f"width {entry['width']}, {entry['unique_episodes']:,.0f} unique episodes"
            axes.plot(epochs, [row["loss"] for row in rows], "o-", color=color, label=f"{label}: repeated")
            fresh = [as_float(row.get("fresh_loss")) for row in rows]
            if any(is_number(value) for value in fresh):
                axes.plot(epochs, fresh, "--", color=color, label=f"{label}: fresh data of the same size (law)")
        axes.legend(loc="best", fontsize=7)

    caption = (
        "Validation loss after training on a fixed set of unique episodes for several epochs (solid), and what the "
        "amount law predicts for as many fresh episodes (dashed): where they part, repeating is worth less than "
        "new data (Muennighoff et al. 2023)."
    )
    return Panel(identifier, title, caption, svg=render_svg(draw, identifier))


def _quality_panel(entries: list[dict]) -> Panel:
    identifier = figure_id("quality")
    title = "Loss vs demonstration noise"
    series = [
        (entry["width"], episodes, [row for row in entry["rows"] if row["episodes"] == episodes])
        for entry in entries
        for episodes in sorted({row["episodes"] for row in entry["rows"]})
    ]
    colors = sequential_colors(len(series))

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        axes.set_yscale("log")
        axes.set_title(title)
        axes.set_xlabel(LEVEL_LABELS["noise"])
        axes.set_ylabel(METRIC_LABELS["loss"])
        for (width, episodes, rows), color in zip(series, colors):
            label = f"width {width}, {episodes:,.0f} episodes"
            axes.plot([r["noise"] for r in rows], [r["loss"] for r in rows], "o-", color=color, label=label)
        axes.legend(loc="best", fontsize=7)

    caption = (
        "Mean validation loss of the runs at each noise level of the demonstrations, one line per width and "
        "number of training episodes. The table below reads each noisy level as clean episodes on the clean "
        "amount law."
    )
    return Panel(identifier, title, caption, svg=render_svg(draw, identifier))


def _mixture_panel(entries: list[dict]) -> Panel:
    identifier = figure_id("mixture")
    first = entries[0]["sources"][0]
    title = f"Loss vs share of {first}"
    series = [(entry, law) for entry in entries for law in entry["laws"]]
    colors = sequential_colors(len(series), "plasma")

    def draw(figure: Figure) -> None:
        axes = figure.add_subplot()
        axes.set_title(title)
        axes.set_xlabel(f"share of {first} episodes r")
        axes.set_ylabel("validation loss of each source")
        for (entry, law), color in zip(series, colors):
            marker = WIDTH_MARKERS[entries.index(entry) % len(WIDTH_MARKERS)]
            label = f"width {entry['width']}, {law['source']} validation"
            axes.plot(law["points"]["r"], law["points"]["loss"], marker, color=color, markersize=4, label=label)
            if law.get("curve"):
                axes.plot(law["curve"]["r"], law["curve"]["loss"], "-", color=color)
        axes.legend(loc="best", fontsize=7)

    caption = (
        f"Each source's validation loss against the share r of {first} episodes in a fixed total (points), with "
        "its mixture law L(r) = c + k exp(t r) (Ye et al. 2024; lines)."
    )
    return Panel(identifier, title, caption, svg=render_svg(draw, identifier))
