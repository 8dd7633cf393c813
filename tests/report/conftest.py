"""An analysis dict built from real roboscale fits on simulated runs, for the report tests.

Three (task, tokenizer) groups, each simulated from a known parametric law:

- ``bc`` / ``uniform:256`` and ``wm`` / ``uniform:256``: IsoFLOP grids whose minima are
  bracketed, so every fit and both audits succeed; ``bc`` also has a budget with only two
  model sizes, a profile the IsoFLOP fit reports as unusable;
- ``bc`` / ``continuous``: model sizes all below the optimum, so the IsoFLOP fit (and
  its audit) fails for real and is recorded as ``{"error": ...}``; it also holds a
  failed run with an error message and a planned run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from tests.helpers import built_once

from roboscale.errors import RoboscaleError
from roboscale.fit import (
    audit_extrapolation,
    compute_optimal,
    fit_frontier,
    fit_isoflop,
    fit_parametric,
    simulate_isoflop_runs,
    simulate_learning_curves,
)
from roboscale.fit.bootstrap import to_jsonable

BOOTSTRAP = 50
PARAMETRIC_STARTS = {
    "log_E": (-0.5, 0.0, 0.5),
    "log_A": (0.0, 5.0, 10.0),
    "log_B": (0.0, 5.0, 10.0),
    "alpha": (0.5,),
    "beta": (0.5,),
}
"""27 starting points instead of the 4,500 of the full grid: these smooth simulated laws have one
basin, which these reach (same optimum to 1e-8), and the tests stay fast."""
FORECAST_FACTORS = (10.0, 100.0, 1000.0)
FAILED_RUN_ERROR = "RunDivergedError: loss became NaN at step 412 (learning rate 3e-3 too high for d_model=512)"


@dataclass(frozen=True)
class SimulatedGroup:
    """One group's true law and its grid of runs."""

    task: str
    tokenizer: str
    law: tuple[float, float, float, float, float]
    """(E, A, B, alpha, beta) of L(N, D) = E + A/N^alpha + B/D^beta."""
    budgets: tuple[float, ...]
    """Compute budgets in FLOPs."""
    model_sizes: tuple[float, ...]
    """Parameters."""
    seed: int
    sparse_budget: tuple[float, tuple[float, ...]] | None = None
    """An extra budget (FLOPs) run at only these model sizes: too few for a parabola."""


GROUPS = (
    SimulatedGroup(
        "bc",
        "uniform:256",
        (0.8, 40.0, 120.0, 0.35, 0.30),
        (1e12, 1e13, 1e14, 1e15, 1e16),
        tuple(np.geomspace(3e3, 3e7, 9)),
        seed=1,
        sparse_budget=(3e13, (1e5, 3e5)),
    ),
    SimulatedGroup(
        "wm",
        "uniform:256",
        (1.2, 25.0, 300.0, 0.30, 0.35),
        (1e12, 1e13, 1e14, 1e15, 1e16),
        tuple(np.geomspace(1e3, 1e7, 9)),
        seed=2,
    ),
    SimulatedGroup(
        "bc",
        "continuous",
        (0.9, 40.0, 120.0, 0.35, 0.30),
        (1e13, 1e14, 1e15, 1e16),
        tuple(np.geomspace(1e3, 3e4, 4)),
        seed=3,
    ),
)


def attempt(make):
    """The fit's to_dict(), or {"error": why} when the data cannot support it (as the study does)."""
    try:
        return make().to_dict()
    except RoboscaleError as error:
        return {"error": str(error)}


