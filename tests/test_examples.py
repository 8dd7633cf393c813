"""Every study in examples/ keeps the promise of its header comment.

The pointmass examples run end to end (marked slow: they train): the quick study as it
is, the success study at a reduced size, with episodes, budgets and min_steps divided by
the same factor, so every run repeats the data as often as in the full study and the
same sizes are trained or left out (same tasks, tokenizers, widths, number of budgets
and sizes, seeds). Their headline must exist in report.json: the IsoFLOP fit (a fit, not
the reason it could not be made) with every budget's profile usable or, for the success
study, the success analysis (loss against closed-loop success). Examples that need a GPU-sized dataset or the user's own
data are planned instead.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from roboscale.study import ensure_dataset, load_study, plan_study, run_study, study_from_dict

EXAMPLES = Path(__file__).parents[1] / "examples"
FIXTURES = Path(__file__).parent / "fixtures"

SHRINK = {"pointmass-quick.toml": 1.0}
"""Examples run in the test, by the factor their episodes, budgets and min_steps are divided by.
The quick study runs at full size (about a minute): its profiles' minima are about
0.01 nat deep, and a smaller copy would test another study."""

PLANNED_ONLY = {"demo.toml", "lerobot-import.toml", "mt50-tokenizers-gpu.toml", "pointmass-success.toml"}
PLANNED_ONLY |= {"data-axes.toml", "sim-and-real.toml", "image-tokens.toml"}
"""Examples too big for CI or needing the user's data (demo.toml: see tests/study/test_examples.py).
The data-axes examples (15 and 7.5 minutes, Meta-World) are validated by tests/study/test_examples.py;
tests/study/test_data_axes.py runs a pointmass data-axes study with amount and mixture axes end to end.
image-tokens.toml (30 minutes; its VQ-VAEs alone train a minute) is validated by
tests/study/test_examples.py, and tests/study/test_image_study.py runs a small image study end to end.
pointmass-success.toml (6 minutes) took 133 s even at 1/16 of its size; its pipeline, closed-loop
evaluation of every policy and the success analysis, is run at a tiny size by tests/study/test_study.py."""


def test_every_example_is_covered():
    assert {path.name for path in EXAMPLES.glob("*.toml")} == set(SHRINK) | PLANNED_ONLY


def shrunk_study(name: str, factor: float, out: Path) -> dict:
    """The example ``name`` as a plain dict, ``factor`` times smaller, writing into ``out``.

    Passes over the data (tokens / frames) and optimiser steps relative to ``min_steps``
    are unchanged, so the plan keeps the full study's shape; closed-loop evaluation
    uses 2 episodes per task."""
    raw = tomllib.loads((EXAMPLES / name).read_text())
    generate = raw["data"]["generate"]
    generate["episodes"] = max(8, round(generate["episodes"] / factor))
    sweep = raw["sweep"]
    sweep["budgets"] = [budget / factor for budget in sweep["budgets"]]
    sweep["min_steps"] = max(1, round(sweep.get("min_steps", 50) / factor))
    if factor != 1:
        raw["executor"] = {"workers": 1, "threads": 1}
    if "evaluate" in raw:
        raw["evaluate"].update(episodes=2, workers=1)
    raw["out"] = str(out)
    return raw


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHRINK))
def test_pointmass_example_headline_fit_exists(name, tmp_path):
    raw = shrunk_study(name, SHRINK[name], tmp_path / "study")
    full = tomllib.loads((EXAMPLES / name).read_text())["sweep"]
    assert len(raw["sweep"]["budgets"]) == len(full["budgets"])
    result = run_study(study_from_dict(raw, source=str(EXAMPLES / name)), bootstrap=100)
    report = json.loads((result.folder / "report" / "report.json").read_text())
    (group,) = report["groups"]
    if raw.get("evaluate", {}).get("policies", "none") != "none":
        # The success study's headline is whether lower loss means a better robot.
        success = group["success"]
        assert "error" not in success, success.get("error")
        return
    isoflop = group["isoflop"]
    assert "error" not in isoflop, isoflop.get("error")
    assert isoflop["n_usable_budgets"] == len(full["budgets"])
    assert isoflop["a"] > 0  # the optimum grows with compute


def test_lerobot_example_plans_on_imported_data(tmp_path, run_cli):
    """The header's import command, with the bundled LeRobot v3 sample as the user's data,
    then the study's plan on it (every run planned; the 4-episode sample is far too small
    to feed any of them, so each is left out for its data, visibly)."""
    shutil.copy(EXAMPLES / "lerobot-import.toml", tmp_path)
    imported = run_cli(
        "data", "import", "lerobot", FIXTURES / "lerobot_v3_sample", "--out", "data/my-robot", cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    spec = load_study(tmp_path / "lerobot-import.toml")
    runs = plan_study(spec, ensure_dataset(spec)).runs
    sweep = spec.sweep
    assert len(runs) == len(sweep.tasks) * len(sweep.tokenizers) * sweep.budget_count * sweep.sizes_per_budget
    assert all(run.skip.startswith("needs") for run in runs)


def test_gpu_example_plans(tmp_path, tiny_study_data):
    """The MT50 study plans every run it promises. Planned on the tests' shared pointmass
    dataset (generating 20,000 MT50 episodes is the study's own first hour): the design
    (tasks x tokenizers x budgets and the held-out one x sizes x seeds) does not depend on
    the data, only which runs the data can feed."""
    spec = replace(load_study(EXAMPLES / "mt50-tokenizers-gpu.toml"), out=str(tmp_path / "mt50"))
    plan = plan_study(spec, str(tiny_study_data))
    sweep = spec.sweep
    levels = sweep.budget_count + sweep.holdout_budget
    per_level = len(sweep.tasks) * len(sweep.tokenizers) * sweep.sizes_per_budget * len(sweep.seeds)
    assert len(plan.runs) == levels * per_level
    assert sum(run.holdout for run in plan.runs) == per_level
    assert {run.budget for run in plan.runs if run.holdout} == {10 * spec.budgets()[-1]}
    assert spec.executor.kind == "ray" and spec.evaluate.policies == "optimal"


def test_success_example_plans_and_evaluates_every_policy(tmp_path, tiny_study_data):
    """The success study (6 minutes, too long for CI) plans its runs and rolls out every bc policy:
    its design, planned on the tests' shared pointmass dataset."""
    spec = replace(load_study(EXAMPLES / "pointmass-success.toml"), out=str(tmp_path / "success"))
    plan = plan_study(spec, str(tiny_study_data))
    sweep = spec.sweep
    assert sweep.tasks == ["bc"] and spec.evaluate.policies == "all"
    assert len(plan.runs) == len(sweep.tokenizers) * sweep.budget_count * sweep.sizes_per_budget * len(sweep.seeds)
