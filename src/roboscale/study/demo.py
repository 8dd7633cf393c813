"""The built-in study behind `roboscale demo`: small, real, and done in minutes on 2 CPU cores.

Meta-World MT10 demonstrations from the scripted experts (1,200 episodes, about
100k frames, Gaussian action noise of 0.1), a behaviour-cloning and a world-model
IsoFLOP sweep (256 uniform bins, one token per state and action dimension) over
the five smallest ladder widths at three compute budgets, then every fit and the
report.
To scale it up: more episodes, larger budgets and widths, several seeds; see the
README.
"""

from __future__ import annotations

from pathlib import Path

from roboscale.study.spec import StudySpec, study_from_dict

DEMO = {
    "name": "demo",
    "data": {
        "generate": {
            "env": "metaworld",
            "tasks": "mt10",
            "episodes": 1200,
            "quality": "noise:0.1",
            "seed": 0,
            "workers": 2,
        }
    },
    "sweep": {
        "tasks": ["bc", "wm"],
        "tokenizers": ["uniform:256"],
        # CPU-sized models: at these budgets the optimum sits near the bottom of the ladder,
        # at a few hundred tokens per parameter (measured: about 350 at 6e11 FLOPs). The prior
        # below centres four sizes per budget on it: widths 4-24 at the two smaller budgets,
        # 8-32 at the largest, which brackets every minimum.
        "widths": [4, 8, 16, 24, 32],
        "budgets": [1e11, 2.5e11, 6e11],
        "sizes_per_budget": 4,
        "tokens_per_param": 300.0,
        "max_epochs": 12.0,
        "min_steps": 50,
    },
    "train": {"eval_points": 10, "eval_windows": 256, "batch_size": 32},
    "executor": {"workers": 0, "threads": 1},
}


def demo_spec(out: str | Path = "studies/demo") -> StudySpec:
    return study_from_dict({**DEMO, "out": str(out)})


def with_holdout_budget(study: dict) -> dict:
    """``study`` (a study dict) that also trains one budget 10x its largest, kept out of
    every fit to check the forecast (``holdout_budget = true``). Nothing else changes, so
    the fitted runs keep their run ids and a study folder's finished runs are reused."""
    return {**study, "sweep": {**study["sweep"], "holdout_budget": True}}


def demo_check_spec(out: str | Path = "studies/demo") -> StudySpec:
    """The demo's study with its forecast check (`roboscale demo --check`): :data:`DEMO`
    plus the held-out budget, 10x the largest."""
    return study_from_dict(with_holdout_budget({**DEMO, "out": str(out)}))