def simulated_runs(spec: SimulatedGroup) -> pd.DataFrame:
    """The group's finished runs in the report's run schema (plus the canonical N, D, C, loss)."""
    table = simulate_isoflop_runs(
        *spec.law, budgets=spec.budgets, model_sizes=spec.model_sizes, noise=0.01, seed=spec.seed
    )
    if spec.sparse_budget:
        budget, sizes = spec.sparse_budget
        sparse = simulate_isoflop_runs(*spec.law, budgets=[budget], model_sizes=sizes, noise=0.01, seed=spec.seed)
        table = pd.concat([table, sparse], ignore_index=True)
    widths = {N: 32 * (index + 1) for index, N in enumerate(sorted(set(table["N"])))}
    rows = []
    for index, run in enumerate(table.itertuples()):
        d_model = widths[run.N]
        rows.append(
            {
                "run_id": f"{spec.task}-{spec.tokenizer.replace(':', '')}-{index:03d}",
                "status": "finished",
                "task": spec.task,
                "tokenizer": spec.tokenizer,
                "seed": 0,
                "d_model": d_model,
                "n_layer": d_model // 32,
                "budget": float(run.C),
                "N": int(round(run.N)),
                "D": float(run.D),
                "C": float(run.C),
                "loss": float(run.loss),
                "train_loss": float(run.loss) * 0.97,
                "epochs": 1.0,
                "error": None,
                "wall_seconds": 1e-9 * run.C,
            }
        )
    return pd.DataFrame(rows)


