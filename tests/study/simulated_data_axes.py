"""A simulated runs table along the data axes, from known laws, for the data-analysis and report tests.

- amount x quality (crossed): clean loss ``FLOOR + A_AMOUNT episodes^-ALPHA_AMOUNT``; a noisy
  episode at noise q is worth ``WORTH[q]`` clean ones (loss = clean law at WORTH[q] x episodes);
  success ``1 - B_SUCCESS episodes^-ALPHA_SUCCESS`` (clean-equivalent episodes);
- diversity: held-out loss ``A_TASKS train_tasks^-ALPHA_TASKS`` at a fixed 400 episodes;
- repetition: ``UNIQUE`` episodes for R epochs are worth Muennighoff et al.'s
  ``U + U R* (1 - exp(-(R-1)/R*))`` fresh ones, R* = ``R_STAR``;
- mixture of "expert" and "noisy": ``loss_s = c_s + k_s exp(t_s r_expert)`` (MIXTURE).
Width 64 has every loss scaled by ``WIDE_FACTOR``. Multiplicative log-normal noise ``noise``.

Also the STAND-IN for ``roboscale.fit.fit_mixture_law`` (being written by another helper):
tests monkeypatch it in until the real one lands.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

A_AMOUNT, ALPHA_AMOUNT = 2.0, 0.4
A_TASKS, ALPHA_TASKS = 3.0, 0.3
B_SUCCESS, ALPHA_SUCCESS = 0.9, 0.3
WORTH = {0.0: 1.0, 0.2: 0.5, 0.5: 0.2}
UNIQUE, R_STAR = 100, 15.0
MIXTURE = {"expert": (0.3, 0.5, -2.0), "noisy": (0.35, 0.2, 1.5)}
WIDTHS = (32, 64)
WIDE_FACTOR = 0.9
EPISODES = (50, 100, 200, 400, 800)
TASKS = (1, 2, 4, 8)
REPETITIONS = (1, 2, 4, 8)
PROPORTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)
SEEDS = (0, 1)


def clean_loss(episodes, floor: float = 0.0):
    return floor + A_AMOUNT * np.asarray(episodes, dtype=float) ** -ALPHA_AMOUNT


def repeated_worth(repetitions: float) -> float:
    """Fresh episodes that UNIQUE episodes seen ``repetitions`` times are worth."""
    return UNIQUE + UNIQUE * R_STAR * (1.0 - np.exp(-(repetitions - 1) / R_STAR))


def simulated_data_runs(
    *, noise: float = 0.01, floor: float = 0.0, seed: int = 0, success: bool = True, widths=WIDTHS
) -> pd.DataFrame:
    """The runs table (section-4 columns of the issue-14 design) of a study over every data axis."""
    rng = np.random.default_rng(seed)
    rows = []
    for width in widths:
        scale = WIDE_FACTOR if width == 64 else 1.0
        for run_seed in SEEDS:
            common = {"d_model": width, "seed": run_seed, "status": "finished"}
            for q, worth in WORTH.items():
                for episodes in EPISODES:
                    clean_equivalent = worth * episodes
                    row = _row(common, "amount+quality", episodes, q, scale * clean_loss(clean_equivalent, floor))
                    if success:
                        failure = B_SUCCESS * clean_equivalent**-ALPHA_SUCCESS * np.exp(rng.normal(0.0, noise))
                        row["success"] = 1.0 - failure
                    rows.append(row)
            for tasks in TASKS:
                row = _row(common, "diversity", 400, 0.0, scale * clean_loss(400, floor), train_tasks=tasks)
                row["heldout_loss"] = scale * A_TASKS * tasks**-ALPHA_TASKS
                rows.append(row)
            for repetitions in REPETITIONS:
                loss = scale * clean_loss(repeated_worth(repetitions), floor)
                rows.append(_row(common, "repetition", UNIQUE, 0.0, loss, repetitions=repetitions, unique=UNIQUE))
            for share in PROPORTIONS:
                rows.append(_mixture_row(common, share, scale))
    table = pd.DataFrame(rows)
    for column in ("loss", "loss_expert", "loss_noisy", "heldout_loss"):
        table[column] = table[column] * np.exp(rng.normal(0.0, noise, len(table)))
    table["run_id"] = [f"run-{i:03d}" for i in range(len(table))]
    return table


def _row(common, axis, episodes, q, loss, *, train_tasks=8, repetitions=1, unique=None) -> dict:
    return {
        **common,
        "axis": axis,
        "episodes": episodes,
        "unique_episodes": unique if unique is not None else episodes,
        "repetitions": repetitions,
        "train_tasks": train_tasks,
        "quality": f"noise:{q:g}",
        "noise": q,
        "episodes_expert": episodes,
        "episodes_noisy": 0,
        "r_expert": 1.0,
        "r_noisy": 0.0,
        "loss": loss,
        "loss_expert": loss,
        "loss_noisy": np.nan,
        "heldout_loss": np.nan,
        "success": np.nan,
    }


def _mixture_row(common, share: float, scale: float) -> dict:
    losses = {s: scale * (c + k * np.exp(t * share)) for s, (c, k, t) in MIXTURE.items()}
    row = _row(common, "mixture", 400, 0.0, losses["expert"])
    row.update(
        episodes_expert=round(400 * share),
        episodes_noisy=400 - round(400 * share),
        r_expert=share,
        r_noisy=1.0 - share,
        loss_expert=losses["expert"],
        loss_noisy=losses["noisy"],
    )
    return row


# --------------------------------------------------------------------------------------------
# STAND-IN for roboscale.fit.fit_mixture_law (mixfit helper): same documented interface
# (c, k, t, objective, predict(r), optimal_mixture(weights), to_dict), two sources only.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandInMixtureLaw:
    """STAND-IN: L(r) = c + k exp(t r_first), fitted on a grid of t with c, k by least squares."""

    c: float
    k: float
    t: float
    objective: float
    names: tuple[str, ...]

    def predict(self, proportions):
        r = np.atleast_2d(np.asarray(proportions, dtype=float))[:, 0]
        return self.c + self.k * np.exp(self.t * r)

    def optimal_mixture(self, weights: dict) -> dict:
        grid = np.linspace(0.0, 1.0, 101)
        best = float(grid[np.argmin(self.predict(np.column_stack([grid, 1 - grid])))])
        proportions = dict(zip(self.names, (best, 1.0 - best)))
        loss = float(self.predict([[best, 1 - best]])[0])
        return {"proportions": proportions, "ci": None, "loss": loss, "loss_ci": None}

    def to_dict(self) -> dict:
        return {"method": "mixture (stand-in)", "c": self.c, "k": self.k, "t": self.t, "objective": self.objective}


def stand_in_fit_mixture_law(proportions, loss, names) -> StandInMixtureLaw:
    """STAND-IN for roboscale.fit.fit_mixture_law (two sources)."""
    r = np.asarray(proportions, dtype=float)[:, 0]
    loss = np.asarray(loss, dtype=float)
    best = None
    for t in np.linspace(-5.0, 5.0, 1001):
        design = np.column_stack([np.ones_like(r), np.exp(t * r)])
        (c, k), *_ = np.linalg.lstsq(design, loss, rcond=None)
        error = float(np.mean((design @ np.array([c, k]) - loss) ** 2))
        if best is None or error < best[-1]:
            best = (float(c), float(k), float(t), error)
    return StandInMixtureLaw(*best, names=tuple(names))


def data_axes_with_stand_in(runs: pd.DataFrame, *, bootstrap: int, seed: int = 0) -> dict:
    """data_axes_analysis(runs) with the STAND-IN mixture law when roboscale.fit has none yet."""
    import roboscale.fit
    from roboscale.study.data_analysis import data_axes_analysis

    with pytest.MonkeyPatch.context() as patch:
        if getattr(roboscale.fit, "fit_mixture_law", None) is None:
            patch.setattr(roboscale.fit, "fit_mixture_law", stand_in_fit_mixture_law, raising=False)
        return data_axes_analysis(runs, reference="expert", bootstrap=bootstrap, seed=seed)


BOOTSTRAP = 20


@functools.cache
def one_width_data_axes() -> dict:
    """The data_axes analysis of every axis at width 32 (read-only: computed once per process)."""
    return data_axes_with_stand_in(simulated_data_runs(widths=(32,)), bootstrap=BOOTSTRAP)
