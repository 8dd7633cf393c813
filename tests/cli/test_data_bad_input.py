"""Bad input to `roboscale data` (and `train --data`), through the real CLI: one line naming
the problem and the fix, exit code 2, before any work, nothing left behind, nothing lost."""

import os
from pathlib import Path

import pytest
from tests.helpers import run_cli as roboscale

LEROBOT_SAMPLE = Path(__file__).parents[1] / "fixtures" / "lerobot_v3_sample"


def everything_under(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones too) with the bytes of each file."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def refused(tmp_path: Path, *args: str, one_line: bool = True) -> str:
    """Run the CLI in ``tmp_path``; check exit code 2, one error line (the last line
    only, without ``one_line``), no traceback, and that nothing under ``tmp_path``
    changed. Returns the error line."""
    before = everything_under(tmp_path)
    result = roboscale(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 or not one_line, result.stderr
    assert everything_under(tmp_path) == before
    return lines[-1]


@pytest.fixture
def user_folder(tmp_path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("a week of work")
    return folder


def test_overwrite_never_deletes_a_folder_roboscale_did_not_write(tmp_path, user_folder):
    # A LeRobot folder someone else wrote has meta/info.json but not roboscale's provenance file.
    (user_folder / "meta").mkdir()
    (user_folder / "meta" / "info.json").write_text("{}")
    line = refused(tmp_path, "data", "generate", "--episodes", "4", "--out", str(user_folder), "--overwrite")
    assert "is not a roboscale dataset" in line and "choose another --out" in line
    assert (user_folder / "notes.txt").read_text() == "a week of work"


def test_overwrite_replaces_a_roboscale_dataset(tmp_path):
    out = tmp_path / "ds"
    assert roboscale("data", "generate", "--episodes", "4", "--out", str(out), cwd=tmp_path).returncode == 0
    again = roboscale("data", "generate", "--episodes", "6", "--out", str(out), "--overwrite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "wrote" in again.stdout and "6 episodes" in again.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no partial or retired folder left


@pytest.mark.parametrize("seed", ["-1", str(2**64 + 1), str(2**63)])
def test_seed_out_of_range(tmp_path, seed):
    line = refused(tmp_path, "data", "generate", "--episodes", "4", "--seed", seed, "--out", "ds")
    assert f"seed (--seed) {seed}: a seed must be an integer from 0 to 2^63 - 1" in line


@pytest.mark.parametrize("amount", [["--episodes", str(10**20)], ["--transitions", str(10**22)]])
def test_an_amount_that_cannot_fit_on_disk_is_refused_before_any_work(tmp_path, amount):
    line = refused(tmp_path, "data", "generate", *amount, "--out", "ds")
    assert "on disk but" in line and "free" in line and "ask for fewer --episodes/--transitions" in line


def test_episodes_must_be_a_whole_number(tmp_path):
    result = roboscale("data", "generate", "--episodes", "1e20", "--out", "ds", cwd=tmp_path)
    assert result.returncode == 2 and "--episodes" in result.stderr
    assert not any(tmp_path.iterdir())


def unwritable_outs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """--out value -> what the error must say, for outs that cannot become a dataset folder."""
    (tmp_path / "a_file").write_text("not a folder")
    return {
        "/proc/roboscale-ds": "cannot write in /proc",
        str(tmp_path / "a_file"): "is a file, not a dataset folder: choose another --out (or delete the file)",
        str(tmp_path / "a_file" / "ds"): "is a file, not a folder",
    }


@pytest.mark.parametrize(
    "command, case",
    [
        ("generate", "/proc"),
        ("generate", "file"),
        ("generate", "under a file"),
        ("lerobot", "/proc"),
        ("lerobot", "file"),
        ("minari", "/proc"),
        ("minari", "under a file"),
    ],
)
def test_an_out_that_cannot_be_written_is_refused_up_front(tmp_path, command, case):
    if command == "minari":
        pytest.importorskip("minari")
    out, message = list(unwritable_outs(tmp_path).items())[["/proc", "file", "under a file"].index(case)]
    args = {
        "generate": ["data", "generate", "--episodes", "4"],
        "lerobot": ["data", "import", "lerobot", str(LEROBOT_SAMPLE)],
        "minari": ["data", "import", "minari", "nothing/here-v0"],
    }[command]
    # --overwrite too: the fix suggested for an existing file must not be the flag already given
    line = refused(tmp_path, *args, "--out", out, "--overwrite")
    assert message in line
    assert "pass --overwrite" not in line


def test_an_existing_file_without_overwrite_is_not_told_to_overwrite(tmp_path):
    (tmp_path / "a_file").write_text("x")
    line = refused(tmp_path, "data", "generate", "--episodes", "4", "--out", "a_file")
    assert "a_file is a file, not a dataset folder" in line and "--overwrite" not in line


@pytest.mark.parametrize(
    "args",
    [
        ["data", "info", "a_file"],
        ["data", "import", "lerobot", "a_file", "--out", "imported"],
        ["train", "--data", "a_file"],
    ],
)
def test_a_file_given_as_a_dataset_is_called_a_file(tmp_path, args):
    (tmp_path / "a_file").write_text("x")
    # `train` still draws an empty progress bar before the error (cli/train.py's to fix).
    line = refused(tmp_path, *args, one_line=args[0] != "train")
    assert "a_file is a file, not a dataset folder: give the folder that holds meta/info.json" in line


def test_minari_error_says_how_to_make_a_local_dataset(tmp_path):
    pytest.importorskip("minari")
    line = refused(tmp_path, "data", "import", "minari", "D4RL/door/human-v2", "--out", "ds")
    assert "roboscale never downloads" in line and "minari.create_dataset_from_buffers" in line
    assert "MINARI_DATASETS_PATH" in line and "download=True" not in line
    # Two ways to make it local that Minari itself supports offline: copy a downloaded folder, or write one.
    assert "`minari download D4RL/door/human-v2`" in line and "DataCollector" in line


def test_heldout_tasks_are_drawn_before_the_training_subset(tmp_path):
    pytest.importorskip("metaworld")
    result = roboscale(
        "data", "generate", "--env", "metaworld", "--tasks", "mt10", "--num-tasks", "4", "--configs-per-task", "10",
        "--heldout-tasks", "door-open-v3", "--episodes", "4", "--max-steps", "5", "--validation-fraction", "0",
        "--out", "ds", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from roboscale.data import open_dataset

    tasks = open_dataset(tmp_path / "ds").episodes.groupby("split")["task"].unique()
    assert len(tasks["train"]) == 4 and "door-open-v3" not in tasks["train"]
    assert list(tasks["heldout_tasks"]) == ["door-open-v3"]


def test_default_folder_name_counts_every_episode_it_holds(tmp_path):
    # 10 episodes: 9 train + 1 validation; one held-out task adds ceil(1 / 1 train task) = 1 episode.
    result = roboscale("data", "generate", "--episodes", "10", "--heldout-tasks", "push", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path / "data") == ["pointmass-all-11ep-s0"]
    assert "11 episodes (train 9, validation 1, heldout_tasks 1)" in result.stdout
