"""A tiny real study end to end: plan, local workers, store, skip on re-run, a failed run, fits."""

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from tests.helpers import TINY_BUDGETS

from roboscale.fit import isoflop_profiles, load_runs
from roboscale.study import prepare_study, run_study
from roboscale.study.execute import execute
from roboscale.study.plan import run_id_for
from roboscale.study.run import analyze_study
from roboscale.train.config import OMITTED_AT_DEFAULT


def test_plan_makes_data_limits_visible(make_study):
    spec = make_study(
        widths=[8, 16, 24, 32], budgets=[3e9, 6e9, 1.2e10], sizes_per_budget=4, max_epochs=5.0, min_steps=30
    )
    plan, _ = prepare_study(spec)
    assert any(run.skip.startswith("needs") for run in plan.runs)
    assert any(run.skip.startswith("too few steps") for run in plan.runs)
    assert any("max_epochs" in warning for warning in plan.warnings)
    for run in plan.active:
        assert run.steps >= 30 and run.epochs <= 5.0


@pytest.mark.slow
def test_a_study_runs_records_fits_and_skips_finished_runs(tiny_study, copy_tiny_study):
    result = tiny_study  # run once per session by run_study, at 100 bootstrap resamples
    planned = len(result.plan.active)
    assert planned == 9 and result.counts == {"finished": 9, "failed": 0}
    runs = result.analysis["runs"]
    assert {r["status"] for r in runs} == {"finished"} and len({r["run_id"] for r in runs}) == 9
    for run in runs:  # every record is a costed data point
        assert run["C"] <= run["budget"] and run["C"] > 0.5 * run["budget"]
        assert np.isfinite(run["loss"])
    (group,) = result.analysis["groups"]
    assert group["label"] == "bc · uniform:32"
    # At these budgets the smallest model has the lowest loss at every budget: no IsoFLOP
    # minimum is bracketed and one size holds the frontier, and both fits say exactly that;
    # the parametric law still fits, and forecasts the held-out largest budget within 5%.
    assert "single model size" in group["frontier"]["error"]
    assert "minimum is not bracketed" in group["isoflop"]["error"]
    assert all(np.isfinite(group["parametric"][key]) for key in ("E", "A", "B", "alpha", "beta"))
    audit = group["audit"]["parametric"]
    assert audit["n_test"] == 3 and 0 < audit["mean_abs_relative_error"] < 0.05
    assert set(group["audit"]) == {"isoflop", "parametric"}
    again = dataclasses.replace(result.plan.spec, out=str(copy_tiny_study("again")))
    plan, store = prepare_study(again)
    counts = execute(plan.active, store, again.folder() / "runs", again.executor)
    assert counts == {"finished": 0, "failed": 0}  # nothing left to train
    assert dict(zip(store.runs()["run_id"], store.runs()["loss"])) == {r["run_id"]: r["loss"] for r in runs}


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_study_goes_on(make_study):
    spec = make_study(budgets=TINY_BUDGETS[:1])
    plan, store = prepare_study(spec)
    broken, healthy = plan.active[:2]
    diverging = dataclasses.replace(broken, config=dataclasses.replace(broken.config, lr=1e6))
    counts = execute([diverging, healthy], store, spec.folder() / "runs", spec.executor)
    assert counts == {"finished": 1, "failed": 1}
    table = store.runs().set_index("run_id")
    assert table.loc[broken.run_id, "status"] == "failed"
    assert "training loss became nan" in table.loc[broken.run_id, "error"].lower()
    assert table.loc[healthy.run_id, "status"] == "finished" and table.loc[healthy.run_id, "loss"] > 0
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


@pytest.mark.slow
def test_seeds_train_as_one_stacked_job_and_enter_the_fit_as_means(seeded_study, tiny_study):
    result = seeded_study  # two seeds at two budgets, run once per session (its SIGKILL test's reference too)
    assert result.counts == {"finished": 12, "failed": 0}
    store = result.plan.spec.folder() / "runs"
    records = {run.run_id: json.loads((store / run.run_id / "record.json").read_text()) for run in result.plan.active}
    assert {r["stack"]["models"] for r in records.values()} == {2}  # two seeds, one computation
    # a stacked run ends where the same run trained alone (the tiny study's seed 0) ends
    alone = {run["run_id"]: run["loss"] for run in tiny_study.analysis["runs"]}
    seed_zero = [run for run in result.plan.active if run.seed == 0]
    assert len(seed_zero) == 6 and {run.run_id for run in seed_zero} <= set(alone)
    for run in seed_zero:
        stacked = records[run.run_id]["final"]["val_loss"]
        assert abs(alone[run.run_id] - stacked) < 1e-6 * alone[run.run_id]
    runs = pd.DataFrame(result.analysis["runs"])[["N", "D", "C", "loss", "budget"]]
    profiles = isoflop_profiles(load_runs(runs), budget="budget", bootstrap=50)
    assert len(profiles) == 2 and all(p.seeds == 2 and len(p.points) == 3 for p in profiles)
    for profile in profiles:  # each size enters as the mean of its two seeds
        for N, mean, _, count in profile.points:
            members = runs[np.isclose(runs.budget, profile.C) & np.isclose(runs.N, N)].loss
            assert count == 2 and len(members) == 2 and abs(mean - members.mean()) < 1e-12


