"""The report's "Data" section: which data to collect next.

Drawn from the analysis's ``data_axes`` entry (see :mod:`roboscale.study.data_analysis`):
the recommendation as the headline, one figure per axis, the exponents side by side, the
marginal value of the next episodes, the optimal mixture, repetition and quality tables.
"""

from __future__ import annotations

from collections.abc import Callable

from roboscale.report.figures.data_axes import data_panels
from roboscale.report.figures.panel import Panel
from roboscale.report.formatting import MISSING, as_float, integer, interval, is_number, number, with_interval
from roboscale.report.markup import Html, element, table

SECTION_ID = "data"
RECOMMENDATION_ID = "data-recommendation"
METRIC_NAMES = {"loss": "validation loss", "heldout_loss": "held-out-task loss", "success": "success rate"}
OPTION_NAMES = {"amount": "more of the same", "tasks": "new tasks", "quality": "cleaner demonstrations"}


def data_section(data_axes: dict | None, figure: Callable[[Panel], Html]) -> Html | None:
    """The section, or None when the study has no data axes. ``figure``: the page's
    Panel -> ``<figure>`` renderer (so every figure of the page looks alike)."""
    if not data_axes:
        return None
    panels: list[Panel] = data_panels(data_axes)
    n = integer(data_axes.get("next_episodes"))
    parts = [
        element("h2", "Data: which data to collect next"),
        _headline(data_axes.get("recommendation")),
        element("div", *(figure(panel) for panel in panels), class_="figures"),
        element("h3", "Exponents side by side"),
        _wrap(exponents_table(data_axes.get("exponents") or [])),
        element("h3", f"Marginal value of the next {n} episodes"),
        _wrap(marginal_table(data_axes.get("marginal") or [])),
    ]
    if data_axes.get("mixture"):
        parts += [element("h3", "Optimal mixture"), _wrap(mixture_table(data_axes["mixture"]))]
    if data_axes.get("repetition"):
        parts += [element("h3", "Repeated vs fresh data"), _wrap(repetition_table(data_axes["repetition"]))]
    if data_axes.get("quality"):
        parts += [element("h3", "What a noisy episode is worth"), _wrap(quality_table(data_axes["quality"]))]
    return element("section", *parts, id=SECTION_ID)


def _wrap(content: Html) -> Html:
    return element("div", content, class_="table-wrap")


def _headline(recommendation: dict | None) -> Html:
    if not recommendation:
        return element("p", "No recommendation: no data-axis law could be fitted.", class_="muted")
    notes = [recommendation.get("caveat"), recommendation.get("metric_note")]
    width = recommendation.get("width")
    notes.append(f"at width {width}" if width is not None else None)
    detail = "; ".join(note for note in notes if note)
    return element(
        "div",
        element("p", element("strong", recommendation.get("sentence") or MISSING)),
        element("p", f"({detail}.)", class_="muted") if detail else None,
        class_="recommendation",
        id=RECOMMENDATION_ID,
    )


def _slice_text(slice_: dict) -> str:
    return ", ".join(f"{column} {number(value)}" for column, value in (slice_ or {}).items()) or MISSING


def exponents_table(rows: list[dict]) -> Html:
    """Every fitted exponent: axis, metric, width, slice, alpha without and with a floor."""
    headers = ["axis", "metric", "against", "width", "crossed levels", "α [95% CI] (y = A x^-α)"]
    headers += ["α [95% CI] with floor E", "E", "runs"]
    body = [
        [
            row["axis"] + (" (operating point)" if row.get("primary") else ""),
            METRIC_NAMES.get(row["y"], row["y"]),
            row["x"],
            row["width"],
            _slice_text(row.get("slice")),
            with_interval(row.get("alpha"), row.get("alpha_ci")),
            with_interval(row.get("saturating_alpha"), row.get("saturating_alpha_ci")),
            number(row.get("saturating_E")),
            row.get("n_points", MISSING),
        ]
        for row in rows
    ]
    return table(headers, body, class_="data-exponents")


