"""The README's commands, pasted in order from a fresh clone, work and keep their claims.

Every command of the README's shell code blocks runs through the real CLI, in order, in
one temporary folder (the "clone": it holds the LeRobot fixture at the path the README
uses), at a reduced size: SUBSTITUTIONS shrinks the sizes, ADDED_OPTIONS adds options
that only make a step faster (shorter episodes, fewer validation windows, fewer
bootstrap resamples), and the study file that ``study init`` writes is replaced by the
tiny study (tests/helpers.py) under the template's own name. A command the test cannot
run is listed in SKIPPED with the reason; a README command that is neither run nor
skipped, a size without a substitution, and a table entry the README no longer needs all
fail the test, so a README change that breaks the sequence fails here.

To stay within its time budget the study's folder is seeded with the session's tiny
study (the same runs, already trained: run ids do not depend on the folder or the name),
so ``study run`` evaluates the policies, fits and reports, and shows that a re-run skips
finished runs; the training steps of a study are tested in tests/study.
"""

from __future__ import annotations

import json
import re
import resource
import shlex
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tests.helpers import run_cli, study_toml, tiny_study_dict

REPO = Path(__file__).parents[1]
README = REPO / "README.md"
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)

SKIPPED = {
    "python3 -m venv .venv && .venv/bin/pip install -e .[test] && .venv/bin/roboscale demo": (
        "the set-up: installs and runs the 10-minute demo (tests/study/test_examples.py plans it)"
    ),
    ".venv/bin/python -m pytest -q": "the test suite itself",
    "roboscale data import minari D4RL/door/human-v2 --out data/door": (
        "needs a local Minari dataset, which CI does not have (tests/data covers the importer)"
    ),
    "roboscale study run study.toml --executor ray --address auto": "needs a Ray cluster",
    "roboscale study plan examples/data-axes.toml": (
        "generates the example's 1,950 Meta-World episodes (7 CPU-minutes); tests/study/test_data_axes.py plans "
        "and runs a small data-axes study end to end"
    ),
    "roboscale study run examples/data-axes.toml": "a 15-minute study (its numbers are quoted in the README)",
    "roboscale study run examples/sim-and-real.toml": "a 10-minute study (its numbers are quoted in the README)",
    "roboscale study run examples/image-tokens.toml": "a 30-minute study (its numbers are quoted in the README)",
    "roboscale runs export examples/studies/data-axes --out data-runs.csv": "needs the data-axes study's runs",
    "roboscale runs export examples/studies/sim-and-real --out mix-runs.csv": "needs the sim-and-real study's runs",
    "roboscale fit power-law data-runs.csv --x train_tasks --y heldout_loss": "reads the data-axes study's export",
    "roboscale fit mixture mix-runs.csv --proportions r_real,r_synthetic --loss loss_real,loss_synthetic "
    "--target loss_real": "reads the sim-and-real study's export (tests/cli/test_data_fits_cli.py runs it on a table)",
    "roboscale fit effective-data data-runs.csv --amount episodes --loss loss --source quality --reference "
    "noise:0.1 --group train_tasks": "reads the data-axes study's export (tests/cli/test_data_fits_cli.py)",
    "roboscale fit joint-data mix-runs.csv --n N --amounts episodes_real,episodes_synthetic --loss loss "
    "--reference episodes_real": "reads the sim-and-real study's export (tests/cli/test_data_fits_cli.py)",
}
"""README commands the test does not run (normalised as by :func:`normalise`), with why."""

SUBSTITUTIONS = {
    ("--episodes", "500"): "20",
    ("--episodes", "200"): "20",
    ("--episodes", "100"): "4",
    ("--steps", "300"): "4",
    ("--d-model", "32"): "16",
    ("--episodes", "50"): "1",
    ("--transitions", "100000"): "200",
    ("--workers", "2"): "1",
    ("--d-model", "64"): "16",
    ("--flops", "1e13"): "1e9",
    ("--tokens-per-param", "20"): "0.1",
    ("--steps", "2000"): "4",
    ("--envs", "10"): "2",
    ("--drop-highest-loss", "2"): "1",
    ("--from", "expert=data/mt10:100"): "expert=data/mt10:10",
}
"""(option, README value) -> the value the test runs: every size of the README's commands."""

