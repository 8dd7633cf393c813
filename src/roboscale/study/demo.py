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
