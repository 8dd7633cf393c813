"""Compute-optimal allocation: N_opt(C) and D_opt(C) from every fitted law, with forecasts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from roboscale.fit.laws import optimal_allocation
from roboscale.report.analysis import FIT_METHODS, GroupData
from roboscale.report.figures.panel import Panel, unavailable
from roboscale.report.formatting import as_float, is_number, number, percent, shorten
from roboscale.report.plotting import (
    LABEL_C,
    LABEL_D,
    LABEL_N,
    METHOD_COLORS,
    METHOD_NAMES,
    log_axes,
    render_svg,
)

PROFILE_COLOR = "#444444"


@dataclass(frozen=True)
class Quantity:
    """What one allocation figure plots: N_opt (exponent a) or D_opt (exponent b)."""

    name: str
    """"N" or "D"."""
    exponent: str
    prefactor: str
    axis_label: str

    @property
    def optimum(self) -> str:
        return f"{self.name}_opt"


MODEL_SIZE = Quantity("N", "a", "k_N", LABEL_N)
DATA_SIZE = Quantity("D", "b", "k_D", LABEL_D)


def allocation_panels(data: GroupData) -> list[Panel]:
    """Figure (c): N_opt against C and D_opt against C, one panel each."""
    return [_allocation_panel(data, quantity) for quantity in (MODEL_SIZE, DATA_SIZE)]


def _allocation_panel(data: GroupData, quantity: Quantity) -> Panel:
    figure_id = f"fig-optimal-{quantity.name.lower()}-{data.slug}"
    title = f"Compute-optimal {quantity.optimum} · {data.label}"
    methods = [m for m in FIT_METHODS if data.fit(m) is not None]
    errors = [f"{METHOD_NAMES[m]}: {shorten(data.fit_error(m))}" for m in FIT_METHODS if data.fit(m) is None]
    if not methods:
        return unavailable(figure_id, title, "no fit gives an allocation (" + "; ".join(errors) + ")")
    svg = render_svg(lambda figure: _draw(figure, data, quantity, methods, title), figure_id)
    return Panel(figure_id, title, _caption(data, quantity, methods, errors), svg=svg)


def _draw(figure: Figure, data: GroupData, quantity: Quantity, methods: list[str], title: str) -> None:
    axes = log_axes(figure, title, LABEL_C, quantity.axis_label)
    low, largest, high = _compute_span(data)
    isoflop = data.fit("isoflop")
    if isoflop is not None:
        _draw_profile_optima(axes, isoflop, quantity)
    for method in methods:
        _draw_law(axes, data, method, quantity, low, high)
        _draw_forecasts(axes, data.compute_optimal(method), quantity, METHOD_COLORS[method])
    handles, _ = axes.get_legend_handles_labels()
    if math.isfinite(largest):
        handles.append(axes.axvline(largest, color="grey", linestyle=":", linewidth=1, label="largest budget run"))
    tables = [data.compute_optimal(m) for m in methods if data.compute_optimal(m)]
    if tables:
        level = percent(tables[0].get("ci_level"), 0)
        label = f"forecasts beyond the data ({level} CI)"
        handles.append(Line2D([], [], marker="s", linestyle="none", color="grey", label=label))
    axes.legend(handles=handles, loc="upper left")


def _compute_span(data: GroupData) -> tuple[float, float, float]:
    """(smallest, largest, last forecast) compute in FLOPs: the x range of the figure."""
    budgets = [as_float(run.get("budget") or run.get("C")) for run in data.fitted_runs]
    budgets = [b for b in budgets if math.isfinite(b) and b > 0]
    forecasts = [
        as_float(row.get("C"))
        for method in FIT_METHODS
        for row in ((data.compute_optimal(method) or {}).get("budgets") or [])
    ]
    forecasts = [c for c in forecasts if math.isfinite(c) and c > 0]
    low = min(budgets + forecasts, default=math.nan)
    largest = max(budgets, default=math.nan)
    high = max(forecasts + [1000.0 * largest] if math.isfinite(largest) else forecasts, default=math.nan)
    return low, largest, high


def _draw_profile_optima(axes, isoflop: dict, quantity: Quantity) -> None:
    """Each usable IsoFLOP profile's optimum with its interval; flat ones hollow."""
    for flat in (False, True):
        profiles = [
            p
            for p in isoflop.get("profiles") or []
            if p.get("usable") and bool(p.get("flat")) == flat and is_number(p.get(quantity.optimum))
        ]
        if not profiles:
            continue
        C = [as_float(p["C"]) for p in profiles]
        value = [as_float(p[quantity.optimum]) for p in profiles]
        errors = np.array([_profile_error(p, quantity) for p in profiles]).T
        label = "IsoFLOP profile optima (95% CI)" if not flat else "flat profile optima"
        axes.errorbar(
            C,
            value,
            yerr=errors,
            fmt="o",
            color=PROFILE_COLOR,
            markersize=5,
            capsize=3,
            elinewidth=1,
            markerfacecolor="white" if flat else PROFILE_COLOR,
            label=label,
            zorder=3,
        )