SIZED_OPTIONS = {"--episodes", "--transitions", "--workers", "--d-model", "--flops", "--tokens-per-param", "--steps"}
SIZED_OPTIONS |= {"--tokens", "--envs", "--drop-highest-loss", "--bootstrap"}
"""Options whose README value must be in SUBSTITUTIONS (a new size fails the test)."""

ADDED_OPTIONS = {
    ("data", "generate"): ["--max-steps", "25"],
    ("train",): ["--batch-size", "8", "--eval-points", "2", "--eval-windows", "16", "--threads", "1"],
    ("eval",): ["--episodes", "1", "--envs", "2"],
    ("study", "run"): ["--bootstrap", "20"],
    ("report",): ["--bootstrap", "20"],
    ("fit",): ["--bootstrap", "20"],
}
"""Options added to every command starting with these words, unless the command sets them:
they make a step faster without changing what it does."""

FIT_OUTCOMES = {0: "a table", 1: "a fit that says it did not converge", 2: "one line naming the problem"}
"""At the tiny study's size a fit may legitimately fail; the README promises how (exit 1 or 2,
one line, no traceback)."""

CPU_BUDGET = 330.0
"""CPU seconds (user + system) the walk's subprocesses may take (measured: 194 s on a loaded
2-core machine, about 30 commands of 1.5-10 s each, most of it interpreter and simulator start-up,
before the camera-frame commands, whose VQ-VAE trains about 35 CPU seconds)."""


@dataclass
class Step:
    """One README command: its normalised text and the argv the test runs."""

    text: str
    argv: list[str]


def normalise(line: str) -> list[str]:
    """A shell line's words, without its comment."""
    return shlex.split(line, comments=True)


def readme_commands(text: str) -> list[str]:
    """Every command line of the README's shell code blocks, in order, normalised."""
    lines = [line for block in SHELL_BLOCK.findall(text) for line in block.splitlines()]
    return [" ".join(words) for words in map(normalise, lines) if words]


def reduced(words: list[str], used: set) -> list[str]:
    """``words`` with SUBSTITUTIONS applied and ADDED_OPTIONS appended (records the
    substitutions used in ``used``); fails on a size the table does not cover."""
    out = list(words)
    for index in range(len(out) - 1):
        key = (out[index], out[index + 1])
        if key in SUBSTITUTIONS:
            out[index + 1] = SUBSTITUTIONS[key]
            used.add(key)
        elif out[index] in SIZED_OPTIONS:
            raise AssertionError(f"README size {key} has no entry in SUBSTITUTIONS")
    for prefix, options in ADDED_OPTIONS.items():
        if tuple(out[: len(prefix)]) == prefix:
            for option, value in zip(options[::2], options[1::2], strict=True):
                if option not in out:
                    out += [option, value]
    return out


def plan(text: str) -> list[Step]:
    """The steps the test runs, in the README's order; checks the tables are in sync."""
    commands = readme_commands(text)
    stale = set(SKIPPED) - set(commands)
    assert not stale, f"SKIPPED lists commands the README no longer has: {sorted(stale)}"
    used: set = set()
    steps = []
    for command in commands:
        if command in SKIPPED:
            continue
        words = command.split(" ")
        assert words[0] == "roboscale", f"README command neither run nor in SKIPPED: {command!r}"
        steps.append(Step(command, reduced(normalise(command)[1:], used)))
    assert set(SUBSTITUTIONS) <= used, f"SUBSTITUTIONS the README no longer needs: {sorted(set(SUBSTITUTIONS) - used)}"
    return steps


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_readme_tables_are_in_sync_with_the_readme():
    steps = plan(README.read_text())
    assert len(steps) + len(SKIPPED) == len(readme_commands(README.read_text()))
    assert any(step.argv[:2] == ["study", "init"] for step in steps)


