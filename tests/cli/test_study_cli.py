"""`roboscale study`, `runs` and `report` refuse bad input through the real CLI: one line,
exit code 2, before any work, and nothing written or lost."""

import os
import subprocess

import pytest
from tests.helpers import run_cli as roboscale

from roboscale.study import RunStore, study_from_dict
from roboscale.study.store import LadderSize, PlanRecord

TINY = """name = "tiny"
out = "{out}"
[data]
generate = {{ env = "pointmass", episodes = 120, quality = "noise:0.1", seed = 0 }}
[sweep]
tokenizers = ["uniform:32"]
{sweep}
"""


def refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit code 2 and one line on stderr naming every fragment; nothing on stdout."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


def study_file(tmp_path, sweep: str = "budgets = [3e9]", data: str = "") -> tuple:
    out = tmp_path / "tiny"
    text = TINY.format(out=out, sweep=sweep)
    if data:
        text = text.replace("[sweep]", f"{data}\n[sweep]")
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path, out


@pytest.mark.parametrize(
    "sweep, data, fragments",
    [
        ("seeds = [0, 0]", "", ["seeds repeats 0", "planned twice"]),
        ("seeds = [-1]", "", ["seeds has -1", "0 to 2^63 - 1"]),
        ("budgets = [3e9]\nbudget_range = [1e9, 1e10]", "", ["both budgets and budget_range"]),
        ("widths = [64, 100]", "", ["widths", "d_model=100", "heads"]),
        ("", 'path = "somewhere"', ["both path and generate"]),
    ],
)
def test_a_bad_study_file_is_refused_before_any_data_is_made(tmp_path, sweep, data, fragments):
    path, out = study_file(tmp_path, sweep, data)
    refused(roboscale("study", "plan", path), *fragments)
    assert not out.exists()  # no dataset generated, no run store


def test_a_folder_given_as_the_study_file_says_so(tmp_path):
    refused(roboscale("study", "plan", tmp_path), "is a folder, not a study file", "study.toml")


def test_bad_executor_flags_are_blamed_on_the_flag(tmp_path):
    path, out = study_file(tmp_path)
    refused(roboscale("study", "run", path, "--executor", "slurm"), "--executor 'slurm'", "local or ray")
    refused(roboscale("study", "run", path, "--workers", "-1"), "--workers -1")
    assert not out.exists()


@pytest.mark.skipif(os.environ.get("RAY_ADDRESS") is not None, reason="a Ray cluster is configured")
def test_no_ray_cluster_at_the_address_is_one_line(tmp_path):
    pytest.importorskip("ray")
    path, out = study_file(tmp_path)
    refused(roboscale("study", "run", path, "--executor", "ray", "--address", "auto"), "no Ray cluster", "ray start")
    assert not out.exists()


def test_study_init_onto_a_folder_or_an_unwritable_path(tmp_path):
    refused(roboscale("study", "init", tmp_path, "--force"), "is a folder", str(tmp_path / "study.toml"))
    refused(roboscale("study", "init", "/proc/roboscale-study.toml"), "cannot write there")
    written = roboscale("study", "init", tmp_path / "new" / "study.toml")
    assert written.returncode == 0 and (tmp_path / "new" / "study.toml").read_text().startswith("# A roboscale")


def test_a_missing_study_path_says_it_does_not_exist(tmp_path):
    for command in (["runs", "list"], ["report"]):
        refused(roboscale(*command, tmp_path / "nowhere"), "does not exist")
    refused(roboscale("runs", "list", tmp_path), "run the study first")  # a folder without study.db


def test_a_corrupt_run_store_is_one_line(tmp_path):
    (tmp_path / "study.db").write_bytes(bytes(range(256)) * 16)
    refused(roboscale("runs", "list", tmp_path), "study.db is not a readable run store")


@pytest.fixture
def planned_study(tmp_path):
    """A study folder whose run store holds a plan of two runs, one finished."""
    folder = tmp_path / "planned"
    spec = study_from_dict({"name": "planned", "out": str(folder), "data": {"path": "gone"}})
    store = RunStore(folder / "study.db")
    store.set_study({"name": "planned", "spec": spec.to_dict(), "dataset": "gone"})
    rows = [
        {
            "run_id": f"run{i}",
            "task": "bc",
            "tokenizer": "uniform:256",
            "seed": 0,
            "d_model": 16,
            "n_layer": 1,
            "budget": 1e9 * (i + 1),
            "config": {},
        }
        for i in range(2)
    ]
    store.add_planned(rows)
    store.set_plan(PlanRecord("gone", ("run0", "run1"), (LadderSize("bc", "uniform:256", 16, 1, 5000),), "exact"))
    return folder, store


def test_runs_export_refuses_a_path_it_cannot_write_and_leaves_nothing(planned_study, tmp_path):
    folder, _ = planned_study
    refused(roboscale("runs", "export", folder, "--out", "/proc/runs.csv"), "--out /proc/runs.csv", "cannot write")
    refused(roboscale("runs", "export", folder, "--out", tmp_path), "is a folder", "runs.csv")
    refused(
        roboscale("runs", "export", folder, "--format", "parquet", "--out", tmp_path / "x.csv"),
        "--format parquet",
        ".csv",
    )
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.name == "x.csv"]
    # without --format the suffix decides
    assert roboscale("runs", "export", folder, "--out", tmp_path / "x.parquet").returncode == 0
    import pandas as pd

    assert list(pd.read_parquet(tmp_path / "x.parquet")["run_id"]) == ["run0", "run1"]


def test_report_needs_a_finished_run_and_a_valid_bootstrap(planned_study):
    folder, _ = planned_study
    refused(roboscale("report", folder), "no finished run", "run the study first")
    assert "<table>" not in roboscale("report", folder).stderr
    report = folder / "report" / "report.html"
    report.parent.mkdir()
    report.write_text("a good report")
    refused(roboscale("report", folder, "--bootstrap", "-1"), "bootstrap=-1")
    assert report.read_text() == "a good report"  # validated before anything was written


def test_the_study_display_counts_runs_done_running_and_left():
    from types import SimpleNamespace

    from roboscale.cli.study import _StudyDisplay

    spec = study_from_dict({"data": {"path": "x"}, "executor": {"workers": 2}})
    runs = [SimpleNamespace(run_id=f"r{i}", budget=1e9 * (i + 1)) for i in range(4)]
    jobs = [[runs[3]], [runs[2]], [runs[0], runs[1]]]  # the last job trains two seeds together
    with _StudyDisplay(spec) as display:
        progress = display.progress()
        progress.training_started(jobs, 5)
        assert display.bar.tasks[0].total == 1e10
        assert display.bar.tasks[0].fields["runs"] == "runs 5 done, 2 running, 2 left"
        progress.run_done(SimpleNamespace(run_id="r3"), {"finished": 1, "failed": 0})
        task = display.bar.tasks[0]
        assert task.completed == 4e9 and task.fields["flops"] == "4e+09/1e+10 FLOPs"
        assert task.fields["runs"] == "runs 6 done, 3 running, 0 left"  # the stacked job started
        progress.run_done(SimpleNamespace(run_id="r2"), {"finished": 1, "failed": 1})
        assert display.bar.tasks[0].fields["runs"] == "runs 6 done, 1 failed, 2 running, 0 left"
        progress.training_done({"finished": 1, "failed": 1})
        assert display.bar is None  # the bar stops with training, before the fits
        progress.evaluation_started(3)
        progress.run_evaluated(2, 3, "r0")
        assert display.bar.tasks[0].description == "evaluate" and display.bar.tasks[0].completed == 2
    assert display.bar is None
