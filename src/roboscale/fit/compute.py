"""The compute convention ``C = k N D``: FLOPs per parameter per token, measured from the runs.

``6`` is the textbook value for the forward and backward pass of a dense model's
matrices. Runs that count their FLOPs exactly (attention, embeddings, heads) have
another ``k``, and it may differ between model sizes: the demo's runs have
``C / (N D) = 4.97``. Every allocation ``(N_opt, D_opt)`` for a budget C depends on
it, so roboscale reads it off the runs themselves instead of assuming 6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roboscale.errors import BadInputError
from roboscale.fit.bootstrap import to_jsonable

DEFAULT_FLOPS_PER_PARAM_TOKEN = 6.0
"""``k`` used to derive a missing N, D or C when none is given: forward plus backward
pass of a dense model's matrices (2 + 4 FLOPs per parameter per token)."""


@dataclass(frozen=True)
class ComputeConvention:
    """``k`` of ``C = k N D`` (FLOPs per parameter per token) and where it came from."""

    k: float
    """FLOPs per parameter per token used for allocations: the runs' median ``C / (N D)``,
    or the value given."""
    k_min: float
    """Smallest ``C / (N D)`` of one run (FLOPs per parameter per token)."""
    k_max: float
    """Largest ``C / (N D)`` of one run."""
    n_runs: int
    """Runs measured (distinct run ids, or rows without a run column)."""
    source: str
    """E.g. "measured from 24 runs", "given (measured 4.97)", "assumed: C derived as 6 N D"."""

    def to_dict(self) -> dict:
        return to_jsonable({"k": self.k, "k_min": self.k_min, "k_max": self.k_max, "source": self.source})

    def describe(self) -> str:
        """One line for reports and the CLI, e.g. "C = 4.97 N D (4.80-5.12 over runs; measured from 24 runs)"."""
        spread = f"{self.k_min:.3g}-{self.k_max:.3g} over runs; " if self.k_max > self.k_min * (1 + 1e-6) else ""
        return f"C = {self.k:.3g} N D ({spread}{self.source})"


def per_run_flops_per_param_token(N, D, C, runs=None) -> np.ndarray:
    """``C / (N D)`` of each run (FLOPs per parameter per token): per row, or, with
    ``runs`` (a run id per row, e.g. the points of learning curves), the median of
    each run's rows."""
    ratio = np.asarray(C, dtype=np.float64) / (np.asarray(N, dtype=np.float64) * np.asarray(D, dtype=np.float64))
    if runs is None:
        return ratio
    ids, inverse = np.unique(np.asarray(runs), return_inverse=True)
    return np.array([np.median(ratio[inverse == i]) for i in range(len(ids))])


def measure_convention(N, D, C, *, runs=None, given: float | None = None, assumed: str = "") -> ComputeConvention:
    """The convention of runs with N parameters, D tokens and C FLOPs (arrays).

    ``k`` is the median over runs of ``C / (N D)`` (its range ``k_min``-``k_max``)
    unless ``given``; ``assumed`` (e.g. "C derived as 6 N D") says that a column was
    derived from an assumed k rather than measured."""
    ratios = per_run_flops_per_param_token(N, D, C, runs)
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if ratios.size == 0:
        raise BadInputError("no run with a finite, positive N, D and C: cannot measure FLOPs per parameter per token")
    measured = float(np.median(ratios))
    if given is not None:
        if not (np.isfinite(given) and given > 0):
            raise BadInputError(f"flops_per_param_token={given}: must be a number > 0 (6 for a dense transformer)")
        source = f"given (the runs' C / (N D) is {measured:.3g})" if not assumed else f"given ({assumed})"
        k = float(given)
    else:
        k = measured
        source = f"assumed: {assumed}" if assumed else f"measured from {ratios.size} run{'s' * (ratios.size != 1)}"
    return ComputeConvention(k, float(ratios.min()), float(ratios.max()), int(ratios.size), source)
