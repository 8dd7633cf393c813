"""The parametric law against the runs: predicted vs observed loss, and residuals against compute."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from roboscale.report.analysis import GroupData
from roboscale.report.figures.panel import Panel, unavailable
from roboscale.report.formatting import as_float, is_number, number, percent
from roboscale.report.plotting import (
    LABEL_C,
    LABEL_LOSS,
    LABEL_N,
    label_log_axis,
    log_axes,
    log_color_norm,
    log_colorbar,
    render_svg,
)

LAW_PARAMETERS = ("E", "A", "B", "alpha", "beta")
COLORMAP = "viridis"


def parametric_panels(data: GroupData) -> list[Panel]:
    """Figure (d): a parity plot and the residuals in % against compute."""
    parity_id, residual_id = f"fig-parity-{data.slug}", f"fig-residuals-{data.slug}"
    parity_title = f"Parametric fit: predicted vs observed · {data.label}"
    residual_title = f"Parametric fit: residuals · {data.label}"
    fit = data.fit("parametric")
    problem = None
    if fit is None:
        problem = f"parametric fit: {data.fit_error('parametric')}"
    elif not all(is_number(fit.get(key)) for key in LAW_PARAMETERS):
        problem = "parametric fit: a parameter of the law is missing"
    elif not data.measured_runs:
        problem = "no finished runs with N, D and loss to compare with"
    if problem:
        return [unavailable(parity_id, parity_title, problem), unavailable(residual_id, residual_title, problem)]
    runs = _Runs.of(data, fit)
    parity = render_svg(lambda figure: _draw_parity(figure, runs, parity_title), parity_id)
    residuals = render_svg(lambda figure: _draw_residuals(figure, runs, fit, residual_title), residual_id)
    return [
        Panel(parity_id, parity_title, _parity_caption(fit, runs), svg=parity),
        Panel(residual_id, residual_title, _residual_caption(fit), svg=residuals),
    ]


def predict_loss(fit: dict, N, D) -> np.ndarray:
    """``E + A/N^alpha + B/D^beta`` at N parameters and D tokens."""
    E, A, B, alpha, beta = (as_float(fit[key]) for key in LAW_PARAMETERS)
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
    return E + A / N**alpha + B / D**beta


@dataclass(frozen=True)
class _Runs:
    """The group's measured runs as arrays, with the law's prediction for each."""

    N: np.ndarray
    """Parameters."""
    D: np.ndarray
    """Training tokens."""
    C: np.ndarray
    """Training FLOPs."""
    observed: np.ndarray
    """Final validation loss."""
    predicted: np.ndarray
    """The law's loss at (N, D)."""
    held_out: np.ndarray
    """True for runs the fits did not see."""

    @classmethod
    def of(cls, data: GroupData, fit: dict) -> _Runs:
        runs = data.measured_runs
        N, D, C, observed = (np.array([as_float(run[key]) for run in runs]) for key in ("N", "D", "C", "loss"))
        held_out = np.array([bool(run.get("holdout")) for run in runs])
        return cls(N, D, C, observed, predict_loss(fit, N, D), held_out)

    @property
    def relative_error_percent(self) -> np.ndarray:
        """100 (predicted - observed) / observed: > 0 where the law predicts too high a loss."""
        return 100.0 * (self.predicted - self.observed) / self.observed


def _draw_parity(figure: Figure, runs: _Runs, title: str) -> None:
    axes = log_axes(figure, title, f"observed {LABEL_LOSS}", f"predicted {LABEL_LOSS}", plain_y=True)
    label_log_axis(axes.xaxis, plain=True)
    norm = _scatter_runs(axes, runs, runs.observed, runs.predicted, runs.C, "C")
    span = np.array([min(runs.observed.min(), runs.predicted.min()), max(runs.observed.max(), runs.predicted.max())])
    span = span * np.array([0.97, 1.03])
    axes.plot(span, span, "--", color="grey", linewidth=1, label="predicted = observed")
    log_colorbar(figure, axes, norm, COLORMAP, LABEL_C)
    axes.legend(loc="upper left")


def _draw_residuals(figure: Figure, runs: _Runs, fit: dict, title: str) -> None:
    ylabel = "relative error (predicted − observed) / observed (%)"
    axes = log_axes(figure, title, LABEL_C, ylabel, logy=False)
    rms = as_float(fit.get("residual_rms"))
    if np.isfinite(rms):
        axes.axhspan(-100 * rms, 100 * rms, color="grey", alpha=0.15, label=f"± rms log residual ({percent(rms)})")
    axes.axhline(0.0, color="grey", linewidth=1)
    norm = _scatter_runs(axes, runs, runs.C, runs.relative_error_percent, runs.N, "N")
    log_colorbar(figure, axes, norm, COLORMAP, LABEL_N)
    axes.legend(loc="upper left")


def _scatter_runs(axes, runs: _Runs, x: np.ndarray, y: np.ndarray, colour: np.ndarray, colour_name: str):
    """The fitted runs as dots coloured by ``colour`` (log scale), held-out runs as black
    crosses; returns the colour norm (for the colour bar)."""
    norm, cmap = log_color_norm(colour), matplotlib.colormaps[COLORMAP]
    fitted = ~runs.held_out
    axes.scatter(
        x[fitted],
        y[fitted],
        c=colour[fitted],
        cmap=cmap,
        norm=norm,
        s=22,
        edgecolors="black",
        linewidths=0.3,
        label=f"runs (colour: {colour_name})",
        zorder=3,
    )
    if runs.held_out.any():
        held_out = runs.held_out
        axes.scatter(x[held_out], y[held_out], marker="x", color="black", label="held-out runs (not fitted)", zorder=3)
    return norm


def _law_text(fit: dict) -> str:
    values = ", ".join(f"{key} = {number(fit[key])}" for key in LAW_PARAMETERS)
    return f"L(N, D) = E + A/N^alpha + B/D^beta with {values}"


def _parity_caption(fit: dict, runs: _Runs) -> str:
    mean_error = float(np.mean(np.abs(runs.relative_error_percent[~runs.held_out]))) / 100.0
    return (
        f"Loss predicted by the parametric law {_law_text(fit)} against the observed final validation loss "
        f"of each finished run of the group (colour: training compute). Mean |relative error| over the "
        f"fitted runs: {percent(mean_error)}."
    )


def _residual_caption(fit: dict) -> str:
    return (
        "Relative error of the parametric law at each run against its training compute (colour: model size). "
        "A trend with compute warns that the law will drift when extrapolated. Band: ± the root-mean-square "
        f"log residual of the fit ({percent(fit.get('residual_rms'))})."
    )
