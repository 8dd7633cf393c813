"""What a closed-loop evaluation will do, settled (and every bad input refused) before torch loads.

:func:`plan_policy_evaluation` reads the run folder, its dataset and the
simulator, picks the tasks and the held-out episodes, and returns a
:class:`PolicyEvaluationPlan`; :func:`roboscale.evaluate.closed_loop.run_policy_evaluation`
carries it out.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

from roboscale.errors import BadInputError
from roboscale.evaluate.episodes import EvalEpisode, plan_episodes, training_config_seeds
from roboscale.evaluate.images import Camera, run_camera
from roboscale.evaluate.runs import open_run_dataset, require_task, resolve_env, select_tasks
from roboscale.runfolder import RunFolder, read_run_folder


@dataclass(frozen=True)
class PolicyEvaluationPlan:
    """A closed-loop evaluation, ready to run."""

    run: RunFolder
    env: str
    tasks: list[str]
    task_selection: str
    """train-tasks (the default), heldout-tasks, or tasks-<crc32> for a chosen list."""
    episodes_per_task: int
    seed: int
    sample: bool
    max_steps: int
    """Episode horizon (environment steps)."""
    episodes: list[EvalEpisode]
    training_configs_excluded: int
    """Config seeds of the dataset's episodes (for these tasks) that the plan avoided."""
    notes: list[str] = field(default_factory=list)
    camera: Camera | None = None
    """The view rendered every step for a policy that sees images (None: states only)."""
    render_backend: str | None = None
    """The renderer that started for ``camera`` ("numpy", "osmesa", ...)."""

    @property
    def heldout_tasks(self) -> bool:
        return self.task_selection == "heldout-tasks"


def plan_policy_evaluation(
    run_dir: str | Path,
    *,
    tasks: str | list[str] | None = None,
    heldout_tasks: bool = False,
    episodes: int = 50,
    seed: int = 0,
    sample: bool = False,
    max_steps: int | None = None,
    env: str | None = None,
    data: str | Path | None = None,
) -> PolicyEvaluationPlan:
    """Check the run, its dataset and the simulator, and plan the episodes (see
    :func:`roboscale.evaluate.closed_loop.evaluate_policy` for the arguments)."""
    for name, value in (("episodes", episodes), ("max-steps", max_steps)):
        if value is not None and value < 1:
            raise BadInputError(f"--{name} {value}: must be >= 1")
    run = read_run_folder(run_dir)
    require_task(run, "bc")
    dataset = open_run_dataset(run, data)
    family = resolve_env(dataset, env)
    chosen = select_tasks(dataset, family, tasks, heldout_tasks)
    camera = run_camera(run, dataset)
    render_backend = None if camera is None else _start_renderer(family.name, camera)
    used = training_config_seeds(dataset)
    notes = [] if run.status == "finished" else [f"the run is {run.status}: its last checkpoint is evaluated"]
    if sample and run.tokenizers["action"].get("kind") == "continuous":
        notes.append("--sample has no effect: the run's actions are continuous, so the regression output is used")
        sample = False
    if not used:
        notes.append("the dataset records no config seeds (imported data): held-out configurations are not verified")
    return PolicyEvaluationPlan(
        run=run,
        env=family.name,
        tasks=chosen,
        task_selection=_selection_name(chosen, tasks, heldout_tasks),
        episodes_per_task=episodes,
        seed=seed,
        sample=sample,
        max_steps=max_steps or int(dataset.provenance.get("max_steps") or family.spec.max_steps),
        episodes=plan_episodes(chosen, {task: dataset.tasks.index(task) for task in chosen}, episodes, seed, used),
        training_configs_excluded=sum(len(seeds) for task, seeds in used.items() if task in chosen),
        notes=notes,
        camera=camera,
        render_backend=render_backend,
    )


def _start_renderer(family: str, camera: Camera) -> str:
    """Check (once, here) that ``family`` renders ``camera``; the backend's name. BadInputError
    names the backend tried and the package that fixes it."""
    from roboscale.data.envs.render import check_renderer

    return check_renderer(family, camera.name, camera.size)


def _selection_name(chosen: list[str], tasks, heldout: bool) -> str:
    if heldout:
        return "heldout-tasks"
    if tasks:
        return f"tasks-{zlib.crc32(','.join(chosen).encode()):08x}"
    return "train-tasks"
