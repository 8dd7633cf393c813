"""The same study on a (local) Ray instance: same runs, same results as local workers."""

import dataclasses

import pytest

from roboscale.study import run_study

ray = pytest.importorskip("ray")


def test_ray_executor_matches_local_workers(make_study):
    local = run_study(make_study("local", budgets=[3e9, 6e9]), bootstrap=0, write=False)
    spec = make_study("ray", budgets=[3e9, 6e9])
    on_ray = dataclasses.replace(spec, executor=dataclasses.replace(spec.executor, kind="ray", workers=2))
    remote = run_study(on_ray, bootstrap=0, write=False)
    assert remote.counts["finished"] == local.counts["finished"] == len(local.plan.active)
    by_id = {run["run_id"]: run["loss"] for run in local.analysis["runs"]}
    assert {run["run_id"]: run["loss"] for run in remote.analysis["runs"]} == by_id
    assert not ray.is_initialized()  # the executor shut down the instance it started