def _profile_error(profile: dict, quantity: Quantity) -> tuple[float, float]:
    """Distances below and above a profile optimum to its interval ends (0 without one).

    Profiles carry an interval for N_opt only; at fixed compute D = C / (k N), so
    the D_opt interval is the N_opt one mirrored: D_opt * N_opt / N_hi to D_opt * N_opt / N_lo."""
    N_opt = as_float(profile["N_opt"])
    low, high = (as_float(end) for end in (profile.get("n_opt_ci") or [None, None]))
    if not (math.isfinite(low) and math.isfinite(high) and low > 0):
        return 0.0, 0.0
    if quantity.name == "D":
        D_opt = as_float(profile["D_opt"])
        low, high = D_opt * N_opt / high, D_opt * N_opt / low
        return max(D_opt - low, 0.0), max(high - D_opt, 0.0)
    return max(N_opt - low, 0.0), max(high - N_opt, 0.0)


def power_law(data: GroupData, method: str, quantity: Quantity) -> tuple[float, float] | None:
    """(prefactor, exponent) of ``optimum = prefactor * C^exponent`` for ``method``, or None.

    IsoFLOP and frontier fits give both numbers. The parametric law gives the exponent
    (a = beta/(alpha+beta), b = alpha/(alpha+beta)); its prefactor is read off the
    compute-optimal table, else from the closed form with C = k N D."""
    fit = data.fit(method)
    exponent = as_float(fit.get(quantity.exponent)) if fit else math.nan
    if method == "parametric" and not math.isfinite(exponent) and fit:
        alpha, beta = as_float(fit.get("alpha")), as_float(fit.get("beta"))
        exponent = (beta if quantity.name == "N" else alpha) / (alpha + beta)
    if not math.isfinite(exponent):
        return None
    prefactor = as_float(fit.get(quantity.prefactor))
    if method == "parametric":
        prefactor = _parametric_prefactor(fit, data.compute_optimal(method), quantity, exponent)
    return (prefactor, exponent) if math.isfinite(prefactor) and prefactor > 0 else None


def _parametric_prefactor(fit: dict, table: dict | None, quantity: Quantity, exponent: float) -> float:
    for row in (table or {}).get("budgets") or []:
        C, value = as_float(row.get("C")), as_float(row.get(quantity.optimum))
        if C > 0 and value > 0:
            return value / C**exponent
    # The closed form at C = 1 FLOP is the prefactor (NaN for a non-physical law).
    alpha, beta, A, B = (as_float(fit.get(key)) for key in ("alpha", "beta", "A", "B"))
    k = as_float(fit.get("flops_per_param_token", 6.0))
    N_opt, D_opt = optimal_allocation(1.0, A, B, alpha, beta, k)
    return float(N_opt if quantity.name == "N" else D_opt)


def _draw_law(axes, data: GroupData, method: str, quantity: Quantity, low: float, high: float) -> None:
    law = power_law(data, method, quantity)
    if law is None or not (math.isfinite(low) and math.isfinite(high)):
        return
    prefactor, exponent = law
    ci = ((data.fit(method) or {}).get("ci") or {}).get(quantity.exponent)
    interval = f" [{number(ci[0])}, {number(ci[1])}]" if ci and all(is_number(end) for end in ci) else ""
    C = np.geomspace(low, high, 50)
    label = f"{METHOD_NAMES[method]}: {quantity.exponent} = {number(exponent)}{interval}"
    axes.plot(C, prefactor * C**exponent, "-", color=METHOD_COLORS[method], linewidth=1.5, label=label)


def _draw_forecasts(axes, table: dict | None, quantity: Quantity, color: str) -> None:
    """The compute-optimal table's rows (10x-1000x beyond the data) with their intervals."""
    rows = [row for row in (table or {}).get("budgets") or [] if is_number(row.get(quantity.optimum))]
    if not rows:
        return
    C = [as_float(row["C"]) for row in rows]
    value = np.array([as_float(row[quantity.optimum]) for row in rows])
    low = np.array([as_float(row.get(f"{quantity.optimum}_lo")) for row in rows])
    high = np.array([as_float(row.get(f"{quantity.optimum}_hi")) for row in rows])
    below = np.where(np.isfinite(low), np.maximum(value - low, 0.0), 0.0)
    above = np.where(np.isfinite(high), np.maximum(high - value, 0.0), 0.0)
    axes.errorbar(
        C,
        value,
        yerr=[below, above],
        fmt="s",
        color=color,
        markersize=5,
        capsize=3,
        elinewidth=1,
        markeredgecolor="black",
        markeredgewidth=0.5,
        zorder=4,
    )


def _caption(data: GroupData, quantity: Quantity, methods: list[str], errors: list[str]) -> str:
    what = "model size" if quantity.name == "N" else "training data"
    text = (
        f"Compute-optimal {what} {quantity.optimum} against compute. Grey points: the vertices of the "
        "IsoFLOP profiles with their 95% bootstrap intervals. Lines: the power law "
        f"{quantity.optimum} = k·C^{quantity.exponent} of each fitted method "
        f"({', '.join(METHOD_NAMES[m] for m in methods)}; the parametric exponent is "
        f"{'beta' if quantity.name == 'N' else 'alpha'}/(alpha+beta)), drawn up to the last forecast. "
        "Squares: the compute-optimal forecasts with their bootstrap intervals."
    )
    if quantity.name == "D":
        text += " The profile intervals for D_opt mirror those of N_opt (at a fixed budget D = C/(kN))."
    if errors:
        text += " Not shown: " + "; ".join(errors) + "."
    return text
