"""`roboscale train` end to end in a subprocess, at a tiny budget."""

import json

import pytest
from tests.helpers import run_cli as roboscale


def test_train_writes_record_and_resumes_as_finished(pointmass_dataset, tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(pointmass_dataset),
        "--task",
        "wm",
        "--tokenizer",
        "uniform:32@2",
        "--d-model",
        "16",
        "--flops",
        "3e9",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    result = roboscale(*args)
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout and "validation loss" in result.stdout
    record = json.loads((out / "record.json").read_text())
    assert record["C"] <= 3e9 and record["C"] > 3e9 - record["flops_per_token"]["exact"] * 16 * 8 * 4 * 64
    again = roboscale(*args)
    assert again.returncode == 0 and json.loads((out / "record.json").read_text()) == record


@pytest.mark.parametrize(
    "options, message",
    [
        ({"--data": "/nowhere"}, "not found"),
        ({"--tokenizer": "uniform:many"}, "not an integer"),
        ({"--steps": None, "--flops": "1"}, "smaller than one optimiser step"),
        ({"--task": "rl"}, "choose bc or wm"),
    ],
)
def test_bad_input_exit_code_2(pointmass_dataset, tmp_path, options, message):
    settings = {"--data": str(pointmass_dataset), "--steps": "3", "--out": str(tmp_path / "run"), **options}
    args = [item for key, value in settings.items() if value is not None for item in (key, value)]
    result = roboscale("train", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
