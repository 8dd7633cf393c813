"""Kill soak: SIGKILL roboscale at random moments, rerun, and check nothing is lost or changed.

Four commands are run once uninterrupted (the reference outcome and duration), then get
--kills SIGKILLs of their whole process group (command and workers) between them:
``data generate`` with 2 workers (pointmass, and a small Meta-World dataset), ``train``
(a tiny pointmass run) and ``study run`` (a tiny pointmass study, 2 seeds: stacked jobs).
A kill lands uniform in [0.2 s, 90% of the reference duration]; what it left is checked
(a dataset absent or complete, a record and a checkpoint whole, the run store readable);
then the command runs again to completion (or is killed again first, as the seeded
schedule says) and must give the reference outcome: the same dataset bytes (SHA-256)
and no ``.partial`` folder; the same validation losses bit for bit and the same
``model.safetensors`` bytes; every planned study run recorded once in ``study.db``,
finished, with a bit-identical final loss. Prints a table and ``survived K/N``; exits 1
if any kill did not survive. ``*.tmp`` files left by kills are counted, not failed.

Run: python bench/kill_soak.py [--kills 20] [--seed 0] [--workdir DIR] [--keep]
(about 6 minutes on 2 idle cores: kill moments follow the measured durations).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

EARLIEST_KILL_SECONDS = 0.2
LATEST_KILL_FRACTION = 0.9
"""Kills land before this fraction of the reference duration (so that most hit a running command)."""
KILL_AGAIN_PROBABILITY = 0.3
"""Chance that a killed command is killed again before it is allowed to complete."""
COMMAND_TIMEOUT_SECONDS = 900.0
CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", "state.json")


def roboscale(*args: str) -> list[str]:
    """The CLI of whatever roboscale this interpreter imports (a fresh clone after pip install -e .)."""
    return [sys.executable, "-m", "roboscale", *args]


def tree_digest(folder: Path) -> str | None:
    """SHA-256 over every file's relative path and bytes; None when ``folder`` is absent."""
    if not folder.exists():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def leftovers(folder: Path, pattern: str) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(pattern))


class Work:
    """One command under the soak: how to run it in a folder, and what its outcome is."""

    kind = ""

    def __init__(self, name: str, label: str) -> None:
        self.name = name  # its folder in the work folder
        self.label = label
        self.reference = None  # outcome of the uninterrupted run
        self.reference_seconds = 0.0

    def prepare(self, folder: Path) -> None:
        folder.mkdir(parents=True)

    def command(self, folder: Path) -> list[str]:
        raise NotImplementedError

    def outcome(self, folder: Path):
        """What must equal the reference once the command completed."""
        raise NotImplementedError

    def after_kill(self, folder: Path) -> list[str]:
        """Problems in what a kill left on disk (empty: none)."""
        return []

    def found(self, folder: Path) -> str:
        """What a kill found on disk, in a few words (where in the work it landed)."""
        return ""

    def after_completion(self, folder: Path) -> list[str]:
        try:
            outcome = self.outcome(folder)
        except (OSError, KeyError, ValueError, sqlite3.Error) as error:
            return [f"no outcome to compare after the rerun: {error!r}"]
        differs = f"outcome differs from the reference: {json.dumps(outcome, default=str)[:200]}"
        return [] if outcome == self.reference else [differs]

    def completed(self, folder: Path) -> bool:
        """Whether the command has nothing left to do in ``folder`` and would refuse to run again."""
        return False


class DataGenerate(Work):
    kind = "data generate"

    def __init__(self, name: str, label: str, options: list[str]) -> None:
        super().__init__(name, label)
        self.options = options

    def command(self, folder: Path) -> list[str]:
        return roboscale("data", "generate", *self.options, "--workers", "2", "--out", str(folder / "dataset"))

    def outcome(self, folder: Path) -> str | None:
        return tree_digest(folder / "dataset")

    def after_kill(self, folder: Path) -> list[str]:
        digest = self.outcome(folder)
        if digest is None or digest == self.reference:
            return []
        return ["after the kill the dataset folder exists but differs from the reference (half-written?)"]

    def after_completion(self, folder: Path) -> list[str]:
        partial = leftovers(folder, "*.partial")
        return super().after_completion(folder) + ([f"left behind: {', '.join(partial)}"] if partial else [])

    def completed(self, folder: Path) -> bool:
        return (folder / "dataset").exists()  # a rerun would refuse to overwrite it

    def found(self, folder: Path) -> str:
        if self.completed(folder):
            return "complete dataset"
        partial = list(folder.glob("*.partial"))
        files = sum(1 for part in partial for _ in part.rglob("*.parquet"))
        return f"{files} parquet files in .partial" if partial else "no dataset yet"


