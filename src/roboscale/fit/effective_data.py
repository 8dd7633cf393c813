"""Effective data transferred (Hernandez et al. 2021, "Scaling Laws for Transfer"):
how many reference episodes one episode of another source is worth.

The reference source (e.g. clean expert demonstrations) has a loss-vs-amount law,
``L = A D^-alpha`` fitted by least squares in log-log space (or ``E + A D^-alpha``
with a floor, fitted like :func:`roboscale.fit.fit_power_law`). A run trained on
``D_other`` episodes of another source reaches some loss; the reference amount that
reaches the same loss, minus the reference episodes that run already had
(``base``, when the other source was added to a fixed reference set), is its
effective data ``D_eff``. ``worth = D_eff / D_other`` is what one such episode is
worth in reference episodes, per level; ``D_eff = k D_other^beta`` (Hernandez et
al.'s form) is fitted across levels by least squares in log-log space.

Intervals: the reference runs are resampled with replacement, the other source's
runs with replacement within each level (so that every level stays), and the whole
chain is redone for each resample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roboscale.errors import BadInputError
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, resample_counts, to_jsonable
from roboscale.fit.laws import PowerLawObjective
from roboscale.fit.power_law import fit_power_law, fit_rows, loglog_least_squares
from roboscale.fit.result import FitResult, bootstrap_fields

MIN_REFERENCE_LEVELS = 3
"""Distinct reference amounts the reference law needs."""

MIN_TRANSFER_LEVELS = 3
"""Levels of the other source with a usable effective amount that ``D_eff = k D^beta`` needs."""


@dataclass(frozen=True)
class EffectiveDataLevel:
    """One amount of the other source: its loss, effective data and worth."""

    amount: float
    """Episodes of the other source."""
    base: float
    """Reference episodes the run also had (0 when the other source was used alone)."""
    runs: int
    loss: float
    """Mean loss of the level's runs."""
    effective: float
    """Reference episodes that reach ``loss``, minus ``base`` (inf below the reference floor)."""
    effective_ci: tuple[float, float]
    worth: float
    """``effective / amount``: reference episodes per episode of the other source."""
    worth_ci: tuple[float, float]
    extrapolated: bool
    """True when ``loss`` lies outside the range of the reference runs' losses."""

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


@dataclass(frozen=True)
class EffectiveDataFit(FitResult):
    """Effective data of ``other`` in episodes of ``reference``, and ``D_eff = k D^beta``.

    ``samples``: (resamples, 5) bootstrap estimates of (k, beta, A, alpha, E)."""

    reference: str
    other: str
    A: float
    alpha: float
    E: float
    """Floor of the reference law (0 without --floor)."""
    k: float
    beta: float
    objective: float
    """Mean squared log residual of ``D_eff = k D^beta`` over the levels it was fitted to."""
    levels: tuple[EffectiveDataLevel, ...]
    reference_runs: int
    reference_range: tuple[float, float]
    """Lowest and highest reference amount (episodes)."""
    floor: bool = False
    note: str = ""

    method = "effective-data"

    @property
    def law(self) -> str:
        floor = "E + " if self.floor else ""
        return f"D_eff = k D_{self.other}^beta, D_eff inverting L_{self.reference}(D) = {floor}A D^-alpha"

    def to_dict(self) -> dict:
        return self._summary(
            {"k": self.k, "beta": self.beta, "A": self.A, "alpha": self.alpha, "E": self.E},
            {
                "objective": self.objective,
                "reference": self.reference,
                "other": self.other,
                "floor": self.floor,
                "reference_runs": self.reference_runs,
                "reference_range": self.reference_range,
            },
            {"levels": [level.to_dict() for level in self.levels], "note": self.note},
        )