@pytest.mark.long  # about 30 CLI processes, 194 CPU seconds: run with pytest -m long
def test_readme_commands_run_in_order_and_keep_their_claims(tmp_path, tiny_study):
    clone = tmp_path / "clone"
    for fixture in ("tests/fixtures/lerobot_v3_sample", "tests/fixtures/lerobot_video"):
        shutil.copytree(REPO / fixture, clone / fixture)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for step in plan(README.read_text()):
        datasets = set((clone / "data").glob("*"))
        result = run_cli(*step.argv, cwd=clone, env={"OMP_NUM_THREADS": "1"}, timeout=600)
        output = result.stdout + result.stderr
        assert "Traceback" not in output, f"{step.text}\n{output}"
        if step.argv[0] == "fit":
            check_fit(step, result.returncode, output)
            continue
        assert result.returncode == 0, f"{step.text} -> exit {result.returncode}\n{output}"
        check_step(step, clone, output, set((clone / "data").glob("*")) - datasets)
        if step.argv[:2] == ["study", "init"]:
            use_tiny_study(clone, Path(step.argv[2]), tiny_study.folder)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"README walk: {cpu:.1f} CPU seconds")
    assert cpu < CPU_BUDGET, f"the README walk took {cpu:.0f} CPU seconds"


def use_tiny_study(clone: Path, file: str | Path, trained: Path) -> None:
    """Replace the study file ``study init`` wrote by the tiny study under the template's
    name (so it writes where the README says), with every policy evaluated, and seed its
    folder with the tiny study's trained runs."""
    template = tomllib.loads((clone / file).read_text())
    raw = tiny_study_dict("unused", name=template["name"])
    del raw["out"]  # where the template's study writes: studies/NAME next to the file
    assert "out" not in template or template["out"] == f"studies/{template['name']}"
    raw["evaluate"] = {"policies": "all", "episodes": 1, "envs": 2, "workers": 1}
    (clone / file).write_text(study_toml(raw))
    shutil.copytree(trained, clone / file.parent / "studies" / template["name"])


def check_step(step: Step, clone: Path, output: str, new_datasets: set[Path]) -> None:
    """The outputs a step promises exist, and what it prints holds where that is cheap."""
    argv = step.argv
    out = option(argv, "--out")
    if argv[:2] == ["data", "generate"]:
        assert len(new_datasets) == 1, f"{step.text}: expected one new dataset, got {new_datasets}"
        (folder,) = new_datasets
        assert out is None or folder == clone / out
        meta = json.loads((folder / "meta" / "roboscale.json").read_text())
        if "--heldout-tasks" in argv:
            assert meta["spec"]["heldout_tasks"] == option(argv, "--heldout-tasks").split(",")
        info = json.loads((folder / "meta" / "info.json").read_text())
        assert info["total_episodes"] >= 1 and (folder / "data").is_dir()
        if "--camera" in argv:  # the camera's frames, at the size asked for
            size = int(option(argv, "--image-size"))
            feature = info["features"][f"observation.images.{option(argv, '--camera')}"]
            assert feature["dtype"] == "image" and feature["shape"] == [size, size, 3], feature
    elif argv[:2] == ["data", "import"]:
        info = json.loads((clone / out / "meta" / "info.json").read_text())
        if "video" in argv[3]:  # the fixture's AV1 video, kept as PNG image features
            assert info["features"]["observation.images.top"]["dtype"] == "image", info["features"]
    elif argv[:2] == ["data", "derive"]:  # one amount level: the source's first K training episodes
        name, _, source = option(argv, "--from").partition("=")
        _, _, episodes = source.partition(":")
        info = json.loads((clone / out / "meta" / "info.json").read_text())
        assert info["splits"]["train"] == f"0:{episodes}", info["splits"]
        assert info["roboscale"]["derived"]["reference"] == name and f"train {name} {episodes} episodes" in output
    elif argv[:2] == ["data", "info"]:
        info = json.loads((clone / argv[2] / "meta" / "info.json").read_text())
        assert f"{info['total_episodes']} episodes, {info['total_frames']} frames" in output
    elif argv[:2] == ["data", "floor"]:
        floor = re.search(r"known floor (\d+\.\d+)", output)
        assert floor and float(floor.group(1)) > 0, output  # the README's data has noise: a known floor
    elif argv[0] == "train":
        record = json.loads((clone / out / "record.json").read_text())
        assert record["steps"] >= 1 and record["task"] == option(argv, "--task")
        assert (clone / out / "checkpoint").exists()
        assert f"{record['steps']} steps" in output
        if "--image-tokenizer" in argv:  # the run's own tokenizer, and its report in the record
            assert (clone / out / "image_tokenizer").is_dir()
            assert record["image_tokenizer"]["spec"] == option(argv, "--image-tokenizer"), record["image_tokenizer"]
    elif argv[0] == "eval":
        check_eval(step, clone, output)
    elif argv[:2] == ["study", "init"]:
        assert tomllib.loads((clone / argv[2]).read_text())["name"]
    elif argv[:2] == ["study", "plan"]:
        assert "runs" in output
    elif argv[:2] == ["study", "run"]:
        check_study_run(clone / Path(argv[2]).parent, tomllib.loads((clone / argv[2]).read_text())["name"], output)
    elif argv[:2] == ["runs", "list"]:
        assert (clone / argv[2] / "study.db").is_file(), f"{step.text}: not where `study run` wrote"
        assert output.count("finished") >= 9
    elif argv[:2] == ["runs", "export"]:
        check_export(clone / out, curves="--curves" in argv)
    elif argv[0] == "report":
        for name in ("report.html", "report.json"):
            assert (clone / argv[1] / "report" / name).is_file()
    else:
        raise AssertionError(f"no check for README command {step.text!r}: add one")


