"""`roboscale eval` end to end in a subprocess: tables, JSON, and one-line errors with exit code 2."""

import json
import os
import shutil

import pytest
from tests.helpers import run_cli as roboscale


def test_closed_loop_table_and_json(trained_policy):
    result = roboscale("eval", str(trained_policy), "--episodes", "6", "--envs", "3", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "reach" in result.stdout and "95% CI" in result.stdout and "mean return" in result.stdout
    assert "steps/s" in result.stdout and "closed_loop-train-tasks-greedy-seed3-ep6.json" in result.stdout
    as_json = roboscale("eval", str(trained_policy), "--episodes", "6", "--envs", "3", "--seed", "3", "--json")
    payload = json.loads(as_json.stdout)
    assert payload["mean"]["episodes"] == 6 and payload["seed"] == 3 and payload["decoding"] == "greedy"
    saved = json.loads((trained_policy / "eval" / "closed_loop-train-tasks-greedy-seed3-ep6.json").read_text())
    assert saved["episodes"] == payload["episodes"]  # the same seed, the same episodes


def test_open_loop_for_a_world_model(world_model):
    result = roboscale("eval", str(world_model), "--horizons", "1,5", "--episodes", "4")
    assert result.returncode == 0, result.stderr
    assert "open-loop prediction on 16 starts in 4 validation episodes" in result.stdout
    assert "beats persistence" in result.stdout
    saved = json.loads((world_model / "eval" / "open_loop.json").read_text())
    # 4 episodes: most starts are after the agent stopped, where "nothing moves" is nearly exact
    assert saved["worse_than_persistence_at"] == [1, 5]
    assert f"warning: this world model is {saved['persistence_warning']}" in result.stdout


def test_open_loop_flags_a_world_model_worse_than_persistence(untrained_world_model):
    result = roboscale("eval", str(untrained_world_model), "--horizons", "1,5", "--episodes", "4", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert 1 in payload["worse_than_persistence_at"]
    one_step = payload["horizons"][0]
    assert one_step["worse_than_persistence"] and one_step["mse_normalised"] > one_step["persistence_mse_normalised"]
    table = roboscale("eval", str(untrained_world_model), "--horizons", "1,5", "--episodes", "4")
    line = next(line for line in table.stdout.splitlines() if line.startswith("warning:"))
    assert line == f"warning: this world model is {payload['persistence_warning']}"
    assert "worse than predicting no change at horizon" in line


@pytest.fixture(scope="module")
def no_checkpoint(trained_policy, tmp_path_factory):
    run = tmp_path_factory.mktemp("broken") / "run"
    shutil.copytree(trained_policy, run, ignore=shutil.ignore_patterns("checkpoint", "eval"))
    return run


@pytest.fixture(scope="module")
def mixed_tokenizers(trained_policy, binned_policy, tmp_path_factory):
    run = tmp_path_factory.mktemp("broken") / "run"
    shutil.copytree(trained_policy, run, ignore=shutil.ignore_patterns("eval"))
    shutil.copy(binned_policy / "tokenizers.json", run / "tokenizers.json")
    return run


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_checkpoint", "has no checkpoint"),
        ("mixed_tokenizers", "the folder mixes files of two runs"),
        ("other_env", "generated in pointmass"),
        ("world_model_closed_loop", "is a world-model run (task wm): closed-loop evaluation needs"),
    ],
)
def test_unusable_runs_exit_2_with_one_line(case, message, request, trained_policy, world_model):
    arguments = {
        "no_checkpoint": [str(request.getfixturevalue("no_checkpoint"))],
        "mixed_tokenizers": [str(request.getfixturevalue("mixed_tokenizers"))],
        "other_env": [str(trained_policy), "--env", "metaworld"],
        "world_model_closed_loop": [str(world_model), "--mode", "closed-loop"],
    }[case]
    result = roboscale("eval", *arguments)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_simulator_that_is_not_installed_exits_2(metaworld_run, tmp_path):
    # A stand-in metaworld package that fails the way a missing MuJoCo does.
    stub = tmp_path / "stub" / "metaworld"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'mujoco'\", name='mujoco')\n")
    paths = [str(stub.parent), os.environ.get("PYTHONPATH", "")]
    result = roboscale(
        "eval", str(metaworld_run), env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    )
    assert result.returncode == 2, result.stderr
    assert "the metaworld simulator is not installed (mujoco is missing)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_open_loop_for_an_image_world_model_prints_pixel_and_token_errors(image_world_model):
    result = roboscale("eval", str(image_world_model), "--horizons", "1,5,20", "--episodes", "2", "--starts", "1")
    assert result.returncode == 0, result.stderr
    for column in ("PSNR dB", "tokenizer PSNR", "persistence PSNR", "code accuracy", "code CE (nats)"):
        assert column in result.stdout
    saved = json.loads((image_world_model / "eval" / "open_loop.json").read_text())
    psnr = [error["psnr_db"] for error in saved["horizons"]]
    assert [error["horizon"] for error in saved["horizons"]] == [1, 5, 20]
    assert all(f"{value:.2f}" in result.stdout for value in psnr)


def test_closed_loop_for_an_image_policy_names_its_camera(image_policy):
    result = roboscale("eval", str(image_policy), "--episodes", "2", "--envs", "2", "--max-steps", "5")
    assert result.returncode == 0, result.stderr
    assert "seeing camera top at 32x32 px (numpy)" in result.stdout and "95% CI" in result.stdout
