"""Evaluation episodes: held-out initial configurations, seeded independently of the data."""

import numpy as np

from roboscale.data import open_dataset
from roboscale.data.envs import get_family
from roboscale.evaluate import plan_episodes
from roboscale.evaluate.episodes import evaluation_config_seeds, training_config_seeds


def test_episodes_go_round_robin_and_a_short_plan_is_a_prefix_of_a_long_one():
    indices = {"reach": 0, "push": 1}
    short = plan_episodes(["reach", "push"], indices, 3, seed=0)
    long = plan_episodes(["reach", "push"], indices, 10, seed=0)
    assert [(e.task, e.ordinal) for e in short] == [(t, i) for i in range(3) for t in ("reach", "push")]
    assert short == long[:6]
    assert [e.task_index for e in short] == [0, 1] * 3
    other_seed = plan_episodes(["reach", "push"], indices, 3, seed=1)
    assert {e.config_seed for e in short}.isdisjoint(e.config_seed for e in other_seed)
    assert len({e.sample_seed for e in long}) == len(long)


def test_seeds_the_data_used_are_skipped():
    first_four = evaluation_config_seeds("reach", 4, seed=0)
    assert len(set(first_four)) == 4
    skipping = evaluation_config_seeds("reach", 2, seed=0, exclude=set(first_four[:2]))
    assert skipping == first_four[2:]


def test_evaluation_configurations_are_not_in_the_training_data(reach_dataset):
    dataset = open_dataset(reach_dataset)
    used = training_config_seeds(dataset)
    assert len(used["reach"]) == 150  # every episode, all splits
    plan = plan_episodes(["reach"], {"reach": 0}, 200, seed=0, exclude=used)
    assert used["reach"].isdisjoint(e.config_seed for e in plan)
    # And the configurations themselves differ: no evaluation start is a training start.
    starts = dataset.frames(["observation.state"])["observation.state"][dataset.episodes["dataset_from_index"]]
    env = get_family("pointmass").make("reach")
    evaluation_starts = np.stack([env.reset(e.config_seed) for e in plan])
    distance = np.abs(evaluation_starts[:, None, :] - starts[None, :, :]).max(axis=2)
    assert distance.min() > 1e-3
    assert len(np.unique(evaluation_starts, axis=0)) == 200
