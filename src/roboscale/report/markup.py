"""A tiny, escaping HTML builder: every string is text unless it is already :class:`Html`."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass


class Html(str):
    """Trusted markup: already escaped, inserted as it is."""


def escape(value) -> Html:
    """``value`` as HTML: Html passes through, anything else is escaped text."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value)))


def join(parts: Iterable) -> Html:
    """Concatenate parts, escaping those that are not Html."""
    return Html("".join(escape(part) for part in parts if part is not None))


def element(name: str, *children, **attributes) -> Html:
    """``<name attributes>children</name>``. Attribute names: a trailing underscore
    is dropped (``class_``), other underscores become dashes (``aria_label``);
    attributes that are None or False are left out, True ones are written bare."""
    rendered = []
    for key, value in attributes.items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        rendered.append(f" {key}" if value is True else f' {key}="{html.escape(str(value), quote=True)}"')
    return Html(f"<{name}{''.join(rendered)}>{join(children)}</{name}>")


@dataclass(frozen=True)
class Cell:
    """A table cell spanning ``columns`` columns (plain values span one)."""

    content: object
    columns: int = 1


def table(headers: list, rows: list[list], *, caption=None, class_: str | None = None) -> Html:
    """A plain table: one header row, then one row per list of cells (values or :class:`Cell`)."""
    head = element("thead", element("tr", *(element("th", header, scope="col") for header in headers)))
    body = element("tbody", *(element("tr", *(_cell(cell) for cell in row)) for row in rows))
    title = element("caption", caption) if caption is not None else None
    return element("table", title, head, body, class_=class_)


def _cell(cell) -> Html:
    if isinstance(cell, Cell):
        return element("td", cell.content, colspan=cell.columns if cell.columns > 1 else None)
    return element("td", cell)


def definition_list(items: list[tuple[str, object]]) -> Html:
    """``<dl>`` of (term, description) pairs."""
    return element("dl", *(join([element("dt", term), element("dd", value)]) for term, value in items))
