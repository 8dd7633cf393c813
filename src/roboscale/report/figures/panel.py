"""One figure of the report: its SVG, or the reason it could not be drawn, and a caption."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Panel:
    """A figure as the page shows it: ``<figure id=figure_id>`` with ``svg`` (or
    ``problem`` in its place) and ``caption`` below."""

    figure_id: str
    title: str
    caption: str
    svg: str | None = None
    problem: str | None = None
    """Why there is no figure (a failed fit's error message), or None."""


def unavailable(figure_id: str, title: str, problem: str, caption: str = "") -> Panel:
    """A panel that shows ``problem`` instead of a figure."""
    return Panel(figure_id=figure_id, title=title, caption=caption, problem=problem)
