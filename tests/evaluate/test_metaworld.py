"""A fast Meta-World smoke test: the expert and a tiny policy in the loop, deterministically."""

import numpy as np

from roboscale.evaluate import ExpertPolicySource, evaluate_policy, plan_episodes, run_episodes


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
