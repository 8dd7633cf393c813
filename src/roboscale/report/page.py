"""The report page: one self-contained HTML document (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

import json

from roboscale.report.analysis import GroupData, group_data
from roboscale.report.data_section import SECTION_ID as DATA_SECTION_ID
from roboscale.report.data_section import data_section
from roboscale.report.figures import Panel, group_panels
from roboscale.report.figures.frames import frames_part
from roboscale.report.formatting import MISSING
from roboscale.report.markup import Html, definition_list, element
from roboscale.report.plotting import FIGURE_PIXELS
from roboscale.report.tables import (
    audit_tables,
    exponents_table,
    failed_runs_table,
    forecast_check_tables,
    forecasts_table,
    known_floor_table,
    noise_budget_table,
    open_loop_table,
    persistence_box,
    recommendation_text,
    runs_table,
    summary_table,
    verdict_text,
)

FIGURE_WIDTH, _ = FIGURE_PIXELS

STYLE = f"""
:root {{ color-scheme: light; --muted: #5a6270; --line: #d6dae0; --warn: #fff4d6; --warn-line: #e0a800;
        --error: #b00020; }}
body {{ margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
        color: #1d2330; background: #fff; }}
main {{ max-width: {2 * FIGURE_WIDTH + 120}px; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }}
h1 {{ font-size: 1.7rem; margin: 0 0 .75rem; }}
h2 {{ font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 2px solid var(--line); }}
h3 {{ font-size: 1.05rem; margin: 1.4rem 0 .4rem; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: .5rem 0; }}
dt {{ font-weight: 600; }} dd {{ margin: 0; overflow-wrap: anywhere; }}
pre, code {{ font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }}
pre {{ background: #f4f5f7; padding: .6rem .8rem; border-radius: 4px; overflow-x: auto; white-space: pre-wrap;
       overflow-wrap: anywhere; margin: .3rem 0; }}
.warnings {{ background: var(--warn); border: 1px solid var(--warn-line); border-left: 6px solid var(--warn-line);
             border-radius: 4px; padding: .6rem 1rem; margin: 1rem 0; }}
.warnings h2 {{ border: 0; margin: 0 0 .3rem; font-size: 1.1rem; }}
.warnings ul {{ margin: 0; padding-left: 1.2rem; }}
nav ul {{ display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; padding: 0; list-style: none; }}
.table-wrap {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 13px; margin: .4rem 0 1rem; }}
caption {{ caption-side: top; text-align: left; color: var(--muted); padding: .2rem 0; }}
th, td {{ border: 1px solid var(--line); padding: .25rem .5rem; text-align: left; vertical-align: top; }}
th {{ background: #f0f2f5; font-weight: 600; }}
td {{ font-variant-numeric: tabular-nums; }}
tbody tr:nth-child(even) {{ background: #fafbfc; }}
.figures {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, {FIGURE_WIDTH - 100}px), 1fr));
            gap: 1rem; }}
figure {{ margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 4px;
          max-width: {FIGURE_WIDTH + 18}px; width: 100%; box-sizing: border-box; }}
figure svg {{ display: block; width: 100%; height: auto; }}
figure svg * {{ stroke-linejoin: round; stroke-linecap: butt; }}
figcaption {{ font-size: 13px; color: var(--muted); margin-top: .4rem; }}
figure.unavailable {{ min-height: 6rem; background: #fafbfc; }}
.figure-title {{ font-weight: 600; margin: 0 0 .3rem; }}
.error {{ color: var(--error); }}
pre.error-text {{ color: var(--error); background: #fdf2f4; margin: 0; max-width: 60ch; }}
.muted {{ color: var(--muted); }}
.recommendation {{ background: #eef6ee; border-left: 5px solid #2ca02c; padding: .5rem .9rem; border-radius: 4px; }}
.verdict {{ font-weight: 600; padding: 0 .3rem; border-radius: 3px; }}
.verdict-box {{ border-left: 6px solid var(--line); padding: .4rem .9rem; margin: .5rem 0; border-radius: 4px; }}
.verdict-box ul {{ margin: .2rem 0 0; padding-left: 1.2rem; }}
.verdict-holds {{ background: #eef6ee; border-color: #2ca02c; }}
.verdict-fails {{ background: #fdf2f4; border-color: var(--error); }}
.verdict-unchecked {{ background: #f4f5f7; border-color: var(--muted); }}
footer {{ margin-top: 3rem; color: var(--muted); font-size: 13px; }}
"""


def render_html(analysis: dict) -> str:
    """The whole report page for an analysis dict (see :mod:`roboscale.report`)."""
    groups = group_data(analysis)
    title = analysis.get("title") or "Scaling study"
    head = element(
        "head",
        Html('<meta charset="utf-8">'),
        Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
        element("title", title),
        element("style", Html(STYLE)),
    )
    body = element(
        "main",
        _header(title, analysis.get("study") or {}),
        _warnings(analysis.get("warnings") or []),
        _contents(groups, has_data=bool(analysis.get("data_axes"))),
        _section("summary", "Summary", summary_table(groups), wrap=True),
        data_section(analysis.get("data_axes"), _figure),
        _known_floors_section(groups),
        *(_group_section(data) for data in groups),
        _section(
            "exponents",
            "Exponent a compared with published values",
            exponents_table(groups, analysis.get("published") or []),
            wrap=True,
        ),
        _section("failed-runs", "Failed runs", failed_runs_table(analysis.get("runs") or []), wrap=True),
        _section("runs", "All runs", runs_table(analysis.get("runs") or []), wrap=True),
        element("footer", _made_by((analysis.get("study") or {}).get("roboscale_version"))),
    )
    return "<!DOCTYPE html>\n" + element("html", head, element("body", body), lang="en") + "\n"


def _known_floors_section(groups: list[GroupData]) -> Html | None:
    """Fitted E beside the data's known floor (only when the study recorded floors)."""
    floors = known_floor_table(groups)
    if floors is None:
        return None
    return _section("known-floors", "Fitted E against the known floor of the data", floors, wrap=True)


def _made_by(version) -> str:
    return f"Made by roboscale {version}." if version else "Made by roboscale."


def _header(title: str, study: dict) -> Html:
    facts = [
        ("study", study.get("name") or MISSING),
        ("path", element("code", study.get("path") or MISSING)),
        ("dataset", element("code", study.get("dataset") or MISSING)),
        ("roboscale", study.get("roboscale_version") or MISSING),
    ]
    settings = json.dumps(study.get("settings") or {}, indent=2, sort_keys=True, default=str)
    return element(
        "header",
        element("h1", title),
        definition_list(facts),
        element("p", "Reproduce this report with:", class_="muted"),
        element("pre", element("code", study.get("command") or MISSING)),
        element("details", element("summary", "Study settings"), element("pre", element("code", settings))),
    )


def _warnings(warnings: list[str]) -> Html | None:
    if not warnings:
        return None
    items = [element("li", warning) for warning in warnings]
    return element(
        "section",
        element("h2", f"Warnings ({len(warnings)})"),
        element("ul", *items),
        class_="warnings",
        id="warnings",
        role="alert",
    )


def _contents(groups: list[GroupData], *, has_data: bool = False) -> Html:
    links = [("summary", "Summary")] + ([(DATA_SECTION_ID, "Data")] if has_data else [])
    links += [(f"group-{data.slug}", data.label) for data in groups]
    links += [("exponents", "Exponents vs published"), ("failed-runs", "Failed runs"), ("runs", "All runs")]
    items = [element("li", element("a", label, href=f"#{anchor}")) for anchor, label in links]
    return element("nav", element("ul", *items), aria_label="contents")


def _section(anchor: str, heading: str, *content, wrap: bool = False) -> Html:
    body = [element("div", part, class_="table-wrap") for part in content] if wrap else content
    return element("section", element("h2", heading), *body, id=anchor)


def _group_section(data: GroupData) -> Html:
    recommendation = data.group.get("recommendation")
    return element(
        "section",
        element("h2", f"{data.label}"),
        verdict_text(data.group),
        persistence_box(data.group),
        element("p", recommendation_text(recommendation), class_="recommendation" if recommendation else "muted"),
        element("div", *(_figure(panel) for panel in group_panels(data)), class_="figures"),
        element("h3", "Forecast check"),
        element("div", forecast_check_tables(data), class_="table-wrap"),
        element("h3", "Compute-optimal forecasts"),
        element("div", forecasts_table(data), class_="table-wrap"),
        element("h3", "Extrapolation audit"),
        element("div", audit_tables(data), class_="table-wrap"),
        element("h3", "Noise budget: validation estimator vs seeds"),
        element("div", noise_budget_table(data), class_="table-wrap"),
        *_open_loop_part(data.group),
        *frames_part(data),
        id=f"group-{data.slug}",
    )


def _open_loop_part(group: dict) -> list[Html]:
    """A wm group's open-loop errors against predicting no change (nothing for other groups)."""
    if group.get("task") != "wm":
        return []
    heading = element("h3", "World model against predicting no change (open loop)")
    return [heading, element("div", open_loop_table(group), class_="table-wrap")]


def _figure(panel: Panel) -> Html:
    """``<figure>`` with the SVG, or with the reason there is none, and its caption."""
    if panel.svg is None:
        content = [element("p", panel.title, class_="figure-title"), element("p", panel.problem, class_="error")]
        return element(
            "figure",
            *content,
            element("figcaption", panel.caption or "No figure: see the message above."),
            id=panel.figure_id,
            class_="unavailable",
        )
    return element("figure", Html(panel.svg), element("figcaption", panel.caption), id=panel.figure_id)
