"""A training run folder as evaluation needs it: read, cross-checked, tied to its dataset and simulator.

Everything here reads JSON and dataset metadata only (no torch), so a bad run
folder, a missing dataset or an uninstalled simulator is refused at once, before
any model is loaded. Each check names the problem and the fix.

The files of a run folder (written by :func:`roboscale.train.train`) vouch for
each other: ``record.json`` repeats ``config.json`` and the tokenizer shapes of
``tokenizers.json``, and the checkpoint's ``state.json`` holds the dataset
fingerprint and the learning curve up to the checkpoint, which must agree with
the record's. A folder that mixes files of two runs (another task, another
tokenizer, a checkpoint copied in) fails one of these checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from roboscale.data.dataset import Dataset, open_dataset
from roboscale.data.envs import EnvFamily, get_family
from roboscale.errors import BadInputError
from roboscale.tokenize import TokenizerSpec

CHECKPOINT_FILES = ("model.safetensors", "state.json")


@dataclass(frozen=True)
class RunFolder:
    """The files of a training run, read and checked against each other (no weights loaded)."""

    path: Path
    config: dict
    """config.json: the TrainConfig."""
    record: dict
    """record.json: the run record."""
    tokenizers: dict
    """tokenizers.json: ``state`` and ``action`` Tokenizer dicts."""
    checkpoint_state: dict
    """checkpoint/state.json: step, learning curve, dataset fingerprint."""

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def checkpoint_step(self) -> int:
        return int(self.checkpoint_state.get("step", 0))

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown"))

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint"


def read_run_folder(path: str | Path) -> RunFolder:
    """Read and cross-check a run folder; BadInputError for anything that cannot be evaluated."""
    path = Path(path)
    if not path.is_dir():
        raise BadInputError(f"run folder {path} not found: pass the --out folder of a `roboscale train` run")
    if not (path / "config.json").exists():
        raise BadInputError(f"{path} is not a run folder (no config.json): pass the --out folder of `roboscale train`")
    missing = [name for name in CHECKPOINT_FILES if not (path / "checkpoint" / name).exists()]
    if missing:
        raise BadInputError(
            f"{path} has no checkpoint (checkpoint/{missing[0]} is missing): train the run first, "
            f"or resume it with the same `roboscale train ... --out {path}` command"
        )
    run = RunFolder(
        path=path,
        config=_read_json(path / "config.json"),
        record=_read_json(path / "record.json"),
        tokenizers=_read_json(path / "tokenizers.json"),
        checkpoint_state=_read_json(path / "checkpoint" / "state.json"),
    )
    _check_record(run)
    _check_tokenizers(run)
    _check_checkpoint_state(run)
    return run


def require_task(run: RunFolder, task: str) -> None:
    """Refuse a run of the other task (a world model where a policy is needed, or back)."""
    if run.task == task:
        return
    if task == "bc":
        raise BadInputError(
            f"{run.path} is a world-model run (task {run.task}): closed-loop evaluation needs a behaviour-cloning "
            f"run (task bc); evaluate a world model open loop (roboscale eval {run.path} --mode open-loop)"
        )
    raise BadInputError(
        f"{run.path} is a behaviour-cloning run (task {run.task}): open-loop prediction needs a world-model run "
        f"(task wm); evaluate a policy closed loop (roboscale eval {run.path} --mode closed-loop)"
    )


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise BadInputError(f"{path} is missing: the run folder is incomplete; train the run again")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path} is not valid JSON ({error}): the run folder is damaged; train again") from None
    if not isinstance(payload, dict):
        raise BadInputError(f"{path} holds a {type(payload).__name__}, not an object: the run folder is damaged")
    return payload


def _mixed(run: RunFolder, detail: str) -> BadInputError:
    return BadInputError(f"{run.path}: {detail}: the folder mixes files of two runs; train the run again")


def _check_record(run: RunFolder) -> None:
    if run.record.get("config") != run.config:
        changed = sorted(
            key
            for key in set(run.config) | set(run.record.get("config") or {})
            if run.config.get(key) != (run.record.get("config") or {}).get(key)
        )
        raise _mixed(run, f"record.json and config.json disagree on {', '.join(changed) or 'the configuration'}")
    if run.task not in ("bc", "wm"):
        raise BadInputError(f"{run.path}/config.json: task {run.task!r} is neither bc nor wm")
    if not isinstance(run.record.get("model"), dict):
        raise _mixed(run, "record.json has no model shape")


def _expected_specs(config: dict) -> dict[str, TokenizerSpec]:
    """The tokenizer specs a config asks for (actions default to the state kind and bins)."""
    state = TokenizerSpec.parse(config["tokenizer"])
    action_text = config.get("action_tokenizer")
    action = TokenizerSpec.parse(action_text) if action_text else TokenizerSpec(state.kind, state.bins, None)
    return {"state": state, "action": action}


def _check_tokenizers(run: RunFolder) -> None:
    for stream, spec in _expected_specs(run.config).items():
        saved = run.tokenizers.get(stream)
        if not isinstance(saved, dict):
            raise _mixed(run, f"tokenizers.json has no {stream} tokenizer")
        saved_spec = TokenizerSpec(saved.get("kind"), int(saved.get("bins", 0)), None)
        tokens_differ = spec.tokens is not None and int(saved.get("tokens", 0)) != spec.tokens
        if (saved_spec.kind, saved_spec.bins) != (spec.kind, spec.bins) or tokens_differ:
            raise _mixed(
                run,
                f"tokenizers.json holds a {saved_spec}@{saved.get('tokens')} {stream} tokenizer but config.json "
                f"asks for {spec}",
            )
        recorded = (run.record.get("tokenizers") or {}).get(stream) or {}
        for key in ("kind", "bins", "tokens"):
            if key in recorded and recorded[key] != saved.get(key):
                raise _mixed(run, f"tokenizers.json and record.json disagree on the {stream} tokenizer's {key}")


def _check_checkpoint_state(run: RunFolder) -> None:
    state, record = run.checkpoint_state, run.record
    fingerprint = (record.get("dataset") or {}).get("fingerprint")
    if fingerprint and state.get("dataset_fingerprint") not in (None, fingerprint):
        raise _mixed(run, "the checkpoint was trained on another dataset than record.json names")
    # The checkpoint's learning curve is a prefix of the record's (the record is
    # written at every evaluation, the checkpoint at most every checkpoint_seconds).
    saved = [(point.get("step"), point.get("val_loss")) for point in state.get("curve", [])]
    recorded = [(point.get("step"), point.get("val_loss")) for point in record.get("learning_curve", [])]
    if saved != recorded[: len(saved)]:
        raise _mixed(
            run, "the checkpoint's learning curve differs from record.json's (the checkpoint is another run's)"
        )


# -- the run's dataset and simulator --------------------------------------------------


def open_run_dataset(run: RunFolder, data: str | Path | None = None) -> Dataset:
    """The dataset the run was trained on (``data`` overrides its recorded path), checked
    by fingerprint and dimensions."""
    recorded = (run.record.get("dataset") or {}).get("path") or run.config["data"]
    candidates = [Path(data)] if data is not None else [Path(recorded), Path(run.config["data"])]
    path = next((p for p in candidates if p.is_dir()), None)
    if path is None:
        raise BadInputError(
            f"the dataset of run {run.path} ({candidates[0]}) is not found: pass the dataset it was trained on "
            "with --data"
        )
    dataset = open_dataset(path)
    fingerprint = (run.record.get("dataset") or {}).get("fingerprint")
    if fingerprint and dataset.fingerprint() != fingerprint:
        raise BadInputError(
            f"{path} is not the dataset run {run.path} was trained on (its fingerprint differs): pass the original "
            "with --data"
        )
    for stream, feature in (("state", "observation.state"), ("action", "action")):
        dims = int(run.tokenizers[stream]["dims"])
        if dataset.features[feature].size != dims:
            raise BadInputError(
                f"{path}: {feature} has {dataset.features[feature].size} dimensions but the run's {stream} "
                f"tokenizer expects {dims}: pass the dataset the run was trained on with --data"
            )
    n_tasks = int(run.record["model"].get("n_tasks", 0))
    if n_tasks != max(len(dataset.tasks), 1):
        raise BadInputError(
            f"{path} lists {len(dataset.tasks)} tasks but the run's model knows {n_tasks}: pass the dataset the run "
            "was trained on with --data"
        )
    return dataset


def dataset_env(dataset: Dataset) -> str | None:
    """The simulator a dataset was generated with (None for imported data)."""
    return (dataset.provenance.get("spec") or {}).get("env")


def resolve_env(dataset: Dataset, env: str | None) -> EnvFamily:
    """The simulator to evaluate in: the dataset's own, and ``env`` only if it names the same one.

    Raises BadInputError when ``env`` differs from the dataset's, when neither is known,
    when the simulator is not installed, or when its spaces do not match the data.
    """
    recorded = dataset_env(dataset)
    if env is not None and recorded is not None and env != recorded:
        raise BadInputError(
            f"--env {env}: the run's dataset was generated in {recorded}, and a policy can only be evaluated in the "
            f"simulator it was trained on; drop --env or pass --env {recorded}"
        )
    name = env or recorded
    if name is None:
        raise BadInputError(
            f"{dataset.root} records no simulator (imported data): pass --env with the simulator it came from"
        )
    family = get_family(name)
    state_dim, action_dim = dataset.features["observation.state"].size, dataset.features["action"].size
    if (family.spec.state_dim, family.spec.action_dim) != (state_dim, action_dim):
        raise BadInputError(
            f"--env {name} has {family.spec.state_dim}-dim states and {family.spec.action_dim}-dim actions but "
            f"{dataset.root} has {state_dim} and {action_dim}: pass the simulator the data came from"
        )
    return family


def select_tasks(dataset: Dataset, family: EnvFamily, tasks: str | list[str] | None, heldout: bool) -> list[str]:
    """Tasks to evaluate: ``tasks`` (names or a set like mt10), the dataset's held-out
    tasks, or by default the tasks the run was trained on."""
    by_split = dataset.provenance.get("tasks_by_split") or {"train": list(dataset.tasks)}
    if heldout:
        if tasks:
            raise BadInputError("give --tasks or --heldout-tasks, not both")
        if not by_split.get("heldout_tasks"):
            raise BadInputError(
                f"{dataset.root} has no held-out tasks: generate data with --heldout-tasks, or evaluate with --tasks"
            )
        return list(by_split["heldout_tasks"])
    if not tasks:
        return list(by_split["train"])
    selection = tasks if isinstance(tasks, str) else ",".join(tasks)
    names = family.task_names(selection)
    unknown = [name for name in names if name not in dataset.tasks]
    if unknown:
        raise BadInputError(
            f"task(s) {', '.join(unknown)} are not in the run's dataset, so the policy has no task id for them: "
            f"choose from {', '.join(dataset.tasks)}"
        )
    return names