def fit_effective_data(
    ref_amount,
    ref_loss,
    other_amount,
    other_loss,
    *,
    base_ref_amount=0.0,
    floor: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    ci_level: float = 0.95,
    reference: str = "reference",
    other: str = "other",
) -> EffectiveDataFit:
    """Effective reference data of each run level of another source (see the module doc).

    ``ref_amount``, ``ref_loss``: the reference-only runs (episodes, loss).
    ``other_amount``, ``other_loss``: runs with ``other_amount`` episodes of the other
    source; ``base_ref_amount`` (a number or one per other run): reference episodes
    those runs also had. ``floor``: fit the reference law with a floor E."""
    check_bootstrap_options(bootstrap, ci_level, seed)
    ref_x, ref_y = _positive_pairs(ref_amount, ref_loss, reference)
    other_x, other_y = _positive_pairs(other_amount, other_loss, other)
    base = np.broadcast_to(np.asarray(base_ref_amount, dtype=np.float64), other_x.shape).copy()
    if not np.all(np.isfinite(base) & (base >= 0)):
        raise BadInputError(f"the base reference amounts of {other} must be finite and >= 0")
    if np.unique(ref_x).size < MIN_REFERENCE_LEVELS:
        raise BadInputError(
            f"{reference} has {np.unique(ref_x).size} distinct amounts: its loss law needs at least "
            f"{MIN_REFERENCE_LEVELS} levels"
        )
    level_keys, level_of_run = np.unique(np.column_stack([other_x, base]), axis=0, return_inverse=True)
    level_of_run = level_of_run.ravel()

    law = _reference_law(ref_x, ref_y, floor)  # (E, A, alpha)
    level_loss = _level_means(other_y, level_of_run, len(level_keys), np.ones((1, len(other_y))))[0]
    effective = invert_amount_law(law[None, :], level_loss[None, :])[0] - level_keys[:, 1]
    k, beta, objective, usable = _transfer_law(level_keys[:, 0], effective)

    samples, effective_samples = None, None
    if bootstrap:
        ref_counts = resample_counts(len(ref_x), bootstrap, seed)
        other_counts = _counts_within_levels(level_of_run, bootstrap, seed)
        laws = _reference_law_rows(ref_x, ref_y, floor, ref_counts, law)
        means = _level_means(other_y, level_of_run, len(level_keys), other_counts)
        effective_samples = invert_amount_law(laws, means) - level_keys[None, :, 1]
        transfer = np.array([_transfer_law(level_keys[:, 0], row)[:2] for row in effective_samples])
        samples = np.column_stack([transfer, laws[:, 1], laws[:, 2], laws[:, 0]])
        samples = samples[np.all(np.isfinite(samples[:, 2:]), axis=1)]
    ci = {}
    if samples is not None:
        ci = {
            name: percentile_interval(samples[:, i], ci_level)
            for i, name in enumerate(("k", "beta", "A", "alpha", "E"))
        }
    levels = _levels(level_keys, level_of_run, level_loss, effective, effective_samples, ref_y, ci_level)
    note = (
        ""
        if usable >= MIN_TRANSFER_LEVELS
        else (
            f"only {usable} level(s) have a positive, finite effective amount: D_eff = k D^beta needs "
            f"{MIN_TRANSFER_LEVELS}"
        )
    )
    return EffectiveDataFit(
        reference=reference,
        other=other,
        A=float(law[1]),
        alpha=float(law[2]),
        E=float(law[0]),
        k=k,
        beta=beta,
        objective=objective,
        levels=levels,
        reference_runs=len(ref_x),
        reference_range=(float(ref_x.min()), float(ref_x.max())),
        floor=floor,
        note=note,
        **bootstrap_fields(samples, ci, bootstrap=bootstrap, ci_level=ci_level, reason="reference refits failed"),
    )


