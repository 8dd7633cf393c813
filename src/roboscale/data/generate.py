"""Generate demonstration datasets with scripted experts: amount, quality and diversity as knobs.

Every episode is fully determined by ``(seed, split, ordinal)``: its task, initial
configuration and noise come from seeds derived from those three numbers alone.
So the same seed gives byte-identical files whatever the number of workers, and a
smaller dataset is a prefix of a larger one made with the same seed (nested data
subsets, the amount axis of a scaling study).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from roboscale import __version__
from roboscale.data.capacity import check_amount
from roboscale.data.envs import get_family
from roboscale.data.envs.base import EnvFamily, EnvSpec, TaskEnv
from roboscale.data.layout import frame_features
from roboscale.data.quality import Quality
from roboscale.data.writer import DatasetWriter, Episode, check_destination
from roboscale.errors import BadInputError, check_seed

DEFAULT_EPISODES = 200
"""Episodes generated when neither episodes nor transitions is given."""
SPLITS = ("train", "validation", "heldout_tasks")
_SPLIT_STREAM = {"train": 0, "validation": 1, "heldout_tasks": 2}
_CONFIG_STREAM = 7
DEFAULT_CAMERA = "default"
"""``camera`` value meaning the family's first camera."""
DEFAULT_IMAGE_SIZE = 64
IMAGE_SIZE_RANGE = (8, 512)
"""Allowed image sizes (pixels per side)."""
_IMAGE_FIELDS = ("camera", "image_size")
"""Fields left out of ``to_dict`` without a camera: state-only provenance keeps its bytes."""


