"""Bad input to train, fit and eval through the real CLI: one line, exit code 2, nothing written."""

import subprocess

import numpy as np
import pytest
from tests.helpers import run_cli as roboscale

from roboscale.fit import simulate_learning_curves
from roboscale.fit.examples import example_path

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
TOO_LARGE_SEED = str(2**64 + 1)


def assert_one_line_exit_2(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no traceback, no empty progress bar
    assert result.stdout == ""


@pytest.fixture(scope="module")
def curves(tmp_path_factory):
    """Learning curves from 6e13 to 1e21 FLOPs: 7.2 decades of compute."""
    path = tmp_path_factory.mktemp("curves") / "curves.csv"
    simulate_learning_curves(
        **TRUTH, model_sizes=np.geomspace(1e6, 1e9, 6), max_flops=1e21, min_tokens=1e7, points_per_curve=8
    ).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("seed", ["-1", TOO_LARGE_SEED])
@pytest.mark.parametrize("command", [["fit", "parametric"], ["fit", "power-law", "RUNS"], ["eval", "RUN"]])
def test_a_bad_seed_is_refused_before_any_work(tmp_path, command, seed):
    args = [str(tmp_path / "missing") if part in ("RUNS", "RUN") else part for part in command]
    result = roboscale(*args, "--seed", seed)
    assert_one_line_exit_2(result, f"--seed {seed}: a seed must be an integer from 0 to 2^63 - 1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["-1", TOO_LARGE_SEED])
def test_train_refuses_a_bad_seed_before_reading_the_data(tmp_path, seed):
    # The dataset does not exist: the seed is refused first, before the data is opened or tokenized.
    result = roboscale("train", "--data", str(tmp_path / "no-data"), "--seed", seed, "--out", str(tmp_path / "run"))
    assert_one_line_exit_2(result, f"--seed {seed}:")
    assert list(tmp_path.iterdir()) == []


def test_train_with_a_missing_dataset_prints_no_progress_bar(tmp_path):
    result = roboscale("train", "--data", str(tmp_path / "no-data"), "--out", str(tmp_path / "run"))
    assert_one_line_exit_2(result, "no-data")
    assert "training" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "out, message",
    [
        ("/proc/roboscale-run", "cannot write in /proc"),
        ("FILE", "is a file, not a folder"),
        ("FILE/run", "is a file, not a folder"),
    ],
)
def test_train_refuses_an_out_it_cannot_write(tmp_path, out, message):
    (tmp_path / "file").write_text("user data\n")
    out = out.replace("FILE", str(tmp_path / "file"))
    result = roboscale("train", "--data", str(tmp_path / "no-data"), "--out", out)
    assert_one_line_exit_2(result, message)
    assert [path.name for path in tmp_path.iterdir()] == ["file"]
    assert (tmp_path / "file").read_text() == "user data\n"


def test_fit_parametric_max_iter_below_1_is_bad_input():
    result = roboscale("fit", "parametric", "--max-iter", "0", "--bootstrap", "0")
    assert_one_line_exit_2(result, "--max-iter 0: the optimiser needs at least 1 iteration")


def test_fit_isoflop_negative_window_says_0_means_all():
    result = roboscale("fit", "isoflop", str(example_path("atari_bc")), "--window", "-1")
    assert_one_line_exit_2(result, "--window -1:")
    assert "0 for all" in result.stderr and "None" not in result.stderr


def test_fit_audit_frontier_cannot_hold_out_more_than_the_curves_span(curves):
    result = roboscale("fit", "audit", str(curves), "--method", "frontier", "--holdout-decades", "50")
    assert_one_line_exit_2(result, "--holdout-decades 50: the learning curves span 7.2 decades")


def test_eval_names_the_starts_flag(tmp_path):
    result = roboscale("eval", str(tmp_path / "run"), "--starts", "0")
    assert_one_line_exit_2(result, "--starts 0: must be at least 1")


@pytest.mark.parametrize("horizons", ["0,5", "a,b", ""])
def test_eval_refuses_bad_horizons(tmp_path, horizons):
    result = roboscale("eval", str(tmp_path / "run"), "--horizons", horizons)
    assert_one_line_exit_2(result, "--horizons")


def test_fit_help_has_no_doubled_negations_and_flags_show_no_type():
    for command in ("parametric", "isoflop", "frontier", "power-law", "audit"):
        text = roboscale("fit", command, "--help").stdout
        assert "--no-no-" not in text and "<bool>" not in text, command
    assert "--no-offset" in roboscale("fit", "power-law", "--help").stdout


def test_train_refuses_a_budget_too_large_for_the_model(pointmass_dataset, tmp_path):
    result = roboscale("train", "--data", str(pointmass_dataset), "--flops", "1e40", "--out", str(tmp_path / "run"))
    assert_one_line_exit_2(result, "--flops 1e+40")
    assert list(tmp_path.iterdir()) == []
