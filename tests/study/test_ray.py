"""The same study on a (local) Ray instance: same runs, same results as local workers."""

import dataclasses

import pytest
from tests.helpers import TINY_BUDGETS

from roboscale.study import run_study

ray = pytest.importorskip("ray")


def test_ray_executor_matches_local_workers(make_study, tiny_study):
    # The tiny study trained these runs on local workers; its two smaller budgets on Ray
    # must give the same runs (same ids) with the same losses, bit for bit.
    spec = make_study("ray", budgets=TINY_BUDGETS[:2])
    on_ray = dataclasses.replace(spec, executor=dataclasses.replace(spec.executor, kind="ray", workers=2))
    remote = run_study(on_ray, bootstrap=0, write=False)
    assert remote.counts["finished"] == len(remote.plan.active) == 6
    local = {run["run_id"]: run["loss"] for run in tiny_study.analysis["runs"]}
    on_remote = {run["run_id"]: run["loss"] for run in remote.analysis["runs"]}
    assert len(on_remote) == 6 and set(on_remote) <= set(local)
    assert on_remote == {run_id: local[run_id] for run_id in on_remote}
    assert not ray.is_initialized()  # the executor shut down the instance it started
