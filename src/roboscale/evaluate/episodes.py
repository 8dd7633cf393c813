"""Which episodes an evaluation runs: tasks, held-out initial configurations and sampling seeds.

Training data draws each episode's initial configuration (object and goal
positions) from a config seed derived from ``(data seed, 7, task, ...)`` (see
:func:`roboscale.data.generate.plan_episode`). Evaluation draws its config seeds
from its own stream, ``numpy.random.default_rng([seed, EVAL_CONFIG_STREAM,
crc32(task)])``, one draw after another, and skips every seed the dataset's
episodes used (any split, recorded per episode in ``meta/episodes``) and any
repeat. So evaluation configurations are disjoint from the training data's by
construction, and

- they depend only on the evaluation seed and the task, not on the dataset or
  run: every run of a study is evaluated on the same configurations (a paired
  comparison), and
- the first 50 episodes of a task are the same whether 50 or 100 are asked for.

Episodes are listed round-robin over the tasks (episode 0 of every task, then
episode 1, ...), so a batch of parallel environments mixes tasks and each worker
needs only a few simulator instances per task.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from roboscale.data.dataset import Dataset

EVAL_CONFIG_STREAM = 101
"""Second seed word of the evaluation config-seed stream (generation uses 0-2, 7 and 11)."""
EVAL_SAMPLE_STREAM = 102
"""Second seed word of the per-episode action-sampling streams."""
CONFIG_SEED_RANGE = 2**31
"""Config seeds are drawn from [0, 2^31), as in generation."""


@dataclass(frozen=True)
class EvalEpisode:
    """One evaluation episode: everything that determines it."""

    task: str
    task_index: int
    """The task's id in the run's dataset (the model's task embedding)."""
    ordinal: int
    """Position among this task's evaluation episodes."""
    config_seed: int
    """Seed of the initial configuration (TaskEnv.reset)."""
    sample_seed: int
    """Seed of this episode's own action-sampling stream (used only when sampling)."""

    def to_dict(self) -> dict:
        return asdict(self)


def task_key(task: str) -> int:
    """A task's stable number in seed keys (the same as in generation)."""
    return zlib.crc32(task.encode())


def training_config_seeds(dataset: Dataset) -> dict[str, set[int]]:
    """Config seeds of the dataset's episodes (all splits), per task; empty for imported
    data that records none."""
    episodes = dataset.episodes
    if "config_seed" not in episodes.columns:
        return {}
    seeds = pd.to_numeric(episodes["config_seed"], errors="coerce")
    known = seeds.notna()
    grouped = seeds[known].astype(np.int64).groupby(episodes.loc[known, "task"])
    return {str(task): set(values.tolist()) for task, values in grouped}


def evaluation_config_seeds(task: str, count: int, seed: int, exclude: set[int] = frozenset()) -> list[int]:
    """The first ``count`` config seeds of ``task``'s evaluation stream, none of them in
    ``exclude`` and none repeated."""
    stream = np.random.default_rng([seed, EVAL_CONFIG_STREAM, task_key(task)])
    chosen: list[int] = []
    seen = set(exclude)
    while len(chosen) < count:
        candidate = int(stream.integers(CONFIG_SEED_RANGE))
        if candidate not in seen:
            seen.add(candidate)
            chosen.append(candidate)
    return chosen


def plan_episodes(
    tasks: list[str],
    task_indices: dict[str, int],
    episodes_per_task: int,
    seed: int,
    exclude: dict[str, set[int]] | None = None,
) -> list[EvalEpisode]:
    """Evaluation episodes, round-robin over ``tasks``, on configurations outside ``exclude``
    (config seeds per task, e.g. :func:`training_config_seeds`)."""
    exclude = exclude or {}
    config_seeds = {
        task: evaluation_config_seeds(task, episodes_per_task, seed, exclude.get(task, set())) for task in tasks
    }
    return [
        EvalEpisode(
            task=task,
            task_index=task_indices[task],
            ordinal=ordinal,
            config_seed=config_seeds[task][ordinal],
            sample_seed=int(np.random.default_rng([seed, EVAL_SAMPLE_STREAM, task_key(task), ordinal]).integers(2**63)),
        )
        for ordinal in range(episodes_per_task)
        for task in tasks
    ]