def marginal_table(entries: list[dict]) -> Html:
    """Per width, each way of spending the next episodes: its metric, predicted drop and relative drop."""
    headers = ["width", "operating point", "spend them as", "metric", "what", "now", "drop [95% CI]"]
    headers.append("relative drop [95% CI]")
    body = []
    for entry in entries:
        point = ", ".join(f"{key} {number(value)}" for key, value in (entry.get("operating_point") or {}).items())
        for option in entry.get("options") or []:
            head = [entry["width"], point, OPTION_NAMES.get(option["option"], option["option"])]
            head.append(METRIC_NAMES.get(option["metric"], option["metric"]))
            if "error" in option:
                body.append(head + [element("span", option["error"], class_="error"), MISSING, MISSING, MISSING])
                continue
            body.append(
                head
                + [
                    option.get("description", ""),
                    number(option.get("current")),
                    with_interval(option.get("drop"), option.get("drop_ci")),
                    _percent_with_interval(option.get("relative_drop"), option.get("relative_drop_ci")),
                ]
            )
    return table(headers, body, class_="data-marginal")


def _percent_with_interval(value, bounds) -> str:
    if not is_number(value):
        return MISSING
    text = f"{100 * as_float(value):.3g}%"
    if bounds and all(is_number(b) for b in bounds):
        text += f" [{100 * as_float(bounds[0]):.3g}%, {100 * as_float(bounds[1]):.3g}%]"
    return text


def mixture_table(entries: list[dict]) -> Html:
    """Per width: the optimal mixture for the reference's loss, then each source's law."""
    headers = ["width", "validation source", "law c, k, t", "optimal mixture (reference's loss)", "predicted loss"]
    body = []
    for entry in entries:
        optimal = entry.get("optimal") or {}
        best = _mixture_text(optimal)
        loss = with_interval(optimal.get("loss"), optimal.get("loss_ci"))
        for law in entry.get("laws") or [{"source": MISSING, "fit": {"error": "no law"}}]:
            params = _mixture_params(law.get("fit") or {})
            body.append([entry.get("width", MISSING), law["source"], params, best, loss])
    return table(headers, body, class_="data-mixture")


def _mixture_params(fit: dict) -> Html | str:
    """ "c, k, t" of a mixture law (t may hold one value per source), or its error."""
    if "error" in fit:
        return element("span", fit["error"], class_="error")
    values = [fit.get(key) for key in ("c", "k", "t")]
    return ", ".join(
        "(" + ", ".join(number(v) for v in value) + ")" if isinstance(value, list) else number(value)
        for value in values
    )


def _mixture_text(optimal: dict) -> Html | str:
    if "error" in optimal:
        return element("span", optimal["error"], class_="error")
    proportions = optimal.get("proportions") or {}
    ci = optimal.get("ci") or {}
    return (
        ", ".join(
            f"{name} {number(share)}" + (f" {interval(ci[name])}" if isinstance(ci, dict) and name in ci else "")
            for name, share in proportions.items()
        )
        or MISSING
    )


def repetition_table(entries: list[dict]) -> Html:
    """Loss per epoch count beside fresh data, and what each repeated pass is worth."""
    headers = ["width", "unique episodes", "epochs", "loss", "fresh data of the same size (law)"]
    headers += ["worth in fresh episodes", "one repeat is worth (share of a fresh episode)", "runs"]
    body = [
        [
            entry["width"],
            integer(entry["unique_episodes"]),
            number(row["repetitions"]),
            number(row["loss"]),
            number(row.get("fresh_loss")),
            integer(row.get("effective_episodes")),
            number(row.get("repeat_worth")),
            row.get("n_runs", MISSING),
        ]
        for entry in entries
        for row in entry["rows"]
    ]
    return table(headers, body, class_="data-repetition")


def quality_table(entries: list[dict]) -> Html:
    """Per noise level and amount: the loss and its worth in clean episodes (clean amount law inverted)."""
    headers = ["width", "noise", "episodes", "loss", "worth in clean episodes [95% CI]", "one episode is worth"]
    body = [
        [
            entry["width"],
            row.get("quality") or number(row["noise"]),
            integer(row["episodes"]),
            number(row["loss"]),
            with_interval(row.get("clean_episodes"), row.get("clean_episodes_ci")),
            with_interval(row.get("worth"), row.get("worth_ci")),
        ]
        for entry in entries
        for row in entry["rows"]
    ]
    return table(headers, body, class_="data-quality")
