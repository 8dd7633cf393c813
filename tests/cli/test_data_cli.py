"""`roboscale data` end to end, in subprocesses: generate, info, import, kill and re-run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tests.helpers import run_cli as roboscale

from roboscale.data import open_dataset
from roboscale.data.writer import partial_folder


def test_generate_then_info(tmp_path):
    out = tmp_path / "pm"
    result = roboscale("data", "generate", "--episodes", "30", "--quality", "noise:0.05", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "30 episodes" in result.stdout and "success per task" in result.stdout
    info = roboscale("data", "info", str(out), "--json")
    summary = json.loads(info.stdout)
    assert summary["episodes"] == 30 and summary["splits"] == {"train": 27, "validation": 3}
    assert summary["generation"]["quality"] == "noise:0.05"
    text = roboscale("data", "info", str(out)).stdout
    assert "per task" in text and "fingerprint" in text


def test_import_lerobot_from_the_shell(fixtures_dir, tmp_path):
    result = roboscale(
        "data", "import", "lerobot", str(fixtures_dir / "lerobot_v3_sample"), "--out", str(tmp_path / "i")
    )
    assert result.returncode == 0, result.stderr
    assert "3 episodes, 18 frames" in result.stdout


def test_killed_generation_leaves_nothing_and_reruns_to_the_same_bytes(tmp_path):
    out = tmp_path / "big"
    # Small files, so that several are complete on disk when the process dies.
    args = ["data", "generate", "--episodes", "600", "--file-size-mb", "0.1", "--workers", "2"]
    command = [sys.executable, "-m", "roboscale", *args, "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while not (partial_folder(out) / "data").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()  # never a half-written dataset under the real name
    assert partial_folder(out).exists()

    rerun = roboscale(*args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert not partial_folder(out).exists()
    clean = roboscale(*args, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0
    assert open_dataset(out).fingerprint() == open_dataset(tmp_path / "clean").fingerprint()


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "generate", "--env", "gazebo"], "unknown environment 'gazebo'"),
        (["data", "generate", "--env", "metaworld", "--tasks", "push-v9"], "unknown Meta-World task"),
        (["data", "generate", "--episodes", "0"], "episodes=0"),
        (["data", "generate", "--quality", "noisy"], "quality 'noisy'"),
        (["data", "generate", "--workers", "0"], "workers=0"),
        (["data", "info", "/nonexistent/dataset"], "not found"),
        (["data", "import", "minari", "nothing/here-v0", "--out", "/tmp/never-written"], "never downloads"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(args, message, tmp_path):
    result = roboscale(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_existing_output_is_refused(tmp_path):
    out = tmp_path / "ds"
    assert roboscale("data", "generate", "--episodes", "4", "--out", str(out)).returncode == 0
    again = roboscale("data", "generate", "--episodes", "4", "--out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_info_on_a_damaged_dataset_names_the_file(tmp_path):
    out = tmp_path / "ds"
    assert roboscale("data", "generate", "--episodes", "4", "--out", str(out)).returncode == 0
    (out / "meta" / "info.json").write_text('{"codebase_version": "v3.0"}')
    result = roboscale("data", "info", str(out))
    assert result.returncode == 2
    assert "info.json lacks fps, features" in result.stderr
