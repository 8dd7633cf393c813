"""A tiny real study end to end: plan, local workers, store, skip on re-run, a failed run, fits."""

import dataclasses
import json

import numpy as np
import pandas as pd

from roboscale.fit import isoflop_profiles, load_runs
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
    # Tiny noisy runs may not pin every law down; each fit gives numbers or says why not,
    # and at least one of them gives numbers.
    assert ("a" in group["frontier"]) or "single model size" in group["frontier"]["error"]
    assert ("alpha" in group["parametric"]) or ("did not converge" in group["parametric"]["error"])
    assert ("a" in group["isoflop"]) or group["isoflop"]["error"]
    assert any(key in group[fit] for fit, key in (("frontier", "a"), ("parametric", "alpha"), ("isoflop", "a")))
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


def test_the_recommendation_skips_a_law_without_an_optimum():
    from roboscale.fit import fit_parametric
    from roboscale.fit.simulate import simulate_isoflop_runs
    from roboscale.study.analyze import _recommend

    table = simulate_isoflop_runs(
        1.7, 400.0, 410.0, 0.34, 0.28, budgets=[1e17, 1e18, 1e19], model_sizes=np.geomspace(1e7, 1e10, 8), noise=0.0
    )
    fit = fit_parametric(table, bootstrap=0)
    sizes = {16: 20_000, 32: 80_000, 64: 300_000}
    good = _recommend({"parametric": fit}, largest=1e18, sizes=sizes)
    assert good["method"] == "parametric" and good["N"] > 0
    rising = dataclasses.replace(fit, alpha=-0.2)  # loss grows with size: no compute-optimal model
    assert _recommend({"parametric": rising}, largest=1e18, sizes=sizes) is None


def test_seeds_train_as_one_stacked_job_and_enter_the_fit_as_means(make_study, tmp_path):
    from roboscale.train import TrainConfig, train

    spec = make_study(name="seeds", seeds=[0, 1, 2])
    result = run_study(spec, bootstrap=50, write=False)
    assert result.counts == {"finished": 27, "failed": 0}
    store = result.plan.spec.folder() / "runs"
    records = {run.run_id: json.loads((store / run.run_id / "record.json").read_text()) for run in result.plan.active}
    assert {r["stack"]["models"] for r in records.values()} == {3}  # three seeds, one computation
    # a stacked run ends where the same run trained alone ends
    one = result.plan.active[0]
    alone = train(TrainConfig.from_dict(one.config.to_dict()), tmp_path / "alone")
    assert (
        abs(alone["final"]["val_loss"] - records[one.run_id]["final"]["val_loss"]) < 1e-6 * alone["final"]["val_loss"]
    )
    runs = pd.DataFrame(result.analysis["runs"])[["N", "D", "C", "loss", "budget"]]
    profiles = isoflop_profiles(load_runs(runs), budget="budget", bootstrap=50)
    assert len(profiles) == 3 and all(p.seeds == 3 and len(p.points) == 3 for p in profiles)
    for profile in profiles:  # each size enters as the mean of its three seeds
        for N, mean, _, count in profile.points:
            members = runs[np.isclose(runs.budget, profile.C) & np.isclose(runs.N, N)].loss
            assert count == 3 and abs(mean - members.mean()) < 1e-12


def test_a_study_evaluates_its_policies_in_closed_loop_and_reports_success(make_study):
    from roboscale.report import write_report
    from roboscale.study import RunStore

    spec = make_study(name="evaluated")
    spec = dataclasses.replace(
        spec, evaluate=dataclasses.replace(spec.evaluate, policies="optimal", episodes=8, envs=16, workers=1)
    )
    result = run_study(spec, bootstrap=50, write=False)
    store = RunStore(spec.folder() / "study.db")
    evaluations = store.evaluations()
    runs = store.runs().set_index("run_id")
    assert len(evaluations) == 3 and set(evaluations["episodes"]) == {16}  # 8 per task, reach and push
    for row in evaluations.itertuples():  # the lowest-loss run of each budget was evaluated
        budget = runs.loc[row.run_id, "budget"]
        assert runs.loc[row.run_id, "loss"] == runs[runs["budget"] == budget]["loss"].min()
        assert row.ci_low <= row.success <= row.ci_high and row.ci_high > 0
    (group,) = result.analysis["groups"]
    success = group["success"]
    assert len(success["runs"]) == 3 and len(success["best_per_budget"]) == 3
    for part in ("correlation", "failure_law", "intrinsic"):  # numbers, or why not
        assert success[part].get("error") or len(success[part]) > 1
    page = write_report(result.analysis, spec.folder() / "report").read_text()
    for kind in ("success-compute", "success-loss", "intrinsic"):
        assert f'id="fig-{kind}-bc-uniform32"' in page
    again = run_study(spec, bootstrap=0, write=False)  # evaluated runs are not rolled out again
    assert len(RunStore(spec.folder() / "study.db").evaluations()) == 3
    assert again.counts == {"finished": 0, "failed": 0}