@pytest.mark.slow
def test_a_study_evaluates_its_policies_in_closed_loop_and_reports_success(tiny_study, copy_tiny_study):
    from roboscale.report import write_report
    from roboscale.study import RunStore

    spec = tiny_study.plan.spec  # its 9 runs are trained already: this study only evaluates
    spec = dataclasses.replace(
        spec,
        out=str(copy_tiny_study("evaluated")),
        evaluate=dataclasses.replace(spec.evaluate, policies="optimal", episodes=8, envs=16, workers=1),
    )
    result = run_study(spec, bootstrap=50, write=False)
    assert result.counts == {"finished": 0, "failed": 0}
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


@pytest.mark.slow
def test_a_study_flags_world_models_worse_than_predicting_no_change(make_study):
    from roboscale.report import write_report
    from roboscale.study import RunStore

    spec = make_study("wm-open-loop", tasks=["wm"], widths=[8, 16], budgets=TINY_BUDGETS[:1], sizes_per_budget=2)
    spec = dataclasses.replace(
        spec,
        evaluate=dataclasses.replace(spec.evaluate, world_models="all"),
        executor=dataclasses.replace(spec.executor, workers=1),
    )
    result = run_study(spec, bootstrap=0, write=False)
    assert result.counts == {"finished": 2, "failed": 0}
    stored = RunStore(spec.folder() / "study.db").open_loop()
    assert set(stored) == {run.run_id for run in result.plan.active}
    (group,) = result.analysis["groups"]
    section = group["open_loop"]
    losing = sorted(run_id for run_id, result in stored.items() if result["worse_than_persistence_at"])
    # At 2e9 FLOPs these models are barely trained: one step ahead they are worse than "nothing moves".
    assert all(1 in stored[run_id]["worse_than_persistence_at"] for run_id in stored)
    assert section["evaluated"] == 2 and section["worse"] == len(losing) == 2
    assert section["warning"] in result.analysis["warnings"]
    assert section["warning"].startswith("wm · uniform:32: 2 of 2 world model(s) evaluated open-loop are worse")
    page = write_report(result.analysis, spec.folder() / "report").read_text()
    assert "2 of 2 world model(s) evaluated open-loop are worse than predicting that nothing moves." in page
    for run_id in losing:
        assert f"{run_id} (d_model" in page
    before = _open_loop_times(spec.folder() / "study.db")
    run_study(spec, bootstrap=0, write=False)  # evaluated runs are not evaluated again
    assert _open_loop_times(spec.folder() / "study.db") == before


def _open_loop_times(path) -> dict[str, float]:
    import sqlite3

    with sqlite3.connect(path) as connection:
        return dict(connection.execute("SELECT run_id, updated FROM open_loop").fetchall())


def test_a_study_carries_its_world_model_target_into_its_runs_and_their_ids(make_study):
    default, _ = prepare_study(make_study("default", tasks=["wm"]))
    spec = make_study("delta", tasks=["wm"])
    delta, _ = prepare_study(dataclasses.replace(spec, train=dataclasses.replace(spec.train, wm_target="delta")))
    assert {run.config.wm_target for run in default.runs} == {"absolute"}
    assert {run.config.wm_target for run in delta.runs} == {"delta"}
    assert len(delta.runs) == len(default.runs)
    default_ids = {run.run_id for run in default.runs}
    assert not default_ids & {run.run_id for run in delta.runs}
    # The default leaves run ids as they were before wm_target existed: the hash of the other settings.
    config = default.runs[0].config
    settings = {**dataclasses.asdict(config), "data": "fingerprint"}
    for name in OMITTED_AT_DEFAULT:  # wm_target and the muP settings, added after run ids existed
        del settings[name]
    before = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    assert run_id_for(config, "fingerprint") == before
    assert run_id_for(dataclasses.replace(config, wm_target="delta"), "fingerprint") != before