def check_eval(step: Step, clone: Path, output: str) -> None:
    """A closed-loop evaluation writes its episodes, an open-loop one its horizons."""
    run = clone / step.argv[1]
    record = json.loads((run / "record.json").read_text())
    if record["task"] == "wm":
        result = json.loads((run / "eval" / "open_loop.json").read_text())
        horizons = [int(h) for h in option(step.argv, "--horizons").split(",")]
        assert str(horizons[-1]) in json.dumps(result) and "persistence" in output
        if record.get("image_tokenizer"):  # frames: pixel-space error next to the tokenizer's ceiling
            assert "psnr_db" in json.dumps(result) and "PSNR" in output, output
        return
    written = re.search(r"wrote (\S+\.json)", output)
    assert written, output
    result = json.loads((clone / written.group(1)).read_text())
    assert "success" in json.dumps(result)
    if "--heldout-tasks" in step.argv:
        assert "door-open-v3" in output and "door-open-v3" in json.dumps(result)
    elif "--tasks" in step.argv:
        assert option(step.argv, "--tasks") in output


def check_study_run(base: Path, name: str, output: str) -> None:
    """The study writes studies/NAME next to its file, with its report; the seeded runs
    are not trained again."""
    folder = base / "studies" / name
    assert (folder / "study.db").is_file() and (folder / "report" / "report.html").is_file()
    assert re.search(r"\b9 already finished|\b9 done, 0 left", output), output
    assert "closed-loop success" in output


def check_export(file: Path, *, curves: bool) -> None:
    """The export loads in pandas with the columns `roboscale fit` reads."""
    table = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
    assert {"run_id", "loss" if not curves else "val_loss"} <= set(table.columns)
    assert table["run_id"].nunique() == 9
    if not curves:
        assert {"N", "D", "C"} <= set(table.columns)


def check_fit(step: Step, returncode: int, output: str) -> None:
    """A fit prints its table, or says in one line why it could not (FIT_OUTCOMES)."""
    assert returncode in FIT_OUTCOMES, f"{step.text} -> exit {returncode}\n{output}"
    if returncode == 0:
        assert "━" in output, f"{step.text}: no table\n{output}"
    else:
        assert "error:" in output, f"{step.text} -> exit {returncode} without saying why\n{output}"
