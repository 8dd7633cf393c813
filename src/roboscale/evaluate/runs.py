"""A training run as evaluation needs it: the right task, tied to its dataset and simulator.

Everything here reads JSON and dataset metadata only (no torch), so a missing
dataset or an uninstalled simulator is refused at once, before any model is
loaded. Each check names the problem and the fix. The run folder itself is read
and cross-checked by :func:`roboscale.runfolder.read_run_folder`.
"""

from __future__ import annotations

from pathlib import Path

from roboscale.data.dataset import Dataset, open_dataset
from roboscale.data.envs import EnvFamily, get_family
from roboscale.errors import BadInputError
from roboscale.runfolder import RunFolder


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
