"""The report's figures, one :class:`Panel` each, as inline SVG made by matplotlib.

Per (task, tokenizer) group, in page order:

- ``fig-isoflop-SLUG``: IsoFLOP profiles, loss against N per budget with the parabolas;
- ``fig-loss-compute-SLUG``: learning curves against compute, the frontier and its law;
- ``fig-optimal-n-SLUG`` and ``fig-optimal-d-SLUG``: compute-optimal N and D against C;
- ``fig-parity-SLUG`` and ``fig-residuals-SLUG``: the parametric law against the runs;
- with closed-loop evaluations (bc groups): ``fig-success-compute-SLUG``,
  ``fig-success-loss-SLUG`` and ``fig-intrinsic-SLUG`` (see ``figures.success``).
"""

from __future__ import annotations

from roboscale.report.analysis import GroupData
from roboscale.report.figures.allocation import allocation_panels
from roboscale.report.figures.compute import loss_compute_panel
from roboscale.report.figures.isoflop import isoflop_panel
from roboscale.report.figures.panel import Panel
from roboscale.report.figures.parametric import parametric_panels
from roboscale.report.figures.success import SUCCESS_KINDS, success_panels

FIGURE_KINDS = ("isoflop", "loss-compute", "optimal-n", "optimal-d", "parity", "residuals")
"""Figure ids are ``fig-KIND-SLUG``, in this order within a group."""


def group_panels(data: GroupData) -> list[Panel]:
    """Every figure of one group, in page order (a failed fit gives a panel with its error)."""
    return [
        isoflop_panel(data),
        loss_compute_panel(data),
        *allocation_panels(data),
        *parametric_panels(data),
        *success_panels(data),
    ]


__all__ = ["FIGURE_KINDS", "SUCCESS_KINDS", "Panel", "group_panels"]
