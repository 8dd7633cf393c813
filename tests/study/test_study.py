"""A tiny real study end to end: plan, local workers, store, skip on re-run, a failed run, fits."""

import dataclasses

import numpy as np

from roboscale.study import prepare_study, run_study
from roboscale.study.execute import execute
from roboscale.study.run import analyze_study


def test_plan_makes_data_limits_visible(make_study):
    plan, _ = prepare_study(make_study(widths=[8, 16, 24, 32], sizes_per_budget=4, max_epochs=5.0, min_steps=30))
    assert any(run.skip.startswith("needs") for run in plan.runs)
    assert any(run.skip.startswith("too few steps") for run in plan.runs)
    assert any("max_epochs" in warning for warning in plan.warnings)
    for run in plan.active:
        assert run.steps >= 30 and run.epochs <= 5.0


def test_a_study_runs_records_fits_and_skips_finished_runs(make_study):
    spec = make_study()
    result = run_study(spec, bootstrap=100, write=False)
    planned = len(result.plan.active)
    assert planned == 9 and result.counts == {"finished": 9, "failed": 0}
    runs = result.analysis["runs"]
    assert {r["status"] for r in runs} == {"finished"} and len({r["run_id"] for r in runs}) == 9
    for run in runs:  # every record is a costed data point
        assert run["C"] <= run["budget"] and run["C"] > 0.5 * run["budget"]
        assert np.isfinite(run["loss"])
    (group,) = result.analysis["groups"]
    assert group["label"] == "bc · uniform:32"
    # Tiny noisy runs may not pin every law down; each fit gives numbers or says why not.
    assert "a" in group["frontier"]
    assert ("alpha" in group["parametric"]) or ("did not converge" in group["parametric"]["error"])
    assert ("a" in group["isoflop"]) or group["isoflop"]["error"]
    assert set(group["audit"]) == {"isoflop", "parametric"}
    again = run_study(spec, bootstrap=0, write=False)  # nothing left to train
    assert again.counts == {"finished": 0, "failed": 0}


def test_a_failing_run_is_recorded_and_the_study_goes_on(make_study):
    spec = make_study(budgets=[3e9])
    plan, store = prepare_study(spec)
    broken = plan.active[0]
    diverging = dataclasses.replace(broken, config=dataclasses.replace(broken.config, lr=1e6))
    runs = [diverging, *plan.active[1:]]
    counts = execute(runs, store, spec.folder() / "runs", spec.executor)
    assert counts == {"finished": len(runs) - 1, "failed": 1}
    table = store.runs().set_index("run_id")
    assert table.loc[broken.run_id, "status"] == "failed"
    assert "training loss became nan" in table.loc[broken.run_id, "error"].lower()
    analysis = analyze_study(spec, plan, store, bootstrap=0)
    failed = [r for r in analysis["runs"] if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"]
