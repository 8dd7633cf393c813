"""A small real Meta-World generation: success, layout and determinism."""

import numpy as np

from roboscale.data import GenerationSpec, generate, open_dataset


def test_two_tasks_a_few_episodes(tmp_path):
    spec = GenerationSpec(env="metaworld", tasks="reach-v3,push-v3", episodes=6, validation_fraction=0.34, seed=3)
    first = open_dataset(generate(spec, tmp_path / "a", workers=2).out)
    second = open_dataset(generate(spec, tmp_path / "b", workers=1).out)
    assert first.fingerprint() == second.fingerprint()

    assert first.info["fps"] == 80 and first.info["robot_type"] == "sawyer"
    assert first.features["observation.state"].shape == (39,) and first.features["action"].shape == (4,)
    assert first.splits == {"train": range(0, 4), "validation": range(4, 6)}
    assert first.episodes["success"].all()  # the scripted experts solve reach and push
    assert list(first.episodes["task"]) == ["reach-v3", "push-v3"] * 3
    frames = first.frames(["observation.state", "action"])
    assert np.all(np.abs(frames["action"]) <= 1.0)
    starts = frames["observation.state"][first.episodes["dataset_from_index"].to_numpy()]
    assert len(np.unique(starts[:, -3:], axis=0)) == 6  # every episode has its own goal
    assert first.provenance["env_versions"]["mujoco"] == "3.3.0"
