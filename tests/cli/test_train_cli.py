"""`roboscale train` end to end in a subprocess, at a tiny budget."""

import json
import re

import pytest
from tests.helpers import run_cli as roboscale

from roboscale.train.trainer import eval_schedule


def check_training_throughput(stdout: str, record: dict) -> None:
    """The summary's tokens/s and GFLOP/s are those of the optimiser steps (the record's
    train_* figures, C / train_seconds), not of the wall time that includes validation."""
    assert record["train_flops_per_second"] == pytest.approx(record["C"] / record["train_seconds"])
    assert record["train_tokens_per_second"] == pytest.approx(record["tokens"] / record["train_seconds"])
    # Every evaluation (and the final training-loss probe) was timed apart from the steps.
    points = len(record["learning_curve"])
    assert points == len(eval_schedule(record["steps"], 16)) and record["validation_seconds"] > 0
    assert record["wall_seconds"] > record["train_seconds"]  # the wall time counts validation too
    line = next(line for line in stdout.splitlines() if line.startswith("training "))
    tokens_per_second, gflops = re.match(r"training ([\d,]+) tokens/s, ([\d.]+) GFLOP/s", line).groups()
    assert int(tokens_per_second.replace(",", "")) == round(record["train_tokens_per_second"])
    assert float(gflops) == round(record["train_flops_per_second"] / 1e9, 2)
    assert float(gflops) > record["flops_per_second"] / 1e9 + 0.01  # the wall-time figure is lower
    assert f"validation {record['validation_seconds']:.1f} s at {points} point(s)" in line


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
    assert record["steps"] == 48 and record["warnings"] == [] and "warning" not in result.stderr  # >= 30 steps
    check_training_throughput(result.stdout, record)
    again = roboscale(*args)
    assert again.returncode == 0 and json.loads((out / "record.json").read_text()) == record
    # The rerun trains nothing and says so, with the final loss (no empty "step 0/None ... loss nan" bar).
    printed = " ".join(again.stdout.split())  # the console wraps long lines (the path) anywhere
    assert "already finished: nothing to train" in printed
    assert f"validation loss {record['final']['val_loss']:.4f}" in printed
    assert "nan" not in again.stdout + again.stderr and "None" not in again.stderr


def test_a_run_of_too_few_steps_is_warned_before_training(pointmass_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["--data", pointmass_dataset, "--d-model", "16", "--steps", "3", "--threads", "1", "--out", out]
    result = roboscale("train", *args)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "only 3 optimiser step(s), fewer than 30" in warnings[0]
    assert "give --steps 30 or more" in warnings[0]
    assert result.stderr.index("warning:") < result.stderr.index("training")  # before the progress bar
    record = json.loads((out / "record.json").read_text())
    assert record["warnings"] == [warnings[0].removeprefix("warning: ")]
    again = roboscale("train", *args)  # a finished rerun repeats the recorded warning with its summary
    printed = " ".join(again.stdout.split())  # the console wraps long lines anywhere
    assert "already finished" in printed and " ".join(warnings[0].split()) in printed


@pytest.mark.parametrize(
    "options, message",
    [
        ({"--data": "/nowhere"}, "not found"),
        ({"--tokenizer": "uniform:many"}, "not an integer"),
        ({"--steps": None, "--flops": "1"}, "smaller than one optimiser step"),
        ({"--task": "rl"}, "choose bc or wm"),
        ({"--image-tokenizer": "patch:8"}, "--image-tokenizer patch:8 is for image observations"),
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
