import gymnasium as gym
import numpy as np
import pytest

from roboscale.data import GenerationSpec, Quality, generate, import_lerobot, import_minari, open_dataset
from roboscale.errors import BadInputError


def test_import_the_lerobot_written_sample(fixtures_dir, tmp_path):
    source = open_dataset(fixtures_dir / "lerobot_v3_sample")
    imported = open_dataset(
        import_lerobot(fixtures_dir / "lerobot_v3_sample", tmp_path / "out", validation_fraction=0.34)
    )
    assert imported.tasks == source.tasks
    assert len(imported.episodes) == 3 and imported.total_frames == 18
    assert len(imported.episode_indices("validation")) == 1
    original = source.frames(["observation.state", "action", "next.reward", "next.success"])
    copied = imported.frames(["observation.state", "action", "next.reward", "next.success"])
    for row in imported.episodes.itertuples():
        src = source.episodes.iloc[row.source_episode_index]
        here = slice(row.dataset_from_index, row.dataset_to_index)
        there = slice(src.dataset_from_index, src.dataset_to_index)
        assert row.task == src.task
        for name in copied:
            np.testing.assert_array_equal(copied[name][here], original[name][there])
    assert imported.provenance["dropped_features"] == []


def test_round_trip_of_a_generated_dataset(tmp_path):
    spec = GenerationSpec(episodes=30, quality=Quality(action_noise=0.05))
    made = open_dataset(generate(spec, tmp_path / "made").out)
    again = open_dataset(import_lerobot(tmp_path / "made", tmp_path / "again"))
    assert again.splits == made.splits  # the existing validation split is kept
    for name in ("observation.state", "action", "next.reward", "next.success", "next.done", "episode_index"):
        np.testing.assert_array_equal(again.frames([name])[name], made.frames([name])[name])
    np.testing.assert_allclose(again.stats["action"]["mean"], made.stats["action"]["mean"])


def pendulum_minari_dataset(episodes=6):
    """A real local Minari dataset: Pendulum-v1 rollouts under a random policy."""
    minari = pytest.importorskip("minari")
    from minari.data_collector import EpisodeBuffer

    env = gym.make("Pendulum-v1", max_episode_steps=25)
    buffers = []
    for index in range(episodes):
        observation, _ = env.reset(seed=index)
        env.action_space.seed(index)
        observations, actions, rewards, ends = [observation], [], [], []
        while True:
            action = env.action_space.sample()
            observation, reward, terminated, truncated, _ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            ends.append((terminated, truncated))
            if terminated or truncated:
                break
        buffers.append(
            EpisodeBuffer(
                id=index,
                observations=np.array(observations),
                actions=np.array(actions),
                rewards=np.array(rewards),
                terminations=np.array([e[0] for e in ends]),
                truncations=np.array([e[1] for e in ends]),
                infos={},
            )
        )
    minari.create_dataset_from_buffers(
        "local/pendulum-random-v0",
        buffers,
        env=env,
        algorithm_name="random",
        author="roboscale tests",
        author_email="tests@roboscale",
        code_permalink="tests",
        description="random pendulum",
    )
    return minari.load_dataset("local/pendulum-random-v0")


@pytest.mark.filterwarnings("ignore:`eval_env` is set to None")
def test_import_a_local_minari_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    source = pendulum_minari_dataset()
    imported = open_dataset(import_minari("local/pendulum-random-v0", tmp_path / "out", fps=20))
    assert len(imported.episodes) == 6 and imported.total_frames == 6 * 25
    assert imported.fps == 20 and imported.tasks == ["Pendulum-v1"]
    frames = imported.frames(["observation.state", "action", "next.reward", "next.done"])
    for row in imported.episodes.itertuples():
        episode = next(iter(source.iterate_episodes([row.source_episode_index])))
        span = slice(row.dataset_from_index, row.dataset_to_index)
        np.testing.assert_allclose(frames["observation.state"][span], episode.observations[:-1], rtol=1e-6)
        np.testing.assert_allclose(frames["action"][span], episode.actions.reshape(-1), rtol=1e-6)  # shape (1,)
        np.testing.assert_allclose(frames["next.reward"][span], episode.rewards, rtol=1e-6)
    # the same dataset, named by its folder instead of its id
    by_path = open_dataset(import_minari(tmp_path / "minari" / "local" / "pendulum-random-v0", tmp_path / "out2"))
    assert by_path.total_frames == imported.total_frames


def test_missing_minari_dataset_never_downloads(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    with pytest.raises(BadInputError, match="never downloads"):
        import_minari("D4RL/door/human-v2", tmp_path / "out")
