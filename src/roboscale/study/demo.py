"""The built-in study behind `roboscale demo`: small, real, and done in minutes on 2 CPU cores.

Meta-World MT10 demonstrations from the scripted experts (1,200 episodes, about
100k frames, Gaussian action noise of 0.1), a behaviour-cloning and a world-model
IsoFLOP sweep (256 uniform bins, one token per state and action dimension) at four
compute budgets over 1.2 decades (2.5e10 to 4e11 FLOPs), four ladder sizes each,
then every fit and the report.

The world model predicts the change of each state bin from the step before
(``wm_target = "delta"``), not the bin itself: with absolute bins its loss falls
through a regime change (the model learns to copy each dimension from 43 tokens
back) between 6e11 and 6e12 FLOPs, and a law fitted below the change missed a 10x
budget by 5x. With deltas the learning curves descend smoothly and the optima sit
at 4k-15k parameters, hence the small widths (3-16) of the ladder; 32 and 48 are
there for a held-out budget 10x the largest (``holdout_budget = true``).
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
        # CPU-sized models: at these budgets the optima sit at 4k-15k parameters (widths 4-12),
        # at a few hundred tokens per parameter. The prior below centres four sizes per budget
        # on them (widths 3-8 at 2.5e10 FLOPs, 6-16 at 4e11); 24-48 serve a held-out 10x budget.
        "widths": [3, 4, 6, 8, 12, 16, 24, 32, 48],
        "budgets": [2.5e10, 6e10, 1.5e11, 4e11],
        "sizes_per_budget": 4,
        "tokens_per_param": 400.0,
        "max_epochs": 12.0,
        "min_steps": 30,
    },
    "train": {"eval_points": 10, "eval_windows": 256, "batch_size": 32, "wm_target": "delta"},
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
