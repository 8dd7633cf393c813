"""Killing a study at random moments loses nothing and changes nothing."""

import os
import random
import signal
import time

import pytest
from tests.helpers import SEEDED_CHANGES, start_cli

from roboscale.study import RunStore, load_study


def study_run(path):
    return start_cli("study", "run", path, "--bootstrap", "0")


def finished_losses(folder):
    runs = RunStore(folder / "study.db").runs()
    return runs, dict(zip(runs["run_id"], runs["loss"]))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_restart_gives_the_uninterrupted_result(tiny_study_toml, seeded_study):
    # Two seeds per run: the runs train as stacked jobs, which must resume in lockstep.
    # The two smaller budgets (12 runs in 6 jobs) leave the kills enough to interrupt.
    # The reference is the same study run once without interruption (the session's seeded_study).
    victim = tiny_study_toml("victim", **SEEDED_CHANGES)
    moments = random.Random(7)
    for _ in range(3):
        process = study_run(victim)
        time.sleep(moments.uniform(3.0, 10.0))
        os.killpg(process.pid, signal.SIGKILL)  # the study and its workers, mid-flight
        process.wait()
    finish = study_run(victim)
    assert finish.wait(timeout=600) == 0, finish.stderr.read()

    expected_runs, expected = finished_losses(seeded_study.folder)
    runs, losses = finished_losses(load_study(victim).folder())
    assert len(runs) == len(expected_runs) == runs["run_id"].nunique() == 12  # every run recorded exactly once
    assert set(runs["status"]) == {"finished"}
    assert losses == expected  # bit for bit: resumed runs end where uninterrupted ones do
    assert runs["attempts"].max() >= 1


@pytest.mark.parametrize(
    "content, message",
    [
        ('name = "x"\n[data]\npath = "d"\n[sweep]\nwidths = []\n', "widths (the model ladder) is empty"),
        ('name = "x"\n[data]\npath = "d"\n[sweep]\nbatch = 4\n', "unknown key 'batch' in [sweep]"),
        ('name = "x"\n[data]\npath = "d"\n[train]\nbatch_size = "big"\n', "[train] batch_size must be a int"),
    ],
)
def test_malformed_study_file_exits_2_before_anything_runs(run_cli, tmp_path, content, message):
    path = tmp_path / "study.toml"
    path.write_text(content)
    result = run_cli("study", "run", path, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "studies").exists()


def test_budget_too_small_for_one_step_is_refused(run_cli, tiny_study_toml):
    path = tiny_study_toml("small", budgets=[1e5, 2e5, 4e5], min_steps=1)
    result = run_cli("study", "run", path)
    assert result.returncode == 2
    assert "no run is left in the plan" in result.stderr and "too few steps (0" in result.stderr
