"""Closed-loop rollouts: batches of parallel environments, one batched policy call per step.

The episode plan is cut into fixed batches of ``envs`` consecutive episodes. A
batch runs in lockstep: one policy call (one batched forward pass per action
slot) acts for every running episode, then each simulator steps; an episode ends
at its first success, when the simulator ends it, at ``max_steps``, or when the
policy's action is not finite (recorded as a failure with its reason, never a
crash). Finished episodes leave the batch.

With ``workers`` > 1 the batches are shared out to worker processes (spawned, one
torch thread each), each with its own policy and simulators. Every batch is
computed the same way whichever process runs it, so results are identical for
any number of workers. (``envs`` changes the batching, which can change the
last bits of a forward pass, so keep it fixed when comparing runs.)
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from roboscale.data.envs import EnvFamily, TaskEnv, get_family
from roboscale.evaluate.episodes import EvalEpisode
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
    """Batched policy calls (each one forward pass per action slot)."""
    loop_seconds: float = 0.0
    """Time in the rollout loops (simulator construction excluded)."""
    policy_seconds: float = 0.0
    simulator_seconds: float = 0.0
    """Resets and steps."""

    @property
    def steps_per_second(self) -> float:
        """Environment steps per second of rollout loop, per process."""
        return self.env_steps / max(self.loop_seconds, 1e-12)

    @property
    def steps_per_policy_call(self) -> float:
        """Mean batch size of the policy calls."""
        return self.env_steps / max(self.policy_calls, 1)

    def add(self, other: RolloutTiming) -> None:
        for name in ("env_steps", "policy_calls", "loop_seconds", "policy_seconds", "simulator_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["steps_per_second"] = self.steps_per_second
        out["steps_per_policy_call"] = self.steps_per_policy_call
        return out


class EnvPool:
    """Simulator instances per task, made on first use and reused by later batches
    (a Meta-World environment takes ~0.3 s and ~30 MB to build)."""

    def __init__(self, family: EnvFamily) -> None:
        self.family = family
        self.instances: dict[str, list[TaskEnv]] = {}

    def take(self, tasks: list[str]) -> list[TaskEnv]:
        """One distinct instance per entry of ``tasks`` (repeats get separate instances)."""
        for task, count in Counter(tasks).items():
            made = self.instances.setdefault(task, [])
            made.extend(self.family.make(task) for _ in range(count - len(made)))
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


def run_batch(
    policy: Policy,
    pool: EnvPool,
    episodes: list[EvalEpisode],
    max_steps: int,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> tuple[list[EpisodeResult], RolloutTiming]:
    """Roll out ``episodes`` in lockstep (see the module docstring); results in their order."""
    envs = pool.take([episode.task for episode in episodes])
    timing = RolloutTiming()
    started = time.perf_counter()
    observations = np.stack([env.reset(episode.config_seed) for env, episode in zip(envs, episodes)])
    batch = _BatchState.start(len(episodes))
    policy.reset(episodes)
    timing.simulator_seconds += time.perf_counter() - started
    results: dict[int, EpisodeResult] = {}
    for step in range(max_steps):
        rows = batch.running
        policy_started = time.perf_counter()
        actions = policy.act(observations[rows], rows)
        timing.policy_seconds += time.perf_counter() - policy_started
        timing.policy_calls += 1
        simulator_started = time.perf_counter()
        ended = [_step(envs[row], action, row, step, observations, batch) for row, action in zip(rows, actions)]
        timing.simulator_seconds += time.perf_counter() - simulator_started
        finished = [row for row, done in zip(rows, ended) if done or step == max_steps - 1]
        for row in finished:
            results[row] = _result(episodes[row], batch, row)
            if on_episode is not None:
                on_episode(results[row])
        batch.running = np.array([row for row, done in zip(rows, ended) if not done], dtype=np.int64)
        if not batch.running.size:
            break
    timing.loop_seconds = time.perf_counter() - started
    timing.env_steps = int(batch.lengths.sum())
    return [results[row] for row in range(len(episodes))], timing


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


def _init_worker(source: PolicySource, env: str, max_steps: int) -> None:
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"
    torch.set_num_threads(1)
    _worker.update(policy=source.build(), pool=EnvPool(get_family(env)), max_steps=max_steps)


def _run_in_worker(batch: list[EvalEpisode]) -> tuple[list[EpisodeResult], RolloutTiming]:
    return run_batch(_worker["policy"], _worker["pool"], batch, _worker["max_steps"])


def run_episodes(
    source: PolicySource,
    env: str,
    episodes: list[EvalEpisode],
    *,
    max_steps: int,
    envs: int = 25,
    workers: int = 1,
    policy: Policy | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> tuple[list[EpisodeResult], RolloutTiming]:
    """Run every planned episode; results in plan order, and the summed timing.

    ``policy``: an already built policy for the in-process case (workers=1), to skip
    building it again. ``on_episode`` is called as each episode finishes (in this
    process), or as each batch returns from a worker.
    """
    timing = RolloutTiming()
    results: list[EpisodeResult] = []
    planned = batches(episodes, envs)
    for batch_results, batch_timing in _batch_outcomes(source, env, planned, max_steps, workers, policy, on_episode):
        results.extend(batch_results)
        timing.add(batch_timing)
    return results, timing


def _batch_outcomes(source, env, planned, max_steps, workers, policy, on_episode) -> Iterator:
    if workers <= 1:
        yield from _in_process(source, env, planned, max_steps, policy, on_episode)
        return
    # spawn, not fork: a forked child inheriting an initialised OpenMP runtime can hang.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(planned)), initializer=_init_worker, initargs=(source, env, max_steps)) as pool:
        for batch_results, batch_timing in pool.imap(_run_in_worker, planned):
            if on_episode is not None:
                for result in batch_results:
                    on_episode(result)
            yield batch_results, batch_timing


def _in_process(source, env, planned, max_steps, policy, on_episode) -> Iterator:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker: the same arithmetic for any number of workers
    pool = EnvPool(get_family(env))
    try:
        policy = policy if policy is not None else source.build()
        for batch in planned:
            yield run_batch(policy, pool, batch, max_steps, on_episode)
    finally:
        pool.close()
        torch.set_num_threads(threads)
