"""One study pipeline: `run_study` reports its progress through callbacks, stores what a
report needs in study.db, and `roboscale report` works from study.db alone."""

import dataclasses
import json
import shutil
import subprocess
import sys

import pytest

from roboscale.data import open_dataset
from roboscale.errors import BadInputError
from roboscale.study import RunStore, StudyProgress, load_study, run_study, study_from_dict
from roboscale.study.data_levels import GENERATE_KEYS
from roboscale.study.run import ensure_dataset, generation_spec
from roboscale.train import ladder_shape

STUDY = """name = "pipeline"
out = "{out}"
[data]
generate = {{ env = "pointmass", episodes = 120, quality = "noise:0.1", seed = 0 }}
[sweep]
tokenizers = ["uniform:32"]
widths = [8, 16, 24]
budgets = [3e9]
sizes_per_budget = 3
max_epochs = 100.0
min_steps = 10
[train]
eval_points = 6
eval_windows = 128
batch_size = 32
[executor]
workers = 2
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A three-run study run once in this process, with every progress callback recorded."""
    folder = tmp_path_factory.mktemp("pipeline")
    path = folder / "study.toml"
    path.write_text(STUDY.format(out=folder / "study"))
    events: dict[str, list] = {
        "data": [],
        "training_started": [],
        "run_done": [],
        "training_done": [],
        "evaluation_started": [],
    }
    progress = StudyProgress(
        data=lambda *args: events["data"].append(args),
        training_started=lambda jobs, done: events["training_started"].append((jobs, done)),
        run_done=lambda outcome, counts: events["run_done"].append((outcome.run_id, dict(counts))),
        training_done=lambda counts: events["training_done"].append(dict(counts)),
        evaluation_started=lambda total: events["evaluation_started"].append(total),
    )
    spec = load_study(path)
    return path, spec, run_study(spec, progress=progress, bootstrap=0), events


def test_run_study_reports_data_training_and_each_run(study):
    _, _, result, events = study
    planned = {run.run_id for run in result.plan.active}
    assert len(planned) == 3 and result.counts == {"finished": 3, "failed": 0}
    assert events["data"] and events["data"][-1][0] == 120  # every episode generated
    ((jobs, done_before),) = events["training_started"]
    assert done_before == 0 and {run.run_id for job in jobs for run in job} == planned
    assert [run_id for run_id, _ in events["run_done"]] and {r for r, _ in events["run_done"]} == planned
    assert [counts["finished"] for _, counts in events["run_done"]] == [1, 2, 3]
    assert events["training_done"] == [{"finished": 3, "failed": 0}]
    assert events["evaluation_started"] == []  # [evaluate] policies = none
    assert result.report is not None and result.report.exists()


def test_the_run_store_keeps_the_plan_a_report_needs(study):
    _, spec, result, _ = study
    recorded = RunStore(spec.folder() / "study.db").plan()
    assert set(recorded.planned) == {run.run_id for run in result.plan.active}
    assert recorded.sizes() == result.plan.ladder
    assert recorded.n_layers() == {width: ladder_shape(width)[0] for width in (8, 16, 24)}
    assert recorded.flops_convention == "exact" and recorded.dataset == result.plan.dataset
    for run in result.plan.active:  # the planned size of every run is the ladder's
        assert recorded.sizes()[("bc", "uniform:32")][run.d_model] == run.N


def test_report_needs_only_study_db(study, tmp_path):
    _, spec, result, _ = study
    shutil.copy(spec.folder() / "study.db", tmp_path / "study.db")
    data = spec.folder() / "data"
    data.rename(spec.folder() / "data-away")  # no dataset, no runs folder beside the copy
    try:
        made = subprocess.run(
            [sys.executable, "-m", "roboscale", "report", str(tmp_path), "--bootstrap", "0"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        (spec.folder() / "data-away").rename(data)
    assert made.returncode == 0, made.stderr
    assert f"report: {tmp_path / 'report' / 'report.html'}" in made.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["runs"] == result.analysis["runs"] and report["groups"] == result.analysis["groups"]
    assert report["warnings"] == result.analysis["warnings"]


def test_a_second_run_has_nothing_to_train(study):
    _, spec, result, _ = study
    started = []
    again = run_study(
        spec, progress=StudyProgress(training_started=lambda jobs, done: started.append((jobs, done))), bootstrap=0
    )
    assert again.counts == {"finished": 0, "failed": 0} and started == [([], 3)]
    assert again.analysis["groups"] == result.analysis["groups"]


def test_generate_keys_are_the_generation_spec_fields():
    assert {"stop_on_success", "file_size_mb", "transitions", "episodes", "workers"} <= GENERATE_KEYS


def test_a_study_can_generate_a_number_of_transitions(tmp_path):
    raw = {
        "name": "by-transitions",
        "out": str(tmp_path / "study"),
        "data": {"generate": {"env": "pointmass", "transitions": 600, "seed": 0, "stop_on_success": False}},
    }
    spec = study_from_dict(raw)
    generation, workers = generation_spec(spec)
    assert generation.episodes is None and generation.transitions == 600 and workers == 1
    assert generation.stop_on_success is False
    dataset = open_dataset(ensure_dataset(spec))
    assert dataset.total_frames >= 600
    both = dataclasses.replace(spec, data=dataclasses.replace(spec.data, generate={"transitions": 6, "episodes": 5}))
    with pytest.raises(BadInputError, match="both episodes and transitions"):
        generation_spec(both)


@pytest.mark.parametrize("widths", [[64, 100], [16, 24, 98]])
def test_every_width_is_checked_at_load(widths):
    with pytest.raises(BadInputError, match=f"widths: d_model={widths[-1]} does not divide"):
        study_from_dict({"data": {"path": "x"}, "sweep": {"widths": widths}})


def test_the_default_budgets_are_unchanged_and_either_form_is_refused_together():
    spec = study_from_dict({"data": {"path": "x"}})
    assert spec.budgets() == pytest.approx([1e11, 10**11.5, 1e12])
    with pytest.raises(BadInputError, match="both budgets and budget_range"):
        study_from_dict({"data": {"path": "x"}, "sweep": {"budgets": [1e11], "budget_range": [1e10, 1e12]}})
    # a stored spec (budget_range left empty) loads again: report rebuilds it from study.db
    given = study_from_dict({"data": {"path": "x"}, "sweep": {"budgets": [1e11, 1e12]}})
    assert study_from_dict(given.to_dict()).budgets() == [1e11, 1e12]