def learning_curves(spec: SimulatedGroup, runs: pd.DataFrame) -> pd.DataFrame:
    """Each run's learning curve, ending at its final loss (columns of the report's curve schema)."""
    frames = []
    for index, run in enumerate(runs.itertuples()):
        curve = simulate_learning_curves(
            *spec.law,
            model_sizes=[run.N],
            max_flops=run.C,
            points_per_curve=10,
            noise=0.003,
            seed=spec.seed * 1000 + index,
        )
        val_loss = curve["loss"].to_numpy().copy()
        val_loss[-1] = run.loss
        frames.append(
            pd.DataFrame(
                {
                    "run_id": run.run_id,
                    "step": (curve["step"] + 1) * 100,
                    "tokens": curve["D"],
                    "flops": curve["C"],
                    "val_loss": val_loss,
                    "train_loss": val_loss * 0.97,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def fitted_group(spec: SimulatedGroup, runs: pd.DataFrame, curves: pd.DataFrame, n_failed: int) -> dict:
    """The group's entry of the analysis: every fit, forecast and audit, or its error."""
    table = runs[["run_id", "N", "D", "C", "loss", "budget"]]
    curve_table = curves.rename(columns={"flops": "C", "tokens": "D", "val_loss": "loss", "run_id": "run"})
    curve_table = curve_table.assign(N=curve_table["run"].map(runs.set_index("run_id")["N"]))
    makers = {
        "isoflop": lambda: fit_isoflop(table, budget="budget", bootstrap=BOOTSTRAP, seed=0),
        "frontier": lambda: fit_frontier(curve_table[["run", "N", "D", "C", "loss"]], bootstrap=BOOTSTRAP, seed=0),
        "parametric": lambda: fit_parametric(table, bootstrap=BOOTSTRAP, seed=0, grid=PARAMETRIC_STARTS),
    }
    fits = {}
    for name, make in makers.items():
        try:
            fits[name] = make()
        except RoboscaleError as error:
            fits[name] = {"error": str(error)}
    largest = float(table["budget"].max())
    budgets = [largest * factor for factor in FORECAST_FACTORS]
    group = {
        "task": spec.task,
        "tokenizer": spec.tokenizer,
        "label": f"{spec.task} · {spec.tokenizer}",
        "n_runs": len(runs) + n_failed,
        "n_failed": n_failed,
        **{name: fit if isinstance(fit, dict) else fit.to_dict() for name, fit in fits.items()},
        "compute_optimal": {
            name: compute_optimal(fit, budgets).to_dict() for name, fit in fits.items() if not isinstance(fit, dict)
        },
        "audit": {
            method: attempt(
                lambda m=method: audit_extrapolation(
                    table, m, bootstrap=BOOTSTRAP, seed=0, budget_tolerance=0.01, fit_options=fit_options(m)
                )
            )
            for method in ("isoflop", "parametric")
        },
        "recommendation": recommendation(fits, largest, runs),
    }
    return group


def fit_options(method: str) -> dict:
    return {"grid": PARAMETRIC_STARTS} if method == "parametric" else {}


def recommendation(fits: dict, largest: float, runs: pd.DataFrame) -> dict | None:
    """The compute-optimal run at 10x the largest budget, snapped to the nearest width (IsoFLOP law first)."""
    for method in ("isoflop", "parametric"):
        fit = fits[method]
        if isinstance(fit, dict):
            continue
        budget = 10.0 * largest
        N, D, _ = (float(np.ravel(value)[0]) for value in fit.allocate(np.array([budget])))
        widths = runs.drop_duplicates("d_model").set_index("d_model")["N"]
        width = int(min(widths.index, key=lambda w: abs(math.log(widths[w] / N))))
        return {
            "budget": budget,
            "N": N,
            "D": D,
            "d_model": width,
            "n_layer": width // 32,
            "method": method,
            "reason": f"{method} law at 10x the largest budget, nearest width {width}",
        }
    return None


def extra_runs(spec: SimulatedGroup) -> list[dict]:
    """A failed run with its error and a planned run, neither with measurements."""
    common = {
        "task": spec.task,
        "tokenizer": spec.tokenizer,
        "seed": 0,
        "N": None,
        "D": None,
        "C": None,
        "loss": None,
        "train_loss": None,
        "epochs": None,
    }
    return [
        {
            **common,
            "run_id": "bc-continuous-failed",
            "status": "failed",
            "d_model": 512,
            "n_layer": 16,
            "budget": 1e16,
            "error": FAILED_RUN_ERROR,
            "wall_seconds": 12.5,
        },
        {
            **common,
            "run_id": "bc-continuous-planned",
            "status": "planned",
            "d_model": 1024,
            "n_layer": 32,
            "budget": 1e17,
            "error": None,
            "wall_seconds": None,
        },
    ]


def build_analysis() -> dict:
    """The whole analysis dict: three groups fitted for real, published exponents and warnings."""
    runs, curves, groups = [], [], []
    for spec in GROUPS:
        finished = simulated_runs(spec)
        group_curves = learning_curves(spec, finished)
        extras = extra_runs(spec) if spec.tokenizer == "continuous" else []
        n_failed = sum(run["status"] == "failed" for run in extras)
        groups.append(fitted_group(spec, finished, group_curves, n_failed))
        runs += finished.to_dict(orient="records") + extras
        curves += group_curves.to_dict(orient="records")
    return to_jsonable(
        {
            "title": "Scaling study: simulated pointmass",
            "study": {
                "name": "simulated-pointmass",
                "path": "runs/simulated-pointmass",
                "dataset": "data/pointmass",
                "roboscale_version": "0.1.0",
                "command": "roboscale study report runs/simulated-pointmass",
                "settings": {
                    "budgets": [1e12, 1e16],
                    "bootstrap": BOOTSTRAP,
                    "widths": [32, 64, 128],
                    "tokenizers": ["uniform:256", "continuous"],
                },
            },
            "runs": runs,
            "curves": curves,
            "groups": groups,
            "published": [
                {
                    "source": "Hoffmann et al. 2022",
                    "setting": "language models",
                    "a_low": 0.46,
                    "a_high": 0.50,
                    "note": "N_opt exponent across their three approaches",
                },
                {"source": "Pearce et al. 2024", "setting": "world model", "a_low": 0.49, "a_high": 0.49, "note": ""},
            ],
            "warnings": [
                "bc · continuous: 1 run failed",
                "Budgets span only 4 decades: forecasts are uncertain <check>",
            ],
        }
    )


@pytest.fixture(scope="session")
def analysis(tmp_path_factory) -> dict:
    """The analysis dict, built once per test run (read-only: copy it before changing anything)."""
    return built_once(tmp_path_factory, "report-analysis", lambda folder: build_analysis())


@pytest.fixture(scope="session")
def report_dir(analysis, tmp_path_factory):
    """A folder holding report.html and report.json written from :func:`analysis` (once per test run)."""
    from roboscale.report import write_report

    def build(out):
        write_report(analysis, out)
        return out

    return built_once(tmp_path_factory, "report", build)