class Train(Work):
    kind = "train"

    def __init__(self, name: str, label: str, dataset: Path, checkpoint_option: list[str]) -> None:
        super().__init__(name, label)
        self.dataset = dataset
        self.checkpoint_option = checkpoint_option

    def command(self, folder: Path) -> list[str]:
        settings = ["--data", str(self.dataset), "--task", "bc", "--tokenizer", "uniform:32", "--d-model", "16"]
        length = ["--flops", "6e9", "--threads", "1", *self.checkpoint_option]
        return roboscale("train", *settings, *length, "--out", str(folder / "run"))

    def outcome(self, folder: Path) -> dict:
        record = json.loads((folder / "run" / "record.json").read_text())
        weights = folder / "run" / "checkpoint" / "model.safetensors"
        return {
            "status": record["status"],
            "val_losses": [point["val_loss"].hex() for point in record["learning_curve"]],
            "final": {name: value.hex() for name, value in record["final"].items() if isinstance(value, float)},
            "model.safetensors": hashlib.sha256(weights.read_bytes()).hexdigest(),
        }

    def after_kill(self, folder: Path) -> list[str]:
        run = folder / "run"
        problems = []
        if (run / "record.json").exists():
            try:
                json.loads((run / "record.json").read_text())
            except ValueError:
                problems.append("record.json is not valid JSON after the kill")
        checkpoint = run / "checkpoint"
        missing = [name for name in CHECKPOINT_FILES if not (checkpoint / name).exists()]
        if checkpoint.exists() and missing:
            problems.append(f"checkpoint/ lacks {', '.join(missing)} after the kill")
        return problems

    def found(self, folder: Path) -> str:
        try:
            curve = json.loads((folder / "run" / "record.json").read_text())["learning_curve"]
        except (OSError, ValueError):
            return "no record yet (starting, tokenizing)"
        return f"record at step {curve[-1]['step'] if curve else 0}"


class StudyRun(Work):
    kind = "study run"

    def prepare(self, folder: Path) -> None:
        super().prepare(folder)
        (folder / "study.toml").write_text(STUDY_FILE.format(out=folder / "study"))

    def command(self, folder: Path) -> list[str]:
        return roboscale("study", "run", str(folder / "study.toml"), "--bootstrap", "0")

    def outcome(self, folder: Path) -> dict:
        """run_id -> (times recorded, status, final loss as hex)."""
        with sqlite3.connect(folder / "study" / "study.db") as connection:
            rows = connection.execute(
                "SELECT run_id, COUNT(*), MAX(status), MAX(loss) FROM runs GROUP BY run_id ORDER BY run_id"
            ).fetchall()
        return {run_id: (count, status, None if loss is None else loss.hex()) for run_id, count, status, loss in rows}

    def after_kill(self, folder: Path) -> list[str]:
        if not (folder / "study" / "study.db").exists():
            return []
        try:
            runs = self.outcome(folder)
        except sqlite3.Error as error:
            return [f"study.db unreadable after the kill: {error}"]
        twice = [run_id for run_id, (count, _, _) in runs.items() if count != 1]
        return [f"runs recorded more than once: {', '.join(twice)}"] if twice else []

    def found(self, folder: Path) -> str:
        if not (folder / "study" / "study.db").exists():  # (connecting would create it)
            return "no run store yet (data, plan)"
        statuses = [status for _, status, _ in self.outcome(folder).values()]
        return f"{statuses.count('finished')}/{len(statuses)} runs finished"

    def after_completion(self, folder: Path) -> list[str]:
        # The reference itself must be a clean study, or equality with it proves nothing.
        unfinished = ", ".join(run_id for run_id, (_, status, _) in self.reference.items() if status != "finished")
        return [f"the reference study did not finish {unfinished}"] if unfinished else super().after_completion(folder)


