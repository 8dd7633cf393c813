"""Numbers as the report prints them: short, with "-" for anything missing."""

from __future__ import annotations

import math

MISSING = "-"
"""What a cell shows when a number is missing (None or NaN in the analysis)."""


def as_float(value) -> float:
    """A number from the analysis as a float; None (JSON's stand-in for NaN) -> NaN."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_number(value) -> bool:
    """True for a finite number (not None, not NaN, not a bool)."""
    return math.isfinite(as_float(value))


def number(value, digits: int = 3) -> str:
    """``digits`` significant digits; powers of ten written compactly (1.2e15, not 1.2e+15)."""
    x = as_float(value)
    if not math.isfinite(x):
        return MISSING
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def integer(value) -> str:
    """A count with thousands separators (12,345)."""
    x = as_float(value)
    return f"{round(x):,}" if math.isfinite(x) else MISSING


def percent(fraction, digits: int = 2) -> str:
    """A fraction as a percentage: 0.0123 -> "1.23%"."""
    x = as_float(fraction)
    return f"{100 * x:.{digits}f}%" if math.isfinite(x) else MISSING


def interval(bounds, digits: int = 3) -> str:
    """``[low, high]``, or "-" when either end is missing."""
    if not bounds or len(bounds) != 2 or not all(is_number(b) for b in bounds):
        return MISSING
    return f"[{number(bounds[0], digits)}, {number(bounds[1], digits)}]"


def with_interval(value, bounds, digits: int = 3) -> str:
    """``value [low, high]``; the interval is left off when it is missing."""
    if not is_number(value):
        return MISSING
    bracket = interval(bounds, digits)
    return number(value, digits) if bracket == MISSING else f"{number(value, digits)} {bracket}"


def flops(value) -> str:
    """A compute budget: "1e15 FLOPs"."""
    text = number(value, 3)
    return MISSING if text == MISSING else f"{text} FLOPs"


def times(factor) -> str:
    """An extrapolation factor: 10 -> "10x", 1000 -> "1,000x"."""
    x = as_float(factor)
    if not math.isfinite(x):
        return MISSING
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2g}x"


def shorten(text, limit: int = 110) -> str:
    """``text`` on one line, cut at a word before ``limit`` characters (with "…")."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0].rstrip(" ,;:(") + " …"


def exponent_range(low, high) -> str:
    """A published exponent: one value, or "low-high" when it is a range."""
    if not is_number(low) and not is_number(high):
        return MISSING
    if not is_number(high) or as_float(low) == as_float(high):
        return number(low)
    if not is_number(low):
        return number(high)
    return f"{number(low)}–{number(high)}"
