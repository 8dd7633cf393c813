"""Closed-loop evaluation of a behaviour-cloning run: success, return and length per task.

:func:`evaluate_policy` rolls the run's policy out in the simulator its dataset
was generated with, on initial configurations the dataset does not contain (see
:mod:`roboscale.evaluate.episodes`), and summarises per task: success rate with a
Wilson 95% interval, mean episode return and length. The result is written to
``RUN/eval/closed_loop-<tasks>-<decoding>-seed<S>-ep<N>.json`` (atomically) and
returned as a :class:`PolicyEvaluation`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from roboscale.errors import BadInputError
from roboscale.evaluate.plan import PolicyEvaluationPlan, plan_policy_evaluation
from roboscale.evaluate.policy import RunPolicySource, TransformerPolicy, load_model
from roboscale.evaluate.rollout import EpisodeResult, RolloutTiming, run_episodes
from roboscale.evaluate.stats import wilson_interval
from roboscale.files import write_json_atomic


@dataclass(frozen=True)
class TaskSummary:
    """Closed-loop results of one task (or, for the mean, of all episodes pooled)."""

    task: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    """Wilson 95% interval of the success rate."""
    ci_high: float
    mean_return: float
    """Mean sum of rewards per episode (the simulator's reward units)."""
    mean_length: float
    """Mean environment steps per episode (an episode ends at its first success)."""
    failures: int
    """Episodes cut short by a non-finite action or observation (counted as unsuccessful)."""

    @classmethod
    def of(cls, task: str, results: list[EpisodeResult]) -> TaskSummary:
        successes = sum(result.success for result in results)
        low, high = wilson_interval(successes, len(results))
        return cls(
            task=task,
            episodes=len(results),
            successes=successes,
            success_rate=successes / len(results),
            ci_low=low,
            ci_high=high,
            mean_return=float(np.mean([result.episode_return for result in results])),
            mean_length=float(np.mean([result.length for result in results])),
            failures=sum(result.failure is not None for result in results),
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PolicyEvaluation:
    """A closed-loop evaluation of one run: settings, per-task summaries, every episode, timing."""

    run: str
    checkpoint_step: int
    run_status: str
    env: str
    tasks: list[str]
    task_selection: str
    """train-tasks, heldout-tasks (never trained on) or tasks-<crc32> for a chosen list."""
    episodes_per_task: int
    seed: int
    decoding: str
    """greedy (argmax / regression output) or sample."""
    max_steps: int
    workers: int
    envs: int
    """Environments per batched policy call."""
    per_task: list[TaskSummary]
    mean: TaskSummary
    """All episodes pooled (with equal episodes per task: the mean of the per-task rates)."""
    episodes: list[EpisodeResult]
    timing: RolloutTiming
    wall_seconds: float
    """The whole rollout phase: worker start-up and simulator construction included."""
    training_configs_excluded: int
    """Config seeds of the dataset's episodes that evaluation avoided (0 for imported data)."""
    notes: list[str] = field(default_factory=list)
    path: str | None = None
    """Where the JSON was written."""
    observation: str = "state"
    """What the policy sees: state, image or image+state."""
    camera: dict | None = None
    """For a policy that sees images: {"camera", "size", "backend"} of the frames rendered."""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["per_task"] = [summary.to_dict() for summary in self.per_task]
        out["mean"] = self.mean.to_dict()
        out["episodes"] = [result.to_dict() for result in self.episodes]
        out["timing"] = self.timing.to_dict()
        return out


Progress = Callable[[EpisodeResult, int], None]
"""progress(finished episode, episodes planned)."""
StepsProgress = Callable[[int], None]
"""steps_progress(environment steps taken since the last call): 0 once the policy has
loaded, then as the rollouts go (see :func:`~roboscale.evaluate.rollout.run_episodes`)."""


def evaluate_policy(
    run_dir: str | Path,
    *,
    tasks: str | list[str] | None = None,
    heldout_tasks: bool = False,
    episodes: int = 50,
    seed: int = 0,
    workers: int = 1,
    envs: int = 25,
    sample: bool = False,
    max_steps: int | None = None,
    env: str | None = None,
    data: str | Path | None = None,
    device: str = "auto",
    write: bool = True,
    progress: Progress | None = None,
    steps_progress: StepsProgress | None = None,
) -> PolicyEvaluation:
    """Roll out a behaviour-cloning run's policy and summarise success, return and length.

    ``tasks``: names or a set (default: the tasks the run was trained on);
    ``heldout_tasks``: the dataset's held-out tasks instead. ``episodes`` per task, on
    held-out configurations drawn from ``seed``; ``envs`` environments per batched
    policy call; ``workers`` processes (results do not depend on it); ``sample`` draws
    discrete actions instead of taking the argmax; ``max_steps``: the horizon (default:
    the dataset's). ``env`` must name the dataset's simulator if given; ``data`` replaces
    the dataset path recorded in the run. Raises BadInputError, before any rollout, for a
    run or setting that cannot be evaluated. ``write``: save the JSON under ``RUN/eval/``. ``progress`` is called as each
    episode finishes, ``steps_progress`` as environment steps are taken.
    """
    plan = plan_policy_evaluation(
        run_dir,
        tasks=tasks,
        heldout_tasks=heldout_tasks,
        episodes=episodes,
        seed=seed,
        sample=sample,
        max_steps=max_steps,
        env=env,
        data=data,
    )
    return run_policy_evaluation(
        plan, workers=workers, envs=envs, device=device, write=write, progress=progress, steps_progress=steps_progress
    )


def run_policy_evaluation(
    plan: PolicyEvaluationPlan,
    *,
    workers: int = 1,
    envs: int = 25,
    device: str = "auto",
    write: bool = True,
    progress: Progress | None = None,
    steps_progress: StepsProgress | None = None,
) -> PolicyEvaluation:
    """Carry out a plan from :func:`~roboscale.evaluate.plan.plan_policy_evaluation`."""
    for name, value in (("workers", workers), ("envs", envs)):
        if value < 1:
            raise BadInputError(f"--{name} {value}: must be >= 1")
    started = time.perf_counter()
    policy = TransformerPolicy(load_model(plan.run, device), plan.sample)  # fails here, before workers start
    if steps_progress is not None:
        steps_progress(0)

    def report(result: EpisodeResult) -> None:
        if progress is not None:
            progress(result, len(plan.episodes))

    results, timing = run_episodes(
        RunPolicySource(str(plan.run.path), device, plan.sample),
        plan.env,
        plan.episodes,
        max_steps=plan.max_steps,
        envs=envs,
        workers=workers,
        camera=plan.camera,
        policy=policy if workers <= 1 else None,
        on_episode=report,
        on_steps=steps_progress,
    )
    evaluation = PolicyEvaluation(
        run=str(plan.run.path),
        checkpoint_step=plan.run.checkpoint_step,
        run_status=plan.run.status,
        env=plan.env,
        tasks=plan.tasks,
        task_selection=plan.task_selection,
        episodes_per_task=plan.episodes_per_task,
        seed=plan.seed,
        decoding="sample" if plan.sample else "greedy",
        max_steps=plan.max_steps,
        workers=workers,
        envs=envs,
        per_task=[TaskSummary.of(task, [r for r in results if r.task == task]) for task in plan.tasks],
        mean=TaskSummary.of("mean", results),
        episodes=results,
        timing=timing,
        wall_seconds=time.perf_counter() - started,
        training_configs_excluded=plan.training_configs_excluded,
        notes=list(plan.notes),
        observation=str(plan.run.config.get("observation") or "state"),
        camera=None
        if plan.camera is None
        else {"camera": plan.camera.name, "size": plan.camera.size, "backend": plan.render_backend},
    )
    if write:
        evaluation.path = str(plan.run.layout.evaluations / result_name(evaluation))
        write_json_atomic(Path(evaluation.path), evaluation.to_dict())
    return evaluation


def result_name(evaluation: PolicyEvaluation) -> str:
    """The JSON file name of an evaluation, from the settings that change its numbers."""
    return (
        f"closed_loop-{evaluation.task_selection}-{evaluation.decoding}-seed{evaluation.seed}"
        f"-ep{evaluation.episodes_per_task}.json"
    )
