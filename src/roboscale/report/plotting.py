"""Matplotlib figures as inline SVG text: style, sizes, axis labels and colours.

Figures are made with :class:`matplotlib.figure.Figure` directly, never pyplot, so
no GUI backend is touched and the caller's backend is left as it is. Text stays
text in the SVG (``svg.fonttype = "none"``): searchable, selectable and small.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, LogLocator, NullLocator

PIXELS_PER_INCH = 96
"""CSS pixels per inch: an SVG of W inches shows W * 96 pixels wide at 100% zoom."""

FIGURE_PIXELS = (640, 420)
"""Width and height of every figure (CSS pixels)."""

LABEL_N = "model size N (parameters)"
LABEL_D = "training data D (tokens)"
LABEL_C = "training compute C (FLOPs)"
LABEL_LOSS = "validation loss (nats per predicted dimension)"

METHOD_COLORS = {"isoflop": "#1f77b4", "frontier": "#d62728", "parametric": "#2ca02c"}
METHOD_NAMES = {"isoflop": "IsoFLOP", "frontier": "frontier", "parametric": "parametric"}

STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "Liberation Sans", "sans-serif"],
    "font.size": 9.0,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.0,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.5,
    "axes.formatter.use_mathtext": False,
}

SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def render_svg(draw: Callable[[Figure], None], figure_id: str) -> str:
    """Make a figure with ``draw(figure)`` in the report's style and return its SVG text.

    ``figure_id`` seeds the SVG's internal ids (clip paths, markers): unique per
    figure so that several SVGs inline in one page never share an id, and the
    same figure always gives the same text."""
    style = {**STYLE, "svg.hashsalt": figure_id}
    with matplotlib.rc_context(style):
        figure = Figure(figsize=tuple(p / PIXELS_PER_INCH for p in FIGURE_PIXELS), layout="constrained")
        draw(figure)
        for axes in figure.axes:
            _set_minor_log_ticks(axes)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return inline_svg(buffer.getvalue(), figure_id)


SVG_ID_OR_REFERENCE = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def inline_svg(document: str, id_prefix: str) -> str:
    """An SVG file's text made fit to sit inside HTML: no XML prolog, no doctype,
    no metadata block (it names external vocabularies by URL), no style sheet, and every id (and
    every reference to one) prefixed with ``id_prefix``, since matplotlib numbers
    its groups "figure_1", "axes_1", ... in every figure alike."""
    svg = document[document.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    # Its <style> would apply to the whole page; the page's CSS sets the same for figures only.
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.DOTALL)
    svg = SVG_ID_OR_REFERENCE.sub(lambda match: f"{match.group(1)}{id_prefix}-{match.group(2)}", svg)
    return svg.strip()


def log_color_norm(values) -> Normalize:
    """A log colour scale spanning ``values`` (positive); a single value gets a decade around it."""
    finite = np.asarray([v for v in values if np.isfinite(v) and v > 0], dtype=np.float64)
    if finite.size == 0:
        return LogNorm(1.0, 10.0)
    low, high = float(finite.min()), float(finite.max())
    if low == high:
        low, high = low / 3.0, high * 3.0
    return LogNorm(low, high)


def sequential_colors(n: int, colormap: str = "viridis") -> list:
    """``n`` colours from dark to light, stopping short of the palest end (hard to read on white)."""
    cmap = matplotlib.colormaps[colormap]
    return [cmap(x) for x in np.linspace(0.0, 0.85, max(n, 1))][:n]


def log_axes(figure: Figure, title: str, xlabel: str, ylabel: str, *, logy: bool = True, plain_y: bool = False):
    """One axes with a log x axis (and log y unless ``logy`` is False), labels and title.

    Log ticks read 10⁶, 3×10⁶ (or 1.5, 2 with ``plain_y``, for a loss that spans
    less than a decade)."""
    axes = figure.add_subplot()
    axes.set_xscale("log")
    label_log_axis(axes.xaxis)
    if logy:
        axes.set_yscale("log")
        label_log_axis(axes.yaxis, plain=plain_y)
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return axes


class LogTickFormatter(Formatter):
    """Log-axis tick labels as plain text (no mathtext: fast, and text in the SVG).

    Decades always read 10ⁿ; ticks between decades are labelled only when the axis
    spans few decades (2 and 5 up to two decades, 2-9 within one), so labels never crowd.
    ``plain`` writes numbers as they are (1.5, 20) instead of powers of ten."""

    def __init__(self, plain: bool = False):
        self.plain = plain

    def __call__(self, x, pos=None) -> str:
        if not x > 0:
            return ""
        exponent = math.floor(math.log10(x) + 1e-9)
        mantissa = round(x / 10.0**exponent, 6)
        if mantissa != 1.0 and mantissa not in self._labelled_mantissas():
            return ""
        if self.plain:
            return f"{x:.4g}"
        power = "10" + str(exponent).translate(SUPERSCRIPT)
        return power if mantissa == 1.0 else f"{mantissa:g}×{power}"

    def _labelled_mantissas(self) -> tuple[float, ...]:
        low, high = sorted(abs(v) for v in self.axis.get_view_interval()) if self.axis else (1.0, 1e9)
        decades = math.log10(high / low) if low > 0 else math.inf
        if decades <= 1.0:
            return (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
        if decades <= 2.2:
            return (2.0, 5.0)
        return ()


def label_log_axis(axis, *, plain: bool = False) -> None:
    """Plain-text tick labels on a log axis (ticks at each decade; see :func:`_set_minor_log_ticks`)."""
    axis.set_major_locator(LogLocator(base=10.0, numticks=12))
    axis.set_major_formatter(LogTickFormatter(plain))
    axis.set_minor_formatter(LogTickFormatter(plain))


MINOR_TICKS_UP_TO_DECADES = 2.2
"""Log axes spanning at most this many decades get minor ticks at 2-9 times each
decade (and labels on some, see LogTickFormatter); wider ones only decade ticks,
which keeps them readable and the figures fast to draw (ticks are costly)."""


def _set_minor_log_ticks(axes) -> None:
    for axis, limits in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
        if axis.get_scale() != "log":
            continue
        low, high = sorted(limits)
        narrow = low > 0 and math.log10(high / low) <= MINOR_TICKS_UP_TO_DECADES
        axis.set_minor_locator(
            LogLocator(base=10.0, subs=tuple(range(2, 10)), numticks=12) if narrow else NullLocator()
        )


def log_colorbar(figure: Figure, axes, norm: Normalize, colormap: str, label: str) -> None:
    """A colour bar for ``norm`` (a log scale) beside ``axes``, with plain-text ticks."""
    mappable = ScalarMappable(norm=norm, cmap=matplotlib.colormaps[colormap])
    bar = figure.colorbar(mappable, ax=axes, label=label, pad=0.01)
    label_log_axis(bar.ax.yaxis)
