"""Read the analysis dict: the runs, curves and fits of one (task, tokenizer) group.

The analysis dict is the report's only input (see :mod:`roboscale.report`). Every
number in it may be None (JSON has no NaN), and every fit may be ``{"error": why}``
instead of a fit: the helpers here turn both into something the figures and tables
can test for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from roboscale.report.formatting import as_float, is_number

FIT_METHODS = ("isoflop", "frontier", "parametric")
"""The three fits of a group, in the order the report shows them."""

AUDIT_METHODS = ("isoflop", "parametric")

BUDGET_RELATIVE_TOLERANCE = 1e-6
"""A run belongs to an IsoFLOP profile when its budget equals the profile's C to this relative tolerance."""


def fit_or_none(value) -> dict | None:
    """A fit's dict, or None when it is missing or is ``{"error": ...}``."""
    if not isinstance(value, dict) or "error" in value:
        return None
    return value


def fit_error(value, missing: str = "not fitted") -> str | None:
    """Why a fit is not there: its error message, ``missing`` if absent, None if it is there."""
    if value is None:
        return missing
    if isinstance(value, dict) and "error" in value:
        return str(value["error"])
    return None


def same_budget(a, b) -> bool:
    """Two compute budgets (FLOPs) are the same budget."""
    x, y = as_float(a), as_float(b)
    return math.isfinite(x) and math.isfinite(y) and math.isclose(x, y, rel_tol=BUDGET_RELATIVE_TOLERANCE)


def slug(text: str) -> str:
    """Lowercase letters and digits only: "uniform:256" -> "uniform256"."""
    return re.sub(r"[^a-z0-9]+", "", str(text).lower()) or "x"


def group_slugs(groups: list[dict]) -> list[str]:
    """One unique id fragment per group, ``task-tokenizer`` ("bc-uniform256");
    a repeated one gets "-2", "-3", ..."""
    slugs, seen = [], {}
    for group in groups:
        base = f"{slug(group.get('task', ''))}-{slug(group.get('tokenizer', ''))}"
        seen[base] = seen.get(base, 0) + 1
        slugs.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return slugs


def has_measurements(run: dict) -> bool:
    """A finished run with a finite, positive N, D, C and loss: a point the figures can draw."""
    return run.get("status") == "finished" and all(
        is_number(run.get(key)) and as_float(run.get(key)) > 0 for key in ("N", "D", "C", "loss")
    )


@dataclass(frozen=True)
class GroupData:
    """One (task, tokenizer) group: its entry in ``groups`` with its runs and learning curves."""

    group: dict
    slug: str
    runs: list[dict]
    """Every run of the group, whatever its status."""
    curves: dict[str, list[dict]] = field(default_factory=dict)
    """Learning-curve points by run_id, in step order."""

    @property
    def label(self) -> str:
        return str(self.group.get("label") or f"{self.group.get('task')} · {self.group.get('tokenizer')}")

    @property
    def measured_runs(self) -> list[dict]:
        """Finished runs with N, D, C and loss, held-out ones included."""
        return [run for run in self.runs if has_measurements(run)]

    @property
    def fitted_runs(self) -> list[dict]:
        """Measured runs the fits saw (runs flagged ``holdout`` are left out)."""
        return [run for run in self.measured_runs if not run.get("holdout")]

    @property
    def holdout_runs(self) -> list[dict]:
        """Measured runs kept out of the fits (an optional ``holdout`` flag on a run)."""
        return [run for run in self.measured_runs if run.get("holdout")]

    def fit(self, method: str) -> dict | None:
        """The group's fit by ``method`` ("isoflop", "frontier", "parametric"), or None."""
        return fit_or_none(self.group.get(method))

    def fit_error(self, method: str) -> str | None:
        return fit_error(self.group.get(method))

    def compute_optimal(self, method: str) -> dict | None:
        """The compute-optimal table of ``method``, or None."""
        return fit_or_none((self.group.get("compute_optimal") or {}).get(method))

    def audit(self, method: str):
        """The audit of ``method``: a dict, ``{"error": ...}`` or None."""
        return (self.group.get("audit") or {}).get(method)


def group_data(analysis: dict) -> list[GroupData]:
    """Each group of the analysis with its runs (same task and tokenizer) and their curves."""
    groups = analysis.get("groups") or []
    curves = curves_by_run(analysis.get("curves") or [])
    result = []
    for group, group_slug in zip(groups, group_slugs(groups)):
        runs = [
            run
            for run in analysis.get("runs") or []
            if run.get("task") == group.get("task") and run.get("tokenizer") == group.get("tokenizer")
        ]
        group_curves = {run["run_id"]: curves[run["run_id"]] for run in runs if run.get("run_id") in curves}
        result.append(GroupData(group, group_slug, runs, group_curves))
    return result


def curves_by_run(points: list[dict]) -> dict[str, list[dict]]:
    """Learning-curve points grouped by run_id and sorted by step."""
    by_run: dict[str, list[dict]] = {}
    for point in points:
        by_run.setdefault(point.get("run_id"), []).append(point)
    for run_points in by_run.values():
        run_points.sort(key=lambda point: as_float(point.get("step")))
    return by_run
