"""Scaling-law fitting: from a runs table to laws, compute-optimal allocations and audits.

Public API (each fit returns a frozen :class:`FitResult` dataclass with its
parameters, bootstrap intervals in ``ci`` and a ``to_dict()``)::

    from roboscale.fit import fit_parametric, fit_isoflop, fit_frontier, fit_power_law, compute_optimal

    law = fit_parametric("runs.csv")             # L(N, D) = E + A/N^alpha + B/D^beta
    gap = fit_power_law(n_tasks, gap, offset=False)   # gap = A n^-alpha, least squares in log-log space
    plan = compute_optimal(law, [1e18, 1e19])     # N_opt, D_opt, loss with intervals
"""

from typing import TYPE_CHECKING

from roboscale.lazy import lazy_exports

# Submodules load on first use (pandas and the fitters take most of a second to import,
# which every `roboscale` command would otherwise pay at start-up).
AUDIT_METHODS = ("parametric", "isoflop", "frontier")
"""The laws :func:`audit_extrapolation` can audit."""

_SOURCES = {
    "BrokenPowerLawFit": "roboscale.fit.power_law",
    "ComputeOptimal": "roboscale.fit.allocation",
    "DataConstrainedFit": "roboscale.fit.data_constrained",
    "MUENNIGHOFF_C4_STAGE1": "roboscale.fit.data_constrained",
    "ExtrapolationAudit": "roboscale.fit.audit",
    "FitResult": "roboscale.fit.result",
    "FrontierFit": "roboscale.fit.frontier",
    "HOFFMANN_GRID": "roboscale.fit.parametric",
    "IsoFlopFit": "roboscale.fit.isoflop",
    "IsoFlopProfile": "roboscale.fit.isoflop",
    "ParametricFit": "roboscale.fit.parametric",
    "PowerLawFit": "roboscale.fit.power_law",
    "RunsTable": "roboscale.fit.runs_table",
    "audit_extrapolation": "roboscale.fit.audit",
    "compute_frontier": "roboscale.fit.intrinsic",
    "compute_optimal": "roboscale.fit.allocation",
    "fit_broken_power_law": "roboscale.fit.power_law",
    "fit_data_constrained": "roboscale.fit.data_constrained",
    "fit_frontier": "roboscale.fit.frontier",
    "fit_isoflop": "roboscale.fit.isoflop",
    "fit_parametric": "roboscale.fit.parametric",
    "fit_power_law": "roboscale.fit.power_law",
    "intrinsic_performance": "roboscale.fit.intrinsic",
    "isoflop_profiles": "roboscale.fit.isoflop",
    "load_runs": "roboscale.fit.runs_table",
    "noise_budget": "roboscale.fit.noise",
    "read_table": "roboscale.fit.runs_table",
    "simulate_isoflop_runs": "roboscale.fit.simulate",
    "simulate_learning_curves": "roboscale.fit.simulate",
    # data axes (issue 14): mixtures, effective data, the joint law in N and data per source
    "EffectiveDataFit": "roboscale.fit.effective_data",
    "fit_effective_data": "roboscale.fit.effective_data",
    "JointDataFit": "roboscale.fit.joint_data",
    "fit_joint_data_law": "roboscale.fit.joint_data",
    "MixtureLawFit": "roboscale.fit.mixture",
    "OptimalMixture": "roboscale.fit.mixture",
    "fit_mixture_law": "roboscale.fit.mixture",
    "optimal_mixture": "roboscale.fit.mixture",
}

__all__ = [
    "HOFFMANN_GRID",
    "MUENNIGHOFF_C4_STAGE1",
    "BrokenPowerLawFit",
    "ComputeOptimal",
    "DataConstrainedFit",
    "EffectiveDataFit",
    "ExtrapolationAudit",
    "FitResult",
    "FrontierFit",
    "IsoFlopFit",
    "IsoFlopProfile",
    "JointDataFit",
    "MixtureLawFit",
    "OptimalMixture",
    "ParametricFit",
    "PowerLawFit",
    "RunsTable",
    "audit_extrapolation",
    "compute_frontier",
    "compute_optimal",
    "fit_broken_power_law",
    "fit_data_constrained",
    "fit_effective_data",
    "fit_frontier",
    "fit_isoflop",
    "fit_joint_data_law",
    "fit_mixture_law",
    "fit_parametric",
    "fit_power_law",
    "intrinsic_performance",
    "isoflop_profiles",
    "load_runs",
    "noise_budget",
    "optimal_mixture",
    "read_table",
    "simulate_isoflop_runs",
    "simulate_learning_curves",
]


__getattr__ = lazy_exports(__name__, _SOURCES)


if TYPE_CHECKING:
    from roboscale.fit.allocation import ComputeOptimal, compute_optimal
    from roboscale.fit.audit import ExtrapolationAudit, audit_extrapolation
    from roboscale.fit.data_constrained import MUENNIGHOFF_C4_STAGE1, DataConstrainedFit, fit_data_constrained
    from roboscale.fit.effective_data import EffectiveDataFit, fit_effective_data
    from roboscale.fit.frontier import FrontierFit, fit_frontier
    from roboscale.fit.intrinsic import compute_frontier, intrinsic_performance
    from roboscale.fit.isoflop import IsoFlopFit, IsoFlopProfile, fit_isoflop, isoflop_profiles
    from roboscale.fit.joint_data import JointDataFit, fit_joint_data_law
    from roboscale.fit.mixture import MixtureLawFit, OptimalMixture, fit_mixture_law, optimal_mixture
    from roboscale.fit.noise import noise_budget
    from roboscale.fit.parametric import HOFFMANN_GRID, ParametricFit, fit_parametric
    from roboscale.fit.power_law import BrokenPowerLawFit, PowerLawFit, fit_broken_power_law, fit_power_law
    from roboscale.fit.result import FitResult
    from roboscale.fit.runs_table import RunsTable, load_runs, read_table
    from roboscale.fit.simulate import simulate_isoflop_runs, simulate_learning_curves
