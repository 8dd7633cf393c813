"""The shape every fit result shares: bootstrap intervals, samples and a JSON layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from roboscale.fit.bootstrap import to_jsonable


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """Base of every fitted law: its bootstrap intervals and samples.

    Subclasses are frozen dataclasses that add their parameters, set ``method`` and
    ``law``, and build ``to_dict()`` with :meth:`_summary`, so every fit's JSON has
    the same layout.
    """

    method: ClassVar[str]
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Parameter name -> (low, high) percentile interval at ``ci_level``."""
    ci_level: float = 0.95
    bootstrap: int = 0
    """Resamples asked for (0: no intervals)."""
    bootstrap_converged: int = 0
    """Resamples that gave a usable refit (the rows of ``samples``)."""
    bootstrap_dropped: dict[str, int] = field(default_factory=dict, compare=False)
    """Why the other resamples were left out, and how many for each reason."""
    samples: np.ndarray | None = field(default=None, repr=False, compare=False)
    """(resamples, parameters) bootstrap estimates; the columns are the subclass's."""

    @property
    def law(self) -> str:
        raise NotImplementedError

    @property
    def bootstrap_summary(self) -> str:
        """E.g. "931 of 1000 resamples (69 had too few frontier points)"."""
        text = f"{self.bootstrap_converged} of {self.bootstrap} resamples"
        reasons = ", ".join(f"{count} {why}" for why, count in self.bootstrap_dropped.items())
        return f"{text} ({reasons})" if reasons else text

    def sample_columns(self, count: int) -> list[np.ndarray] | None:
        """The first ``count`` sample columns, each (resamples, 1) so that they
        broadcast against a row of x values; None without bootstrap samples."""
        if self.samples is None or len(self.samples) == 0:
            return None
        return [self.samples[:, i : i + 1] for i in range(count)]

    def to_dict(self) -> dict:
        """Every number of the fit, JSON-ready (bootstrap samples left out)."""
        raise NotImplementedError

    def _summary(self, estimates: dict, details: dict, tail: dict | None = None) -> dict:
        """The shared JSON layout: method, law, ``estimates``, intervals, ``details``,
        bootstrap counts (and why resamples were dropped, if any), ``tail``."""
        dropped = {"bootstrap_dropped": self.bootstrap_dropped} if self.bootstrap_dropped else {}
        return to_jsonable(
            {
                "method": self.method,
                "law": self.law,
                **estimates,
                "ci": self.ci,
                "ci_level": self.ci_level,
                **details,
                "bootstrap": self.bootstrap,
                "bootstrap_converged": self.bootstrap_converged,
                **dropped,
                **(tail or {}),
                "converged": True,
            }
        )


def dropped_counts(asked: int, kept: int, reason: str) -> dict[str, int]:
    """``{reason: asked - kept}``, or ``{}`` when every resample was kept."""
    return {reason: asked - kept} if asked > kept else {}


def bootstrap_fields(
    samples: np.ndarray | None,
    ci: dict,
    *,
    bootstrap: int,
    ci_level: float,
    dropped: dict[str, int] | None = None,
    reason: str = "refits did not converge",
) -> dict:
    """The :class:`FitResult` fields of a fit, as keyword arguments for its constructor.

    ``dropped`` says why resamples were left out; by default every missing one is
    put down to ``reason``."""
    kept = 0 if samples is None else len(samples)
    return {
        "ci": ci,
        "ci_level": ci_level,
        "bootstrap": bootstrap,
        "bootstrap_converged": kept,
        "bootstrap_dropped": dropped_counts(bootstrap, kept, reason) if dropped is None else dropped,
        "samples": samples,
    }