def _positive_pairs(amount, loss, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(amount, dtype=np.float64).ravel()
    y = np.asarray(loss, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise BadInputError(f"{name}: {x.size} amounts but {y.size} losses: give one loss per run")
    if x.size == 0:
        raise BadInputError(f"{name} has no runs")
    if not np.all(np.isfinite(x) & (x > 0) & np.isfinite(y) & (y > 0)):
        raise BadInputError(f"{name} has non-finite, zero or negative amounts or losses: both must be > 0")
    return x, y


def _reference_law(x: np.ndarray, y: np.ndarray, floor: bool) -> np.ndarray:
    """``(E, A, alpha)`` of the reference's loss law (E = 0 without a floor)."""
    if floor:
        fit = fit_power_law(x, y, offset=True, bootstrap=0)
        return np.array([fit.E, fit.A, fit.alpha])
    log_a, slope = loglog_least_squares(x, y, np.ones((1, len(x))))
    return np.array([0.0, np.exp(log_a[0]), -slope[0]])


def _reference_law_rows(x, y, floor: bool, counts: np.ndarray, law: np.ndarray) -> np.ndarray:
    """(resamples, 3) ``(E, A, alpha)`` refitted on each row of resample ``counts``."""
    if floor:
        start = np.array([[np.log(max(law[0], 1e-300)), np.log(law[1]), law[2]]])
        rows = fit_rows(PowerLawObjective, x, np.broadcast_to(y, counts.shape), counts, start, None, 1e-3)
        return np.column_stack([np.exp(rows[:, 0]), np.exp(rows[:, 1]), rows[:, 2]])
    log_a, slope = loglog_least_squares(x, y, counts)
    return np.column_stack([np.zeros(len(counts)), np.exp(log_a), -slope])


def invert_amount_law(laws: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Amount at which ``E + A D^-alpha`` equals ``loss``; laws (rows, 3), loss (rows, levels).
    inf where the loss is at or below the floor E (no amount of reference data reaches it)."""
    E, A, alpha = laws[:, 0:1], laws[:, 1:2], laws[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        amount = np.exp((np.log(A) - np.log(loss - E)) / alpha)
    return np.where(loss > E, amount, np.inf)


def _level_means(y: np.ndarray, level_of_run: np.ndarray, n_levels: int, counts: np.ndarray) -> np.ndarray:
    """(rows, levels) mean loss of each level under each row of run ``counts``."""
    one_hot = np.zeros((len(y), n_levels))
    one_hot[np.arange(len(y)), level_of_run] = 1.0
    return ((counts * y) @ one_hot) / (counts @ one_hot)


def _counts_within_levels(level_of_run: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, runs) counts resampling the runs with replacement within each level."""
    rng = np.random.default_rng([seed, 1])  # independent of the reference runs' resamples
    counts = np.zeros((n_resamples, len(level_of_run)))
    for level in np.unique(level_of_run):
        members = np.flatnonzero(level_of_run == level)
        draws = rng.integers(0, members.size, size=(n_resamples, members.size))
        np.add.at(counts, (np.arange(n_resamples)[:, None], members[draws]), 1.0)
    return counts


def _transfer_law(amount: np.ndarray, effective: np.ndarray) -> tuple[float, float, float, int]:
    """``(k, beta, mean squared log residual, usable levels)`` of ``D_eff = k D^beta``
    over the levels with a positive, finite ``D_eff``; NaN with too few of them."""
    usable = np.isfinite(effective) & (effective > 0)
    n = int(usable.sum())
    if n < MIN_TRANSFER_LEVELS or np.unique(amount[usable]).size < 2:
        return float("nan"), float("nan"), float("nan"), n
    log_k, beta = loglog_least_squares(amount, np.where(usable, effective, 1.0), usable[None, :].astype(float))
    residual = np.log(effective[usable]) - log_k[0] - beta[0] * np.log(amount[usable])
    return float(np.exp(log_k[0])), float(beta[0]), float(np.mean(residual**2)), n


def _levels(keys, level_of_run, loss, effective, effective_samples, ref_loss, ci_level) -> tuple:
    low, high = float(ref_loss.min()), float(ref_loss.max())
    levels = []
    for i, (amount, base) in enumerate(keys):
        if effective_samples is None:
            effective_ci = worth_ci = (float("nan"), float("nan"))
        else:
            effective_ci = percentile_interval(effective_samples[:, i], ci_level)
            worth_ci = percentile_interval(effective_samples[:, i] / amount, ci_level)
        levels.append(
            EffectiveDataLevel(
                amount=float(amount),
                base=float(base),
                runs=int(np.sum(level_of_run == i)),
                loss=float(loss[i]),
                effective=float(effective[i]),
                effective_ci=effective_ci,
                worth=float(effective[i] / amount),
                worth_ci=worth_ci,
                extrapolated=not low <= loss[i] <= high,
            )
        )
    return tuple(levels)
