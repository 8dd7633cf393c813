from pathlib import Path

import numpy as np
import pytest

from roboscale.data import GenerationSpec, Quality, generate, open_dataset
from roboscale.data.capacity import check_amount, estimated_bytes, frame_bytes
from roboscale.data.envs import get_family
from roboscale.data.generate import default_out, task_split
from roboscale.data.writer import partial_folder
from roboscale.errors import BadInputError


def make(tmp_path, name="ds", workers=1, **options):
    options.setdefault("episodes", 60)
    spec = GenerationSpec(env="pointmass", **options)
    return open_dataset(generate(spec, tmp_path / name, workers=workers).out)


def test_pointmass_dataset_end_to_end(tmp_path):
    dataset = make(tmp_path, episodes=100, validation_fraction=0.2)
    assert len(dataset.episodes) == 100
    assert dataset.splits == {"train": range(0, 80), "validation": range(80, 100)}
    assert dataset.tasks == ["reach", "push"]
    assert (dataset.episodes["task"].value_counts() == 50).all()  # round robin over tasks
    frames = dataset.frames()
    assert len(frames["index"]) == dataset.total_frames
    np.testing.assert_array_equal(frames["index"], np.arange(dataset.total_frames))
    # Per-episode success is "solved at some step"; episodes stop at the first success.
    for row in dataset.episodes.itertuples():
        steps = frames["next.success"][row.dataset_from_index : row.dataset_to_index]
        assert row.success == steps.any()
        assert not steps[:-1].any()
        done = frames["next.done"][row.dataset_from_index : row.dataset_to_index]
        assert done[-1] and not done[:-1].any()
    # stats.json is exact for min/max/mean/std.
    for name in ("observation.state", "action"):
        values = frames[name].astype(np.float64)
        np.testing.assert_allclose(dataset.stats[name]["mean"], values.mean(0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(dataset.stats[name]["std"], values.std(0), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(dataset.stats[name]["min"], values.min(0))
        np.testing.assert_allclose(dataset.stats[name]["max"], values.max(0))


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    one = make(tmp_path, "one", workers=1, quality=Quality(action_noise=0.1, epsilon=0.1))
    two = make(tmp_path, "two", workers=2, quality=Quality(action_noise=0.1, epsilon=0.1))
    other = make(tmp_path, "other", workers=1, quality=Quality(action_noise=0.1, epsilon=0.1), seed=1)
    assert one.fingerprint() == two.fingerprint()
    assert one.fingerprint() != other.fingerprint()


def test_smaller_dataset_is_a_prefix_of_a_larger_one(tmp_path):
    small = make(tmp_path, "small", episodes=20, validation_fraction=0.0)
    large = make(tmp_path, "large", episodes=60, validation_fraction=0.0)
    n = small.total_frames
    for name in ("observation.state", "action", "next.reward"):
        np.testing.assert_array_equal(small.frames([name])[name], large.frames([name])[name][:n])


def test_action_noise_and_epsilon_perturb_the_expert(tmp_path):
    noisy = make(tmp_path, "noisy", episodes=40, quality=Quality(action_noise=0.2)).frames(["action", "expert.action"])
    gap = noisy["action"] - noisy["expert.action"]
    inside = np.all(np.abs(noisy["action"]) < 0.999, axis=1)  # away from clipping
    assert np.std(gap[inside]) == pytest.approx(0.2, rel=0.15)

    greedy = make(tmp_path, "eps", episodes=40, quality=Quality(epsilon=0.3)).frames(["action", "expert.action"])
    replaced = np.any(greedy["action"] != greedy["expert.action"], axis=1).mean()
    assert replaced == pytest.approx(0.3, abs=0.05)

    clean = make(tmp_path, "clean", episodes=10).frames(["action", "expert.action"])
    np.testing.assert_array_equal(clean["action"], clean["expert.action"])


def test_random_episodes_and_curation(tmp_path):
    mixed = make(tmp_path, "mixed", episodes=100, quality=Quality(random_episodes=0.3))
    random_share = (mixed.episodes["policy"] == "random").mean()
    assert random_share == pytest.approx(0.3, abs=0.12)
    assert mixed.episodes.loc[mixed.episodes["policy"] == "random", "success"].mean() < 0.5

    curated = make(tmp_path, "curated", episodes=40, quality=Quality(random_episodes=0.3, successful_only=True))
    assert curated.episodes["success"].all()
    assert len(curated.episodes) == 40


def test_configs_per_task_limits_initial_states(tmp_path):
    dataset = make(tmp_path, episodes=60, configs_per_task=3, validation_fraction=0.0)
    frames = dataset.frames(["observation.state"])["observation.state"]
    for task, part in dataset.episodes.groupby("task"):
        starts = frames[part["dataset_from_index"].to_numpy()]
        assert len(np.unique(starts, axis=0)) == 3, task
    fresh = make(tmp_path, "fresh", episodes=60, validation_fraction=0.0)
    starts = fresh.frames(["observation.state"])["observation.state"][fresh.episodes["dataset_from_index"].to_numpy()]
    assert len(np.unique(starts, axis=0)) == 60


def test_amount_by_transitions(tmp_path):
    dataset = make(tmp_path, episodes=None, transitions=2000, validation_fraction=0.1)
    train = dataset.episodes[dataset.episodes["split"] == "train"]
    assert 2000 <= train["length"].sum() < 2000 + 150
    assert len(dataset.episode_indices("validation")) == round(len(train) * 0.1 / 0.9)


def test_held_out_tasks_get_their_own_split(tmp_path):
    dataset = make(tmp_path, episodes=40, heldout_tasks=("push",))
    by_split = dataset.episodes.groupby("split")["task"].unique()
    assert list(by_split["train"]) == ["reach"] and list(by_split["validation"]) == ["reach"]
    assert list(by_split["heldout_tasks"]) == ["push"]


def test_existing_destination_is_refused_before_work(tmp_path):
    make(tmp_path, "ds", episodes=4)
    with pytest.raises(BadInputError, match="already exists"):
        generate(GenerationSpec(episodes=4), tmp_path / "ds")
    replaced = generate(GenerationSpec(episodes=6), tmp_path / "ds", overwrite=True)
    assert len(open_dataset(replaced.out).episodes) == 6


def test_failure_midway_leaves_no_dataset(tmp_path):
    def crash(done, *_):
        if done == 10:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        generate(GenerationSpec(episodes=50), tmp_path / "ds", progress=crash)
    assert not (tmp_path / "ds").exists()
    assert not partial_folder(tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"episodes": 0}, "episodes=0"),
        ({"episodes": 5, "transitions": 5}, "exactly one"),
        ({"validation_fraction": 1.0}, "validation fraction"),
        ({"tasks": "reach,fly"}, "no task"),
        ({"heldout_tasks": ("reach", "push")}, "keep at least one task"),
        ({"num_tasks": 5}, "only 2 tasks"),
        ({"configs_per_task": 0}, "configs_per_task"),
        ({"seed": -1}, r"seed \(--seed\) -1: a seed must be an integer from 0 to 2\^63 - 1"),
        ({"seed": 2**64 + 1}, "seed"),
        ({"episodes": 2.5}, "episodes=2.5: must be a whole number"),
    ],
)
def test_bad_settings_are_refused(tmp_path, options, message):
    with pytest.raises(BadInputError, match=message):
        generate(GenerationSpec(**options), tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_bad_quality_strings():
    assert Quality.parse("noise:0.1+epsilon:0.05") == Quality(action_noise=0.1, epsilon=0.05)
    with pytest.raises(BadInputError, match="use expert"):
        Quality.parse("gaussian")
    with pytest.raises(BadInputError, match="between 0 and 1"):
        Quality.parse("epsilon:2")


def test_amount_is_episodes_or_transitions_with_200_episodes_when_neither():
    assert GenerationSpec().episodes == 200 and GenerationSpec().transitions is None
    by_frames = GenerationSpec(transitions=300)  # what a study file with only `transitions` builds
    assert by_frames.episodes is None
    by_frames.validate()
    with pytest.raises(BadInputError, match=r"give exactly one of episodes \(--episodes\) and transitions"):
        GenerationSpec(episodes=5, transitions=300).validate()


TEN_TASKS = [f"task{i}" for i in range(10)]


def test_task_subset_without_held_out_tasks_is_drawn_as_before():
    # The draw that made existing datasets: permutation([seed, 11]) over all selected tasks.
    assert task_split(GenerationSpec(num_tasks=4, seed=0), TEN_TASKS)["train"] == [
        "task0", "task4", "task6", "task7",
    ]  # fmt: skip
    assert task_split(GenerationSpec(num_tasks=4, seed=1), TEN_TASKS)["train"] == [
        "task0", "task5", "task7", "task9",
    ]  # fmt: skip


@pytest.mark.parametrize("seed", range(4))
def test_held_out_tasks_are_set_aside_before_the_subset_is_drawn(seed):
    # task4 is in seed 0's subset, task3 in none of those above: both must work.
    for held_out in ("task3", "task4"):
        split = task_split(GenerationSpec(num_tasks=4, heldout_tasks=(held_out,), seed=seed), TEN_TASKS)
        assert len(split["train"]) == 4 and held_out not in split["train"]
        assert split["heldout_tasks"] == [held_out] and split["validation"] == split["train"]
    with pytest.raises(BadInputError, match="only 9 tasks were selected once 1 are held out"):
        task_split(GenerationSpec(num_tasks=10, heldout_tasks=("task3",)), TEN_TASKS)


def test_size_estimate_from_the_spaces_and_the_horizon(tmp_path):
    pointmass = get_family("pointmass").spec
    # 8 state + 2 action + 2 expert action float32, reward and timestamp float32, two bools, four int64
    assert frame_bytes(pointmass) == 12 * 4 + 2 * 4 + 2 + 4 * 8
    # per episode: 10 statistics of the 20 values of a frame, as float64
    assert estimated_bytes(pointmass, episodes=2, frames=300) == 300 * 90 + 2 * 10 * 20 * 8
    check_amount(pointmass, 100_000, 100_000 * 150, tmp_path)  # 1.4 GB: a large but sane amount passes
    with pytest.raises(BadInputError, match="need up to .* on disk but .* free"):
        check_amount(pointmass, 10**12, 10**12 * 150, tmp_path)


def test_overwrite_refuses_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("keep")
    with pytest.raises(BadInputError, match="not a roboscale dataset"):
        generate(GenerationSpec(episodes=4), tmp_path / "ds", overwrite=True)
    assert (tmp_path / "ds" / "notes.txt").read_text() == "keep"
    (tmp_path / "empty").mkdir()  # nothing in it to lose
    assert generate(GenerationSpec(episodes=4), tmp_path / "empty", overwrite=True).total_episodes == 4


def test_default_folder_names_what_it_will_hold():
    assert default_out(GenerationSpec()) == Path("data/pointmass-all-200ep-s0")
    # 20 validation episodes over 1 training task: 20 episodes of the held-out task on top
    assert default_out(GenerationSpec(heldout_tasks=("push",), seed=3)) == Path("data/pointmass-all-220ep-s3")
    assert default_out(GenerationSpec(tasks="reach", transitions=5000)) == Path("data/pointmass-reach-5000fr-s0")