STUDY_FILE = """\
name = "soak"
out = "{out}"
data = {{ generate = {{ env = "pointmass", episodes = 120, quality = "noise:0.1", seed = 0 }} }}
train = {{ eval_points = 4, eval_windows = 64, batch_size = 32 }}
executor = {{ workers = 2, threads = 1 }}
[sweep]
tasks = ["bc"]
tokenizers = ["uniform:32"]
widths = [8, 16]
budgets = [1e9, 2e9]
sizes_per_budget = 2
seeds = [0, 1]
max_epochs = 100.0
min_steps = 10
"""
"""Eight runs, as four stacked jobs of two seeds each, on two workers."""


def checkpoint_option() -> list[str]:
    """``--checkpoint-seconds 0`` where the CLI has it: a checkpoint at every evaluation, so a
    killed run resumes instead of starting over (the default, 60 s, is longer than a run)."""
    wide = {**os.environ, "COLUMNS": "200"}  # rich would otherwise cut long option names
    result = subprocess.run(roboscale("train", "--help"), check=False, capture_output=True, text=True, env=wide)
    return ["--checkpoint-seconds", "0"] if "--checkpoint-seconds" in result.stdout else []


def start(work: Work, folder: Path) -> subprocess.Popen:
    """The command in a session of its own (so that its whole process group can be killed)."""
    command = work.command(folder)
    with open(folder / "log.txt", "a") as log:  # the child keeps its own copy of the file
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)


def run_to_end(work: Work, folder: Path) -> list[str]:
    """Run the command to completion; problems if it failed."""
    code = start(work, folder).wait(timeout=COMMAND_TIMEOUT_SECONDS)
    return [] if code == 0 else [f"the rerun exited {code} (see {folder / 'log.txt'})"]


def run_and_kill(work: Work, folder: Path, moment: float) -> int | None:
    """Start the command and SIGKILL its process group ``moment`` seconds later; its exit
    code if it finished first, else None."""
    process = start(work, folder)
    try:
        return process.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        pass
    os.killpg(process.pid, signal.SIGKILL)  # the command and every worker it started
    process.wait()
    for _ in range(600):  # until no member of the group is left (at most 30 s)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return None


@dataclass
class Kill:
    work: str
    moment: float
    problems: list[str] = field(default_factory=list)


@dataclass
class Trials:
    """A command's folders: one per attempt, run until it completes."""

    work: Work
    root: Path
    count: int = 0
    temporary_files: int = 0

    def fresh(self) -> Path:
        self.count += 1
        folder = self.root / f"trial-{self.count:02d}"
        self.work.prepare(folder)
        return folder


def soak_one(work: Work, trials: Trials, schedule: list[tuple[float, bool]]) -> list[Kill]:
    """Deliver the kills in ``schedule`` ((fraction of the kill window, kill again before
    completing)) to ``work``, rerunning to completion after each, and check each outcome."""
    window = max(LATEST_KILL_FRACTION * work.reference_seconds - EARLIEST_KILL_SECONDS, 0.0)
    kills, pending = [], []
    folder = None

    def close(completed_in: Path, problems: list[str]) -> None:
        """The command completed in ``completed_in``: judge the kills it survived."""
        problems = problems + work.after_completion(completed_in)
        for kill in pending:
            kill.problems += problems
        trials.temporary_files += len(leftovers(completed_in, "*.tmp"))
        pending.clear()

    for fraction, kill_again in schedule:
        moment = EARLIEST_KILL_SECONDS + fraction * window
        folder = folder or trials.fresh()
        while True:
            if work.completed(folder):  # it finished as it was killed
                close(folder, [])
                folder = trials.fresh()
            code = run_and_kill(work, folder, moment)
            if code is None:
                break
            # It finished before its kill moment: that completes the trial; try again earlier.
            print(f"  {work.label} finished before its kill at {moment:.2f} s: trying earlier", flush=True)
            close(folder, [] if code == 0 else [f"a rerun exited {code} (see {folder / 'log.txt'})"])
            folder = trials.fresh()
            moment = max(EARLIEST_KILL_SECONDS, moment / 2)
        kill = Kill(work.label, moment, work.after_kill(folder))
        kills.append(kill)
        pending.append(kill)
        verdict = "ok" if not kill.problems else "; ".join(kill.problems)
        print(f"  killed {work.label} at {moment:.2f} s ({folder.name}, {work.found(folder)}): {verdict}", flush=True)
        if kill_again:
            continue
        close(folder, [] if work.completed(folder) else run_to_end(work, folder))
        folder = None
    return kills


