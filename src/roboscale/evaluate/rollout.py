"""Closed-loop rollouts: batches of parallel environments, one batched policy call per step.

The episode plan is cut into fixed batches of ``envs`` consecutive episodes. A
batch runs in lockstep: one policy call (batched over the episodes) acts for
every running episode, then each simulator steps; an episode ends
at its first success, when the simulator ends it, at ``max_steps``, or when the
policy's action is not finite (recorded as a failure with its reason, never a
crash). Finished episodes leave the batch. With a ``camera`` (a policy that sees
images) every simulator renders that view after its reset and after each step,
and the policy gets the frames of the running episodes with their states.

With ``workers`` > 1 the batches are shared out to worker processes (spawned, one
torch thread each), each with its own policy and simulators. Every batch is
computed the same way whichever process runs it, so results are identical for
any number of workers. The workers ignore Ctrl-C: the parent alone is interrupted,
and stops them (so none dies half-way through a queue operation, and nothing is
left for the resource tracker to report). They count the environment steps they
take in a shared counter, which the parent reports every half second. (``envs`` changes the batching, which can change the
last bits of a forward pass, so keep it fixed when comparing runs.)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from roboscale.data.envs import EnvFamily, TaskEnv, get_family
from roboscale.evaluate.episodes import EvalEpisode
from roboscale.evaluate.images import Camera
from roboscale.evaluate.policy import Policy, PolicySource


@dataclass(frozen=True)
class EpisodeResult:
    """How one evaluation episode went."""

    task: str
    ordinal: int
    config_seed: int
    success: bool
    """Solved at some step within the horizon."""
    episode_return: float
    """Sum of the simulator's rewards over the episode."""
    length: int
    """Environment steps taken."""
    failure: str | None = None
    """Why the episode was cut short (e.g. a non-finite action), None if it ran normally."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RolloutTiming:
    """Where rollout time went, summed over processes (seconds; steps are environment steps)."""

    env_steps: int = 0
    policy_calls: int = 0
    """Batched policy calls (one per lockstep step)."""
    loop_seconds: float = 0.0
    """Time in the rollout loops (simulator construction excluded)."""
    policy_seconds: float = 0.0
    simulator_seconds: float = 0.0
    """Resets and steps."""
    render_seconds: float = 0.0
    """Rendering camera frames (policies that see images)."""

    @property
    def steps_per_second(self) -> float:
        """Environment steps per second of rollout loop, per process."""
        return self.env_steps / max(self.loop_seconds, 1e-12)

    @property
    def steps_per_policy_call(self) -> float:
        """Mean batch size of the policy calls."""
        return self.env_steps / max(self.policy_calls, 1)

    def add(self, other: RolloutTiming) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["steps_per_second"] = self.steps_per_second
        out["steps_per_policy_call"] = self.steps_per_policy_call
        return out


class EnvPool:
    """Simulator instances per task, made on first use and reused by later batches
    (a Meta-World environment takes ~0.3 s and ~30 MB to build), each rendering ``camera``
    when one is given."""

    def __init__(self, family: EnvFamily, camera: Camera | None = None) -> None:
        self.family = family
        self.camera = camera
        self.instances: dict[str, list[TaskEnv]] = {}

    def _make(self, task: str) -> TaskEnv:
        env = self.family.make(task)
        if self.camera is not None:
            env.enable_camera(self.camera.name, self.camera.size)
        return env

    def take(self, tasks: list[str]) -> list[TaskEnv]:
        """One distinct instance per entry of ``tasks`` (repeats get separate instances)."""
        for task, count in Counter(tasks).items():
            made = self.instances.setdefault(task, [])
            made.extend(self._make(task) for _ in range(count - len(made)))
        used: Counter = Counter()
        envs = []
        for task in tasks:
            envs.append(self.instances[task][used[task]])
            used[task] += 1
        return envs

    def close(self) -> None:
        for envs in self.instances.values():
            for env in envs:
                env.close()
        self.instances.clear()


@dataclass
class _BatchState:
    """Running totals of one batch of episodes."""

    returns: np.ndarray
    lengths: np.ndarray
    successes: np.ndarray
    failures: list[str | None]
    running: np.ndarray
    """Rows still stepping."""

    @classmethod
    def start(cls, episodes: int) -> _BatchState:
        return cls(
            returns=np.zeros(episodes),
            lengths=np.zeros(episodes, dtype=np.int64),
            successes=np.zeros(episodes, dtype=bool),
            failures=[None] * episodes,
            running=np.arange(episodes),
        )


StepsTaken = Callable[[int], None]
"""steps_taken(environment steps just taken), called as a rollout goes."""


def run_batch(
    policy: Policy,
    pool: EnvPool,
    episodes: list[EvalEpisode],
    max_steps: int,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_steps: StepsTaken | None = None,
) -> tuple[list[EpisodeResult], RolloutTiming]:
    """Roll out ``episodes`` in lockstep (see the module docstring); results in their order.
    ``on_steps`` is told after every lockstep step how many environments stepped."""
    # (an episode whose action was not finite ends without a step)
    envs = pool.take([episode.task for episode in episodes])
    timing = RolloutTiming()
    started = time.perf_counter()
    observations = np.stack([env.reset(episode.config_seed) for env, episode in zip(envs, episodes)])
    batch = _BatchState.start(len(episodes))
    policy.reset(episodes)
    timing.simulator_seconds += time.perf_counter() - started
    frames = _render(envs, batch.running, None, timing) if pool.camera is not None else None
    results: dict[int, EpisodeResult] = {}
    for step in range(max_steps):
        rows = batch.running
        policy_started = time.perf_counter()
        if frames is None:
            actions = policy.act(observations[rows], rows)
        else:
            actions = policy.act(observations[rows], rows, frames[rows])
        timing.policy_seconds += time.perf_counter() - policy_started
        timing.policy_calls += 1
        simulator_started = time.perf_counter()
        steps_before = int(batch.lengths[rows].sum())
        ended = [_step(envs[row], action, row, step, observations, batch) for row, action in zip(rows, actions)]
        timing.simulator_seconds += time.perf_counter() - simulator_started
        if on_steps is not None:
            on_steps(int(batch.lengths[rows].sum()) - steps_before)
        finished = [row for row, done in zip(rows, ended) if done or step == max_steps - 1]
        for row in finished:
            results[row] = _result(episodes[row], batch, row)
            if on_episode is not None:
                on_episode(results[row])
        batch.running = np.array([row for row, done in zip(rows, ended) if not done], dtype=np.int64)
        if not batch.running.size:
            break
        if frames is not None and step < max_steps - 1:
            _render(envs, batch.running, frames, timing)
    timing.loop_seconds = time.perf_counter() - started
    timing.env_steps = int(batch.lengths.sum())
    return [results[row] for row in range(len(episodes))], timing


def _render(envs: list[TaskEnv], rows: np.ndarray, frames: np.ndarray | None, timing: RolloutTiming) -> np.ndarray:
    """Render the current frame of the environments ``rows`` into ``frames`` (made on the
    first call: (len(envs), H, W, 3) uint8) and return it."""
    started = time.perf_counter()
    for row in rows:
        frame = envs[row].render_frame()
        if frames is None:
            frames = np.zeros((len(envs), *frame.shape), dtype=np.uint8)
        frames[row] = frame
    timing.render_seconds += time.perf_counter() - started
    return frames


def _step(env: TaskEnv, action: np.ndarray, row: int, step: int, observations: np.ndarray, batch: _BatchState) -> bool:
    """Step one environment; returns whether its episode ended."""
    if not np.all(np.isfinite(action)):
        batch.failures[row] = f"the policy's action was not finite at step {step}"
        return True
    observation, reward, terminated, truncated, info = env.step(action.astype(np.float32))
    batch.returns[row] += reward
    batch.lengths[row] += 1
    if not np.all(np.isfinite(observation)):
        batch.failures[row] = f"the simulator returned a non-finite observation at step {step}"
        return True
    observations[row] = observation
    batch.successes[row] = bool(info.get("success", False))
    return batch.successes[row] or terminated or truncated


def _result(episode: EvalEpisode, batch: _BatchState, row: int) -> EpisodeResult:
    return EpisodeResult(
        task=episode.task,
        ordinal=episode.ordinal,
        config_seed=episode.config_seed,
        success=bool(batch.successes[row]) and batch.failures[row] is None,
        episode_return=float(batch.returns[row]),
        length=int(batch.lengths[row]),
        failure=batch.failures[row],
    )


def batches(episodes: list[EvalEpisode], envs: int) -> list[list[EvalEpisode]]:
    """The plan cut into consecutive batches of ``envs`` episodes (independent of workers)."""
    return [episodes[i : i + envs] for i in range(0, len(episodes), envs)]


# -- running a plan, here or in worker processes ------------------------------------------

_worker: dict = {}


def _init_worker(source: PolicySource, env: str, camera: Camera | None, max_steps: int, steps_taken) -> None:
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C (and stops us)
    pool = EnvPool(get_family(env), camera)
    _worker.update(policy=source.build(), pool=pool, max_steps=max_steps, steps_taken=steps_taken)


def _run_in_worker(batch: list[EvalEpisode]) -> tuple[list[EpisodeResult], RolloutTiming]:
    return run_batch(_worker["policy"], _worker["pool"], batch, _worker["max_steps"], on_steps=_count_steps)


def _count_steps(steps: int) -> None:
    counter = _worker["steps_taken"]
    with counter.get_lock():
        counter.value += steps


def run_episodes(
    source: PolicySource,
    env: str,
    episodes: list[EvalEpisode],
    *,
    max_steps: int,
    envs: int = 25,
    workers: int = 1,
    camera: Camera | None = None,
    policy: Policy | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_steps: StepsTaken | None = None,
) -> tuple[list[EpisodeResult], RolloutTiming]:
    """Run every planned episode; results in plan order, and the summed timing.

    ``camera``: the view to render for a policy that sees images (rendered in each worker).
    ``policy``: an already built policy for the in-process case (workers=1), to skip
    building it again. ``on_episode`` is called as each episode finishes (in this
    process), or as each batch returns from a worker; ``on_steps`` with the environment
    steps taken since its last call, after every lockstep step (in this process) or
    every half second (workers).
    """
    timing = RolloutTiming()
    results: list[EpisodeResult] = []
    planned = batches(episodes, envs)
    callbacks = (on_episode, on_steps)
    simulators = (env, camera)
    for batch_results, batch_timing in _batch_outcomes(
        source, simulators, planned, max_steps, workers, policy, callbacks
    ):
        results.extend(batch_results)
        timing.add(batch_timing)
    return results, timing


REPORT_SECONDS = 0.5
"""How often the parent reports the workers' step count."""


