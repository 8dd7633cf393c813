"""The study commands through the real CLI, on the session's tiny pointmass study (9 runs):
`study init`, `study plan`, `runs list`, `runs export`, `report` and `demo --help`."""

import json
import re

import pandas as pd
import pytest
from tests.helpers import TINY_BUDGETS, seed_dataset, study_toml, tiny_study_dict

from roboscale.study import load_study

BUDGETS = TINY_BUDGETS


def test_demo_help_names_its_options(run_cli):
    result = run_cli("demo", "--help")
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout and "--workers" in result.stdout and "studies/demo" in result.stdout


def test_study_init_writes_a_study_file_that_loads(run_cli, tmp_path):
    file = tmp_path / "new" / "study.toml"
    result = run_cli("study", "init", file)
    assert result.returncode == 0, result.stderr
    spec = load_study(file)
    assert spec.name == "my-study" and spec.folder() == tmp_path / "new" / "studies" / "my-study"
    file.write_text("# edited\n")
    again = run_cli("study", "init", file)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert file.read_text() == "# edited\n"  # the user's edits survive


def test_study_plan_prints_every_run_and_the_total(run_cli, tmp_path, tiny_study_data):
    file = tmp_path / "tiny.toml"
    file.write_text(study_toml(tiny_study_dict(tmp_path / "tiny")))
    seed_dataset(tiny_study_data, tmp_path / "tiny")
    result = run_cli("study", "plan", file, "--workers", "2")
    assert result.returncode == 0, result.stderr
    summary = re.search(r"(\d+) runs \((\d+) left out\), total ([0-9.e+]+) FLOPs", result.stdout)
    assert summary, result.stdout
    active, total = int(summary[1]), float(summary[3])
    assert active == 3 * len(BUDGETS)
    assert 0.5 * 3 * sum(BUDGETS) < total <= 3 * sum(BUDGETS)  # each run spends at most its budget
    assert "estimated wall time" in result.stdout and "2 worker(s)" in result.stdout
    assert not (tmp_path / "tiny" / "runs").exists()  # planning trains nothing


@pytest.mark.slow  # needs the session's tiny study (9 trained runs)
def test_runs_list_shows_every_finished_run(run_cli, tiny_study):
    as_json = run_cli("runs", "list", tiny_study.folder, "--json")
    assert as_json.returncode == 0, as_json.stderr
    runs = json.loads(as_json.stdout)
    assert len(runs) == 9 and len({run["run_id"] for run in runs}) == 9
    assert all(run["status"] == "finished" and run["loss"] > 0 for run in runs)
    table = run_cli("runs", "list", tiny_study.folder.parent / "tiny.toml")  # the study file works too
    assert table.returncode == 0, table.stderr
    assert "9 finished" in table.stdout
    assert all(run["run_id"] in table.stdout for run in runs)


@pytest.mark.slow  # needs the session's tiny study (9 trained runs)
def test_runs_export_writes_one_costed_row_per_run(run_cli, tiny_study, tmp_path):
    out = tmp_path / "runs.csv"
    result = run_cli("runs", "export", tiny_study.folder, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "9 rows" in result.stdout
    runs = pd.read_csv(out)
    assert len(runs) == 9 and runs["run_id"].is_unique
    assert sorted(set(runs["budget"])) == pytest.approx(list(BUDGETS))
    for column in ("N", "D", "C", "loss"):
        assert (runs[column] > 0).all(), column
    assert (runs["C"] <= runs["budget"]).all() and (runs["C"] > 0.5 * runs["budget"]).all()
    assert (runs["C"] / (6 * runs["N"] * runs["D"])).between(0.5, 2.0).all()  # C is about 6ND
    curves = tmp_path / "curves.parquet"
    as_curves = run_cli("runs", "export", tiny_study.folder, "--curves", "--format", "parquet", "--out", curves)
    assert as_curves.returncode == 0, as_curves.stderr
    points = pd.read_parquet(curves)
    assert set(points["run_id"]) == set(runs["run_id"]) and (points["val_loss"] > 0).all()


@pytest.mark.slow  # needs the session's tiny study (9 trained runs)
def test_report_writes_html_and_json_from_the_run_store(run_cli, copy_tiny_study):
    folder = copy_tiny_study("reported")
    result = run_cli("report", folder, "--bootstrap", "20")
    assert result.returncode == 0, result.stderr
    html, numbers = folder / "report" / "report.html", folder / "report" / "report.json"
    assert html.stat().st_size > 10_000 and "<svg" in html.read_text()
    analysis = json.loads(numbers.read_text())
    assert len(analysis["runs"]) == 9
    (group,) = analysis["groups"]
    assert group["label"] == "bc · uniform:32" and group["n_runs"] == 9 and group["n_failed"] == 0
    assert str(html) in result.stdout
