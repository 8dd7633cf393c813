"""Commands that train nothing do not load torch (about 3 CPU-seconds a start): the command
tree runs in a fresh interpreter, and after each command we look for torch in sys.modules."""

import json
import subprocess
import sys

from tests.helpers import cli_env

import roboscale.models
import roboscale.models.settings
import roboscale.models.transformer
import roboscale.study
import roboscale.train
from roboscale.study import RunStore, study_from_dict

HARNESS = """
import json, sys
from roboscale.cli.main import command_tree
from roboscale.errors import RoboscaleError

results = []
for argv in json.loads(sys.argv[1]):
    try:
        code = command_tree()(argv, prog_name="roboscale", standalone_mode=False)
    except RoboscaleError as error:
        code = error.exit_code
    results.append([argv[:2], code or 0, "torch" in sys.modules])
with open(sys.argv[2], "w") as out:
    json.dump(results, out)
"""

POWER_LAW = "x,y\n1,10\n2,5.1\n4,2.4\n8,1.26\n16,0.61\n"
"""y ~ 10 x^-1 with noise: a table `fit power-law` fits."""


def planned_folder(tmp_path):
    """A study folder whose run store plans one run (nothing finished)."""
    folder = tmp_path / "planned"
    spec = study_from_dict({"name": "planned", "out": str(folder), "data": {"path": "gone"}})
    store = RunStore(folder / "study.db")
    store.set_study({"name": "planned", "spec": spec.to_dict(), "dataset": "gone"})
    run = {"run_id": "run0", "task": "bc", "tokenizer": "uniform:256", "seed": 0, "d_model": 16, "n_layer": 1}
    store.add_planned([{**run, "budget": 1e9, "config": {}}])
    return folder


def test_commands_that_train_nothing_do_not_load_torch(tmp_path, fixtures_dir):
    folder = planned_folder(tmp_path)
    (tmp_path / "xy.csv").write_text(POWER_LAW)
    (tmp_path / "bad.toml").write_text('name = "bad"\n[data]\npath = "gone"\n[sweep]\nseeds = [0, 0]\n')
    dataset = str(fixtures_dir / "lerobot_v3_sample")
    commands = [  # (argv, exit code): 2 is bad input, refused before any work
        (["study", "init", str(tmp_path / "study.toml")], 0),
        (["study", "plan", str(tmp_path / "bad.toml")], 2),
        (["runs", "list", str(folder)], 0),
        (["runs", "export", str(folder), "--out", str(tmp_path / "runs.csv")], 0),
        (["report", "--help"], 0),
        (["report", str(folder)], 2),
        (["fit", "power-law", str(tmp_path / "xy.csv"), "--x", "x", "--y", "y", "--bootstrap", "10"], 0),
        (["data", "info", dataset], 0),
        (["train", "--data", dataset, "--d-model", "100", "--out", str(tmp_path / "run")], 2),
    ]
    argvs = json.dumps([argv for argv, _ in commands])
    result = tmp_path / "result.json"
    process = subprocess.run(
        [sys.executable, "-c", HARNESS, argvs, str(result)], capture_output=True, text=True, env=cli_env(), check=False
    )
    assert process.returncode == 0, process.stderr
    results = json.loads(result.read_text())
    expected = [[argv[:2], code, False] for argv, code in commands]
    assert results == expected, f"torch first loaded by: {next((r[0] for r in results if r[2]), None)}"
    assert (tmp_path / "study.toml").read_text().startswith("# A roboscale")
    assert (tmp_path / "runs.csv").read_text().splitlines()[1].startswith("run0,")
    assert not (tmp_path / "run").exists()


def test_lazy_packages_export_every_name_from_its_module():
    for package in (roboscale.models, roboscale.train, roboscale.study):
        missing = [name for name in package.__all__ if getattr(package, name, None) is None]
        assert missing == [], package.__name__
    assert roboscale.models.SequenceModel is roboscale.models.transformer.SequenceModel
    assert roboscale.train.train.__module__ == "roboscale.train.trainer"
    assert roboscale.study.RunStore.__module__ == "roboscale.study.store"
    # the torch-free settings are one object wherever they are imported from
    for name in ("TASKS", "WM_TARGETS", "PARAMETRIZATIONS", "LADDER_WIDTHS", "check_width", "ladder_shape"):
        assert getattr(roboscale.models.transformer, name) is getattr(roboscale.models.settings, name), name
    assert roboscale.train.LADDER_WIDTHS is roboscale.models.LADDER_WIDTHS
    assert roboscale.models.ladder_shape(64) == (2, 2)