def _batch_outcomes(source, simulators, planned, max_steps, workers, policy, callbacks) -> Iterator:
    on_episode, on_steps = callbacks
    if workers <= 1:
        yield from _in_process(source, simulators, planned, max_steps, policy, callbacks)
        return
    # spawn, not fork: a forked child inheriting an initialised OpenMP runtime can hang.
    context = multiprocessing.get_context("spawn")
    steps_taken, reported = context.Value("q", 0), 0
    settings = (source, *simulators, max_steps, steps_taken)
    with _children_ignore_interrupts():
        pool = context.Pool(min(workers, len(planned)), initializer=_init_worker, initargs=settings)
    with pool:
        outcomes = pool.imap(_run_in_worker, planned)
        for _ in planned:
            while True:
                try:
                    batch_results, batch_timing = outcomes.next(timeout=REPORT_SECONDS)
                    break
                except multiprocessing.TimeoutError:
                    reported = _report_steps(steps_taken, reported, on_steps)
            reported = _report_steps(steps_taken, reported, on_steps)
            if on_episode is not None:
                for result in batch_results:
                    on_episode(result)
            yield batch_results, batch_timing


def _report_steps(steps_taken, reported: int, on_steps: StepsTaken | None) -> int:
    """Tell ``on_steps`` the steps counted since ``reported``; returns the new count."""
    count = steps_taken.value
    if on_steps is not None and count > reported:
        on_steps(count - reported)
    return count


@contextmanager
def _children_ignore_interrupts() -> Iterator[None]:
    """Ignore Ctrl-C while worker processes start, so that they inherit the ignoring from
    their first instruction on (a Python process started with SIGINT ignored keeps it so)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _in_process(source, simulators, planned, max_steps, policy, callbacks) -> Iterator:
    env, camera = simulators
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker: the same arithmetic for any number of workers
    pool = EnvPool(get_family(env), camera)
    try:
        policy = policy if policy is not None else source.build()
        for batch in planned:
            yield run_batch(policy, pool, batch, max_steps, *callbacks)
    finally:
        pool.close()
        torch.set_num_threads(threads)
