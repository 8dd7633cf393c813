"""Ctrl-C during `roboscale train`: exit code 130, one line saying what is kept, and a rerun finishes."""

import json
import signal
import subprocess
import sys
import time

ROBOSCALE = [sys.executable, "-m", "roboscale"]


def test_ctrl_c_exits_130_and_the_same_command_finishes_the_run(tmp_path):
    data = tmp_path / "pointmass"
    generated = subprocess.run(
        [*ROBOSCALE, "data", "generate", "--env", "pointmass", "--episodes", "30", "--out", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    run = tmp_path / "run"
    train = [
        *ROBOSCALE, "train", "--data", str(data), "--d-model", "16", "--batch-size", "8", "--steps", "200",
        "--eval-points", "4", "--eval-windows", "16", "--checkpoint-seconds", "0", "--out", str(run),
    ]  # fmt: skip
    process = subprocess.Popen(train, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (run / "config.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # config.json is written once the run is planned, just before the first step
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        "interrupted: what was finished is kept; run the same command again to resume"
    )
    assert "Traceback" not in stderr
    assert not (run / "record.json").exists() or json.loads((run / "record.json").read_text())["status"] != "finished"

    rerun = subprocess.run(train, capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "finished" and record["steps"] == 200
