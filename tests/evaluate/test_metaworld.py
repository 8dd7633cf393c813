"""A fast Meta-World smoke test: the expert and a tiny policy in the loop, deterministically, and camera
frames rendered for a policy that sees images."""

import numpy as np

from roboscale.evaluate import ExpertPolicySource, evaluate_policy, plan_episodes, run_episodes
from roboscale.evaluate.images import Camera
from roboscale.evaluate.policy import ExpertPolicy


def test_the_expert_solves_reach_on_held_out_configurations():
    plan = plan_episodes(["reach-v3"], {"reach-v3": 0}, 2, seed=0)
    results, timing = run_episodes(ExpertPolicySource("metaworld"), "metaworld", plan, max_steps=150, envs=2)
    assert all(r.success for r in results) and all(r.length < 150 for r in results)
    assert timing.env_steps == sum(r.length for r in results)


def test_a_tiny_policy_runs_in_metaworld_deterministically(metaworld_run):
    first = evaluate_policy(metaworld_run, episodes=2, max_steps=15, envs=2)
    second = evaluate_policy(metaworld_run, episodes=2, max_steps=15, envs=2, write=False)
    assert first.env == "metaworld" and first.tasks == ["reach-v3"]
    assert first.episodes == second.episodes
    assert first.timing.env_steps == sum(r.length for r in first.episodes)
    assert all(r.failure is None and np.isfinite(r.episode_return) for r in first.episodes)
    assert first.training_configs_excluded == 3


class FrameRecordingExpert(ExpertPolicy):
    """The Meta-World expert, keeping every batch of frames it is shown."""

    def __init__(self) -> None:
        super().__init__("metaworld")
        self.frames: list[np.ndarray] = []

    def act(self, observations, rows, frames=None):
        self.frames.append(frames.copy())
        return super().act(observations, rows)


def test_a_policy_that_sees_images_gets_the_corner2_frames_each_step():
    """Rendered headless (osmesa here) after the reset and after every step, the same frames
    for the same episodes; the arm moves, so the frames change."""
    plan = plan_episodes(["reach-v3"], {"reach-v3": 0}, 2, seed=0)
    camera = Camera("corner2", 32)
    seen = []
    for _ in range(2):
        expert = FrameRecordingExpert()
        results, timing = run_episodes(
            ExpertPolicySource("metaworld"), "metaworld", plan, max_steps=6, envs=2, camera=camera, policy=expert
        )
        seen.append(np.stack(expert.frames))
        assert timing.render_seconds > 0 and [r.length for r in results] == [6, 6]
    frames = seen[0]
    assert frames.shape == (6, 2, 32, 32, 3) and frames.dtype == np.uint8
    assert np.array_equal(seen[0], seen[1])
    assert not np.array_equal(frames[0], frames[-1])  # the arm moved
    assert frames.std() > 10  # a scene, not a blank image
