"""Written files get the mode an ordinary `open(..., "w")` gives them: 0666 less the umask
(mkstemp and safetensors alone give 0600 whatever the umask)."""

import os
import stat
from pathlib import Path

import pytest
import torch

from roboscale.files import write_atomically, write_json_atomic
from roboscale.runfolder import has_checkpoint, save_checkpoint


def modes_under(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode) for path in folder.rglob("*") if path.is_file()
    }


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"])
def test_written_files_honour_the_umask(tmp_path, umask, expected):
    model = torch.nn.Linear(3, 2)
    previous = os.umask(umask)
    try:
        write_atomically(tmp_path / "report.html", "<p>report</p>")
        write_atomically(tmp_path / "weights.bin", b"\x00\x01")
        write_atomically(tmp_path / "runs.csv", lambda path: path.write_text("N,loss\n1,2\n"))
        write_json_atomic(tmp_path / "run.json", {"step": 1})
        save_checkpoint(tmp_path / "checkpoint", model, torch.optim.AdamW(model.parameters()), {"step": 1})
    finally:
        os.umask(previous)
    assert has_checkpoint(tmp_path / "checkpoint")
    modes = modes_under(tmp_path)
    assert len(modes) == 7  # 4 files + weights, optimizer state and state.json of the checkpoint
    assert modes == dict.fromkeys(modes, expected)