@dataclass(frozen=True)
class GenerationSpec:
    """What to generate. At most one of ``episodes`` and ``transitions`` sets the amount
    (neither: ``DEFAULT_EPISODES`` episodes)."""

    env: str = "pointmass"
    """Environment family: pointmass or metaworld."""
    tasks: str = "all"
    """Task set (``mt10``, ``mt50``, ``all``) or comma-separated task names."""
    episodes: int | None = None
    """Episodes in train + validation together (held-out-task episodes come on top);
    200 when transitions is not given either."""
    transitions: int | None = None
    """Instead of episodes: generate training episodes until this many frames."""
    num_tasks: int | None = None
    """Keep a seeded random subset of this many of the selected tasks."""
    configs_per_task: int | None = None
    """Distinct initial configurations per task episodes are drawn from (None: a fresh one each time)."""
    quality: Quality = field(default_factory=Quality)
    """Action noise, epsilon-random actions, random-policy episodes and curation."""
    validation_fraction: float = 0.1
    """Share of episodes held out, as whole episodes, for validation."""
    heldout_tasks: tuple[str, ...] = ()
    """Tasks kept out of training, recorded in their own split."""
    seed: int = 0
    """Seed of every episode's task, configuration and noise: the same seed, the same bytes."""
    max_steps: int | None = None
    """Episode horizon in steps (default: the environment's)."""
    stop_on_success: bool = True
    """End an episode at the first step that solves the task."""
    file_size_mb: float = 100.0
    """Target size of each data parquet file, in MB (2^20 bytes)."""
    camera: str = ""
    """Camera whose frames are recorded before each action ("" none; "default" the family's first)."""
    image_size: int = DEFAULT_IMAGE_SIZE
    """Side of the square camera frames, in pixels (with a camera)."""

    def __post_init__(self) -> None:
        if self.episodes is None and self.transitions is None:
            object.__setattr__(self, "episodes", DEFAULT_EPISODES)  # frozen: set once, here

    def validate(self) -> None:
        """Raise BadInputError for inconsistent settings, before any work starts. Messages
        name the field and its command-line option, as both a study file and the CLI set it."""
        if (self.episodes is None) == (self.transitions is None):
            raise BadInputError("give exactly one of episodes (--episodes) and transitions (--transitions)")
        for name in ("episodes", "transitions", "num_tasks", "configs_per_task", "max_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                option = "--" + name.replace("_", "-")
                raise BadInputError(
                    f"{name}={value!r}: must be a whole number >= 1 ({option}; leave it out for the default)"
                )
        check_seed(self.seed, "seed (--seed)")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise BadInputError(f"validation fraction {self.validation_fraction}: must be in [0, 1)")
        if self.file_size_mb <= 0:
            raise BadInputError(f"file_size_mb={self.file_size_mb}: must be > 0")
        self._validate_image()

    def _validate_image(self) -> None:
        low, high = IMAGE_SIZE_RANGE
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
            raise BadInputError(f"image_size={size!r}: must be a whole number of pixels in [{low}, {high}] (--image-size)")
        if not isinstance(self.camera, str):
            raise BadInputError(f"camera={self.camera!r}: must be a camera name (--camera NAME, or 'default')")
        if not self.camera and size != DEFAULT_IMAGE_SIZE:
            raise BadInputError(f"image_size={size} without a camera: add --camera NAME (or --camera default)")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["quality"] = self.quality.to_dict()
        out["heldout_tasks"] = list(self.heldout_tasks)
        if not self.camera:
            for name in _IMAGE_FIELDS:
                out.pop(name)
        return out

    def cameras(self, family: EnvFamily) -> dict[str, int]:
        """Camera name -> image size of the frames to record ({} without a camera);
        ``default`` resolves to the family's first camera. BadInputError for a camera
        the family does not have (listing those it has)."""
        if not self.camera:
            return {}
        available = tuple(getattr(family, "CAMERAS", ()))
        if not available:
            raise BadInputError(f"env {family.name} has no cameras: generate it without --camera")
        camera = available[0] if self.camera == DEFAULT_CAMERA else self.camera
        if camera not in available:
            raise BadInputError(
                f"env {family.name} has no camera {self.camera!r}: choose one of {', '.join(available)} (or default)"
            )
        return {camera: self.image_size}


@dataclass(frozen=True)
class EpisodePlan:
    """Everything that determines one episode."""

    split: str
    ordinal: int
    """Position in the split's stream of episodes (before any filtering)."""
    task: str
    config_id: int
    config_seed: int
    action_seed: int
    random_policy: bool


@dataclass(frozen=True)
class GenerationReport:
    """What was generated and how fast."""

    out: Path
    episodes: dict[str, int]
    transitions: int
    success_rate: dict[str, float]
    """Per task, over the episodes written."""
    attempted: int
    """Episodes rolled out, including those filtered out (successful_only)."""
    seconds: float

    @property
    def total_episodes(self) -> int:
        return sum(self.episodes.values())


def task_split(spec: GenerationSpec, all_tasks: list[str]) -> dict[str, list[str]]:
    """Tasks of each split: training tasks, and the held-out ones.

    Held-out tasks are set aside first; ``num_tasks`` then draws that many training
    tasks from the rest (without held-out tasks the draw is over all selected tasks,
    as it always was, so such datasets keep their bytes)."""
    unknown = [t for t in spec.heldout_tasks if t not in all_tasks]
    if unknown:
        raise BadInputError(f"held-out task(s) {', '.join(unknown)} are not among the selected tasks {all_tasks}")
    train = [t for t in all_tasks if t not in spec.heldout_tasks]
    if not train:
        raise BadInputError("every selected task is held out: keep at least one task for training")
    if spec.num_tasks is not None:
        if spec.num_tasks > len(train):
            held = f" once {len(spec.heldout_tasks)} are held out" if spec.heldout_tasks else ""
            raise BadInputError(
                f"num_tasks={spec.num_tasks} but only {len(train)} tasks were selected{held}: "
                f"lower --num-tasks to at most {len(train)}"
            )
        order = np.random.default_rng([spec.seed, 11]).permutation(len(train))
        train = [train[i] for i in sorted(order[: spec.num_tasks])]
    split = {"train": train, "validation": train}
    if spec.heldout_tasks:
        split["heldout_tasks"] = list(spec.heldout_tasks)
    return split


def plan_episode(spec: GenerationSpec, tasks: list[str], split: str, ordinal: int) -> EpisodePlan:
    """The ``ordinal``-th episode of ``split``: round-robin over its tasks, seeds
    derived from (seed, split, ordinal) only."""
    task = tasks[ordinal % len(tasks)]
    rng = np.random.default_rng([spec.seed, _SPLIT_STREAM[split], ordinal])
    action_seed = int(rng.integers(2**63))
    random_policy = bool(rng.random() < spec.quality.random_episodes)
    task_key = zlib.crc32(task.encode())
    if spec.configs_per_task is None:
        # A fresh configuration for every episode, never shared between splits.
        config_id = ordinal // len(tasks)
        config_key = [spec.seed, _CONFIG_STREAM, task_key, _SPLIT_STREAM[split], config_id]
    else:
        config_id = int(rng.integers(spec.configs_per_task))
        config_key = [spec.seed, _CONFIG_STREAM, task_key, config_id]
    config_seed = int(np.random.default_rng(config_key).integers(2**31))
    return EpisodePlan(split, ordinal, task, config_id, config_seed, action_seed, random_policy)


def rollout(
    env: TaskEnv,
    plan: EpisodePlan,
    quality: Quality,
    max_steps: int,
    stop_on_success: bool,
    camera: str = "",
) -> Episode:
    """Run one episode: the expert (or a random policy) drives, quality knobs perturb.
    With a ``camera`` (enabled on ``env`` before), the frame it renders before each
    action is recorded in ``Episode.images[camera]``."""
    spec = env.spec
    rng = np.random.default_rng(plan.action_seed)
    low, high = spec.action_low.astype(np.float64), spec.action_high.astype(np.float64)
    states = np.empty((max_steps, spec.state_dim), dtype=np.float32)
    actions = np.empty((max_steps, spec.action_dim), dtype=np.float32)
    expert_actions = np.empty((max_steps, spec.action_dim), dtype=np.float32)
    rewards = np.empty(max_steps, dtype=np.float32)
    successes = np.zeros(max_steps, dtype=bool)
    observation = env.reset(plan.config_seed)
    frames: np.ndarray | None = None
    length = 0
    for step in range(max_steps):
        if camera:
            frame = env.render_frame()
            if frames is None:
                frames = np.empty((max_steps, *frame.shape), dtype=np.uint8)
            frames[step] = frame
        expert = np.clip(np.asarray(env.expert_action(observation), dtype=np.float64), low, high)
        if plan.random_policy or (quality.epsilon and rng.random() < quality.epsilon):
            action = rng.uniform(low, high)
        elif quality.action_noise:
            action = np.clip(expert + quality.action_noise * rng.standard_normal(spec.action_dim), low, high)
        else:
            action = expert
        states[step] = observation
        actions[step] = action
        expert_actions[step] = expert
        observation, reward, terminated, truncated, info = env.step(action.astype(np.float32))
        rewards[step] = reward
        successes[step] = bool(info.get("success", False))
        length = step + 1
        if terminated or truncated or (stop_on_success and successes[step]):
            break
    return Episode(
        task=plan.task,
        states=states[:length],
        actions=actions[:length],
        rewards=rewards[:length],
        successes=successes[:length],
        expert_actions=expert_actions[:length],
        extra={
            "config_id": plan.config_id,
            "config_seed": plan.config_seed,
            "policy": "random" if plan.random_policy else "expert",
        },
        images={} if frames is None else {camera: frames[:length]},
    )


# -- worker side ----------------------------------------------------------------------

_worker_state: dict = {}


def _init_worker(
    env_name: str, quality: Quality, max_steps: int, stop_on_success: bool, cameras: dict[str, int]
) -> None:
    # One simulator thread per process: several 1-thread processes beat one threaded one.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"
    _worker_state.update(
        family=get_family(env_name),
        envs={},
        quality=quality,
        max_steps=max_steps,
        stop_on_success=stop_on_success,
        cameras=cameras,
    )


def _run_plan(plan: EpisodePlan) -> Episode:
    state = _worker_state
    camera, size = next(iter(state["cameras"].items()), ("", 0))
    env = state["envs"].get(plan.task)
    if env is None:
        env = state["envs"][plan.task] = state["family"].make(plan.task)
        if camera:
            env.enable_camera(camera, size)  # in this (worker) process: one renderer each
    return rollout(env, plan, state["quality"], state["max_steps"], state["stop_on_success"], camera)


class _Runner:
    """Runs episode plans in order, in this process or on a pool of worker processes."""

    def __init__(self, spec: GenerationSpec, max_steps: int, workers: int, cameras: dict[str, int]) -> None:
        args = (spec.env, spec.quality, max_steps, spec.stop_on_success, cameras)
        self.workers = workers
        if workers > 1:
            # Workers only run the simulator: forking (Linux) skips re-importing it in
            # every worker, which spawn would pay for before the first episode.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            self.pool = context.Pool(workers, initializer=_init_worker, initargs=args)
        else:
            self.pool = None
            _init_worker(*args)

    def run(self, plans: Iterator[EpisodePlan]) -> Iterator[Episode]:
        """Episodes of ``plans`` in order; at most a few plans per worker run ahead."""
        if self.pool is None:
            yield from map(_run_plan, plans)
            return
        window: deque = deque()
        for plan in plans:
            window.append(self.pool.apply_async(_run_plan, (plan,)))
            if len(window) >= 3 * self.workers:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        for env in _worker_state.get("envs", {}).values():
            env.close()


Progress = Callable[[int, int, int, int | None], None]
"""progress(episodes written, transitions written, successes, episodes expected or None)."""


def generate(
    spec: GenerationSpec,
    out: str | Path,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> GenerationReport:
    """Generate a LeRobot v3 dataset at ``out`` following ``spec``; returns a report."""
    spec.validate()
    if workers < 1:
        raise BadInputError(f"workers={workers}: must be >= 1")
    out = Path(out)
    check_destination(out, overwrite)
    family = get_family(spec.env)
    tasks_by_split = task_split(spec, family.task_names(spec.tasks))
    env_spec = family.spec
    max_steps = spec.max_steps or env_spec.max_steps
    all_tasks = sorted({t for tasks in tasks_by_split.values() for t in tasks}, key=_task_order(tasks_by_split))
    targets = _EpisodeTargets(spec, tasks_by_split)
    cameras = spec.cameras(family)
    check_amount(env_spec, *_largest_amount(spec, tasks_by_split, targets, max_steps), out, cameras)
    image = _image_provenance(spec.env, cameras)
    provenance = _provenance(spec, family.versions(), env_spec, tasks_by_split, max_steps, image)

    started = time.perf_counter()
    counts = {split: 0 for split in tasks_by_split}
    per_task: dict[str, list[int]] = {task: [0, 0] for task in all_tasks}
    totals = {"episodes": 0, "transitions": 0, "successes": 0, "attempted": 0}
    runner = _Runner(spec, max_steps, workers, cameras)
    try:
        with DatasetWriter(
            out,
            features=frame_features(env_spec.state_names, env_spec.action_names, cameras=cameras),
            tasks=all_tasks,
            fps=env_spec.fps,
            robot_type=env_spec.robot_type,
            provenance=provenance,
            file_size_mb=spec.file_size_mb,
            overwrite=overwrite,
        ) as writer:
            for split, tasks in tasks_by_split.items():
                for episode in _episodes_of_split(spec, split, tasks, runner, targets, totals):
                    writer.add(episode, split)
                    counts[split] += 1
                    per_task[episode.task][0] += 1
                    per_task[episode.task][1] += int(episode.success)
                    totals["episodes"] += 1
                    totals["transitions"] += episode.length
                    totals["successes"] += int(episode.success)
                    if progress is not None:
                        progress(totals["episodes"], totals["transitions"], totals["successes"], targets.expected())
                targets.finished(split, counts[split])
    finally:
        runner.close()
    return GenerationReport(
        out=out,
        episodes={k: v for k, v in counts.items() if v},
        transitions=totals["transitions"],
        success_rate={task: (s / n if n else float("nan")) for task, (n, s) in per_task.items()},
        attempted=totals["attempted"],
        seconds=time.perf_counter() - started,
    )


def default_out(spec: GenerationSpec) -> Path:
    """``data/ENV-TASKS-AMOUNT-sSEED[-CAMERASIZE]``, AMOUNT naming what the folder will hold:
    every episode ('207ep': train, validation and held-out-task episodes together) or, when
    the amount is set by transitions, the training frames asked for ('5000fr'); with a
    camera, its name and image size ('-top64')."""
    if spec.episodes is None:
        amount = f"{spec.transitions}fr"
    else:
        tasks_by_split = task_split(spec, get_family(spec.env).task_names(spec.tasks))
        amount = f"{_EpisodeTargets(spec, tasks_by_split).expected()}ep"
    images = "".join(f"-{camera}{size}" for camera, size in spec.cameras(get_family(spec.env)).items())
    return Path("data") / f"{spec.env}-{spec.tasks.replace(',', '+')}-{amount}-s{spec.seed}{images}"


def _largest_amount(spec, tasks_by_split, targets: _EpisodeTargets, max_steps: int) -> tuple[int, int]:
    """(episodes, frames) the dataset may hold, every episode running to the horizon.
    By transitions: the training frames (plus one episode of overshoot), with validation
    and held-out-task frames in proportion."""
    if spec.transitions is None:
        return targets.expected(), targets.expected() * max_steps
    held_out_share = len(tasks_by_split.get("heldout_tasks", ())) / len(tasks_by_split["train"])
    validation_share = spec.validation_fraction / (1 - spec.validation_fraction)
    frames = math.ceil((spec.transitions + max_steps) * (1 + validation_share * (1 + held_out_share)))
    return math.ceil(frames / max_steps), frames


class _EpisodeTargets:
    """How many episodes each split needs (known up front, or once training is done)."""

    def __init__(self, spec: GenerationSpec, tasks_by_split: dict[str, list[str]]) -> None:
        self.spec = spec
        self.tasks_by_split = tasks_by_split
        self.counts: dict[str, int] = {}
        if spec.episodes is not None:
            validation = round(spec.episodes * spec.validation_fraction)
            self.counts = {"train": spec.episodes - validation, "validation": validation}
            self._add_heldout()

    def _add_heldout(self) -> None:
        if "heldout_tasks" in self.tasks_by_split:
            per_task = math.ceil(max(self.counts["validation"], 1) / len(self.tasks_by_split["train"]))
            self.counts["heldout_tasks"] = per_task * len(self.tasks_by_split["heldout_tasks"])

    def target(self, split: str) -> int | None:
        """Episodes wanted in ``split`` (None: training by transitions, count unknown)."""
        return self.counts.get(split)

    def finished(self, split: str, count: int) -> None:
        if split == "train" and self.spec.transitions is not None:
            fraction = self.spec.validation_fraction
            self.counts = {"train": count, "validation": round(count * fraction / (1 - fraction))}
            self._add_heldout()

    def expected(self) -> int | None:
        return sum(self.counts.values()) if self.counts else None


def _episodes_of_split(spec, split, tasks, runner: _Runner, targets: _EpisodeTargets, totals) -> Iterator[Episode]:
    """Episodes of one split in order, until its target (episodes or transitions) is met."""
    wanted = targets.target(split)
    if wanted == 0:
        return
    kept = frames = 0
    plans = (plan_episode(spec, tasks, split, ordinal) for ordinal in itertools.count())
    for attempt, episode in enumerate(runner.run(plans), start=1):
        totals["attempted"] += 1
        if spec.quality.successful_only and not episode.success:
            if attempt >= 50 and kept == 0:
                raise BadInputError(
                    f"no successful episode in {attempt} attempts of the {split} split: the expert fails "
                    "under these quality settings; drop --successful-only or lower the noise"
                )
            continue
        yield episode
        kept += 1
        frames += episode.length
        if (wanted is not None and kept >= wanted) or (wanted is None and frames >= spec.transitions):
            return


def _task_order(tasks_by_split: dict[str, list[str]]):
    order = [t for tasks in tasks_by_split.values() for t in tasks]
    return order.index


def _image_provenance(env: str, cameras: dict[str, int]) -> dict:
    """``{"camera", "size", "backend"}`` of the recorded frames ({} without a camera), once
    a renderer has started in this process (BadInputError naming the backend and the
    package to install when none starts), before any worker does."""
    if not cameras:
        return {}
    from roboscale.data.envs.render import check_renderer

    camera, size = next(iter(cameras.items()))
    return {"camera": camera, "size": size, "backend": check_renderer(env, camera, size)}


def _provenance(spec, versions, env_spec: EnvSpec, tasks_by_split, max_steps, image: dict) -> dict:
    """How the data was made: enough to regenerate it byte for byte (and, with images,
    the camera and size evaluation renders with)."""
    image_entry = {"image": image} if image else {}
    return {
        "generator": "roboscale data generate",
        "roboscale_version": __version__,
        "spec": spec.to_dict(),
        "env_versions": versions,
        "tasks_by_split": tasks_by_split,
        "max_steps": max_steps,
        "fps": env_spec.fps,
        "quality": spec.quality.describe(),
        **image_entry,
    }
