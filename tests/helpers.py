"""Helpers shared by the tests: the real CLI in a subprocess, and the tiny study file.

Import as ``from tests.helpers import run_cli`` (pyproject puts the repository root on
``sys.path``), or take the ``run_cli`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from filelock import FileLock

import roboscale

Built = TypeVar("Built")

SOURCE = Path(roboscale.__file__).resolve().parents[1]
"""The folder holding the ``roboscale`` package under test (a checkout's src/)."""


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``python -m roboscale`` subprocess: this process's, with the
    package under test on PYTHONPATH (so a worktree tests its own code even when the
    venv's editable install points at another checkout), plus ``extra``. A PYTHONPATH in
    ``extra`` goes first (e.g. a folder of stub modules), not instead."""
    extra = dict(extra or {})
    paths = [extra.pop("PYTHONPATH", ""), str(SOURCE), os.environ.get("PYTHONPATH", "")]
    parts = [part for path in paths for part in path.split(os.pathsep) if part]
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(dict.fromkeys(parts))}


def cli_command(*args) -> list[str]:
    """The argv of ``python -m roboscale ARGS`` with this interpreter."""
    return [sys.executable, "-m", "roboscale", *(str(arg) for arg in args)]


def run_cli(*args, cwd=None, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``roboscale ARGS`` as a user would and wait for it (at most ``timeout`` seconds).

    Returns the finished process: ``returncode``, ``stdout`` and ``stderr`` (text).
    ``env`` adds or overrides variables of :func:`cli_env`."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=cli_env(env)
    )


def start_cli(*args, **popen) -> subprocess.Popen:
    """Start ``roboscale ARGS`` in its own process group (so a test can SIGKILL it and
    its workers together) without waiting; stdout is dropped, stderr kept as text."""
    return subprocess.Popen(
        cli_command(*args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=cli_env(),
        **popen,
    )


TINY_BUDGETS = [2e9, 4e9, 8e9]
"""The tiny studies' compute budgets (FLOPs), three model sizes each."""

TINY_DATA = {"env": "pointmass", "episodes": 120, "quality": "noise:0.1", "seed": 0}
"""The tiny studies' ``[data] generate`` table: every tiny study shares this one dataset."""


SEEDED_CHANGES = {"seeds": [0, 1], "budgets": TINY_BUDGETS[:2]}
"""Sweep changes that make the tiny study's seeded variant: two seeds per run at the two
smaller budgets (12 runs, trained as 6 stacked jobs of two models)."""


def tiny_study_dict(out, name: str = "tiny", **sweep_changes) -> dict:
    """A study small enough for tests: pointmass, bc, three budgets (FLOPs) x three sizes
    (9 runs of a few seconds each), writing into the folder ``out``."""
    sweep = {
        "tasks": ["bc"],
        "tokenizers": ["uniform:32"],
        "widths": [8, 16, 24],
        "budgets": list(TINY_BUDGETS),
        "sizes_per_budget": 3,
        "max_epochs": 100.0,
        "min_steps": 10,
    }
    sweep.update(sweep_changes)
    return {
        "name": name,
        "out": str(out),
        "data": {"generate": dict(TINY_DATA)},
        "sweep": sweep,
        "train": {"eval_points": 6, "eval_windows": 128, "batch_size": 32},
        "executor": {"workers": 2, "threads": 1},
    }


def study_toml(raw: dict) -> str:
    """The TOML text of a study dict (tables one level deep, inline tables inside)."""
    lines = [f"{key} = {toml_value(value)}" for key, value in raw.items() if not isinstance(value, dict)]
    for section, table in raw.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(v)}" for key, v in value.items()) + " }"
    return repr(value)


def seed_dataset(dataset: Path, study_folder: Path) -> None:
    """Copy the shared tiny dataset into a new study folder, where the study finds it
    (same ``[data] generate`` settings) instead of generating it again."""
    target = Path(study_folder) / "data"
    if not target.exists():
        shutil.copytree(dataset, target)


def shared_folder(tmp_path_factory) -> Path:
    """The folder every pytest-xdist worker of this run shares (the run's own base folder
    without xdist): worker base folders are its children, and no other run uses it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Built]) -> Built:
    """``build(folder)``, made once per test run rather than once per xdist worker: the
    first worker to ask builds into ``folder`` (new, named ``name``, in the run's shared
    folder) under a file lock and pickles the result; the others wait and unpickle it.
    Use it for session fixtures that take seconds to build, and treat them as read-only."""
    root = shared_folder(tmp_path_factory) / "built-once"
    root.mkdir(exist_ok=True)
    saved = root / f"{name}.pickle"
    with FileLock(str(root / f"{name}.lock")):
        if saved.exists():
            return pickle.loads(saved.read_bytes())
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)  # what a build that failed left
        folder.mkdir()
        value = build(folder)
        partial = saved.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(value))
        partial.replace(saved)
        return value