def make_schedule(works: list[Work], kills: int, seed: int) -> dict[str, list[tuple[float, bool]]]:
    """Kill i goes to command i mod 4, at a uniform fraction of its kill window; a kill is
    followed by another before completion with probability KILL_AGAIN_PROBABILITY."""
    rng = random.Random(seed)
    schedule: dict[str, list[tuple[float, bool]]] = {work.label: [] for work in works}
    for index in range(kills):
        schedule[works[index % len(works)].label].append((rng.random(), rng.random() < KILL_AGAIN_PROBABILITY))
    for entries in schedule.values():
        if entries:  # the last kill of a command is always followed by a completing run
            entries[-1] = (entries[-1][0], False)
    return schedule


def reference(work: Work, root: Path) -> None:
    folder = root / "reference"
    work.prepare(folder)
    began = time.perf_counter()
    problems = run_to_end(work, folder)
    work.reference_seconds = time.perf_counter() - began
    if problems:
        raise SystemExit(f"the reference run of {work.label} failed: {problems[0]}")
    work.reference = work.outcome(folder)
    print(f"  reference {work.label}: {work.reference_seconds:.1f} s", flush=True)


def soak(workdir: Path, kills: int, seed: int) -> tuple[list[Kill], list[Trials]]:
    # Small parquet files, so that a kill often finds some written and others not.
    small_files = ["--file-size-mb", "0.02"]
    pointmass_options = ["--episodes", "120", "--quality", "noise:0.1", *small_files]
    pointmass = DataGenerate("data-pointmass", "pointmass, 2 workers", pointmass_options)
    metaworld_options = ["--env", "metaworld", "--tasks", "reach-v3", "--episodes", "6", *small_files]
    metaworld = DataGenerate("data-metaworld", "metaworld reach, 2 workers", metaworld_options)
    dataset = workdir / pointmass.name / "reference" / "dataset"
    train = Train("train", "pointmass d16, 6e9 FLOPs", dataset, checkpoint_option())
    study = StudyRun("study", "pointmass, 8 runs, 2 seeds")
    works = [pointmass, metaworld, train, study]
    schedule = make_schedule(works, kills, seed)
    print(f"kill soak: {kills} kills, seed {seed}, in {workdir}")
    for work in works:
        reference(work, workdir / work.name)
    if not train.checkpoint_option:
        print("  (train has no --checkpoint-seconds: a killed tiny run starts over instead of resuming)")
    results, all_trials = [], []
    for work in works:
        trials = Trials(work, workdir / work.name)
        results += soak_one(work, trials, schedule[work.label])
        all_trials.append(trials)
    return results, all_trials


def print_table(kills: list[Kill], all_trials: list[Trials]) -> int:
    """The table; returns how many kills survived."""
    header = f"{'kind of work':15s} {'command':28s} {'kills':>5s} {'survived':>8s} {'trials':>6s} {'ref s':>6s}"
    print(f"\n{header} {'.tmp left':>9s}")
    for trials in all_trials:
        work = trials.work
        mine = [kill for kill in kills if kill.work == work.label]
        survived = sum(not kill.problems for kill in mine)
        counts = f"{len(mine):5d} {survived:8d} {trials.count:6d}"
        print(f"{work.kind:15s} {work.label:28s} {counts} {work.reference_seconds:6.1f} {trials.temporary_files:9d}")
    total = sum(not kill.problems for kill in kills)
    print(f"survived {total}/{len(kills)}")
    for kill in kills:
        if kill.problems:
            print(f"  FAILED {kill.work} killed at {kill.moment:.2f} s: {'; '.join(kill.problems)}")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill schedule")
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder at the end")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error(f"--kills {args.kills}: must be >= 1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="roboscale-kill-soak-"))
    if workdir.exists() and any(workdir.iterdir()):
        parser.error(f"--workdir {workdir} is not empty: give a new or empty folder")
    workdir.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    try:
        kills, all_trials = soak(workdir.resolve(), args.kills, args.seed)
        survived = print_table(kills, all_trials)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{time.perf_counter() - began:.0f} s in all" + (f"; kept {workdir}" if args.keep else ""))
    print(json.dumps({"kills": len(kills), "survived": survived, "seed": args.seed}))
    sys.exit(0 if survived == len(kills) else 1)


if __name__ == "__main__":
    main()
