"""Closed-loop rollouts with real simulators and real (tiny) trained runs."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from roboscale.data import open_dataset
from roboscale.data.envs import get_family
from roboscale.evaluate import ExpertPolicySource, evaluate_policy, plan_episodes, run_episodes
from roboscale.evaluate.episodes import EvalEpisode, training_config_seeds
from roboscale.evaluate.policy import ExpertPolicy, TransformerPolicy, load_model
from roboscale.runfolder import read_run_folder
from roboscale.train.data import TokenizedData


def test_the_scripted_expert_solves_held_out_configurations():
    plan = plan_episodes(["reach", "push"], {"reach": 0, "push": 1}, 20, seed=0)
    results, timing = run_episodes(ExpertPolicySource("pointmass"), "pointmass", plan, max_steps=150, envs=16)
    assert [(r.task, r.ordinal) for r in results] == [(e.task, e.ordinal) for e in plan]
    assert np.mean([r.success for r in results if r.task == "reach"]) == 1.0
    assert np.mean([r.success for r in results if r.task == "push"]) >= 0.9
    assert timing.env_steps == sum(r.length for r in results)
    assert timing.policy_calls >= max(r.length for r in results) and timing.steps_per_policy_call > 2  # batched


def test_a_trained_policy_succeeds_where_an_untrained_one_fails(trained_policy, untrained_policy):
    trained = evaluate_policy(trained_policy, episodes=30, envs=10)
    untrained = evaluate_policy(untrained_policy, episodes=30, envs=10, write=False)
    assert trained.mean.success_rate >= 0.9 and trained.mean.ci_low > 0.7
    assert untrained.mean.success_rate <= 0.3 and untrained.mean.ci_high < trained.mean.ci_low
    assert trained.mean.mean_length < 40 < untrained.mean.mean_length  # solved early; wandering until the horizon
    assert trained.mean.mean_return > untrained.mean.mean_return
    summary = trained.per_task[0]
    assert (summary.task, summary.episodes, summary.failures) == ("reach", 30, 0)
    assert summary.successes == sum(r.success for r in trained.episodes)
    assert summary.mean_length == pytest.approx(np.mean([r.length for r in trained.episodes]))
    assert trained.training_configs_excluded == 150 and trained.max_steps == 150
    saved = json.loads((trained_policy / "eval" / "closed_loop-train-tasks-greedy-seed0-ep30.json").read_text())
    assert saved == json.loads(json.dumps(trained.to_dict()))


def test_results_depend_on_the_seed_only_not_on_workers(binned_policy):
    settings = {"episodes": 4, "max_steps": 30, "envs": 3, "write": False}
    greedy = evaluate_policy(binned_policy, **settings)
    events = {1: [], 2: []}  # progress as it came: ("steps", n) and ("episode", length)
    sampled = [
        evaluate_policy(
            binned_policy,
            sample=True,
            workers=workers,
            progress=lambda result, total, seen=events[workers]: seen.append(("episode", result.length)),
            steps_progress=lambda steps, seen=events[workers]: seen.append(("steps", steps)),
            **settings,
        )
        for workers in (1, 2)
    ]
    sampled.append(evaluate_policy(binned_policy, sample=True, **settings))
    assert sampled[0].episodes == sampled[1].episodes == sampled[2].episodes
    for seen, evaluation in zip(events.values(), sampled):
        assert seen[0] == ("steps", 0)  # the bar can show as soon as the policy has loaded
        assert sum(n for kind, n in seen if kind == "steps") == evaluation.timing.env_steps
        assert sorted(n for kind, n in seen if kind == "episode") == sorted(r.length for r in evaluation.episodes)
    first_episode = events[1].index(next(event for event in events[1] if event[0] == "episode"))
    assert first_episode >= min(r.length for r in sampled[0].episodes)  # one report per lockstep step before it
    assert greedy.episodes == evaluate_policy(binned_policy, **settings).episodes
    assert [r.episode_return for r in greedy.episodes] != [r.episode_return for r in sampled[0].episodes]
    other_seed = evaluate_policy(binned_policy, sample=True, seed=1, **settings)
    assert [r.config_seed for r in other_seed.episodes] != [r.config_seed for r in sampled[0].episodes]


def test_held_out_tasks_are_rolled_out_on_new_configurations(heldout_run):
    evaluation = evaluate_policy(heldout_run, heldout_tasks=True, episodes=3, max_steps=10, envs=3)
    assert evaluation.tasks == ["push"] and evaluation.task_selection == "heldout-tasks"
    assert Path(evaluation.path).name == "closed_loop-heldout-tasks-greedy-seed0-ep3.json"
    dataset = open_dataset(json.loads((heldout_run / "config.json").read_text())["data"])
    assert dataset.tasks == ["reach", "push"]  # push has a task id the model never trained
    push_seeds = training_config_seeds(dataset)["push"]  # the held-out split's own configurations
    assert len(push_seeds) == evaluation.training_configs_excluded > 0
    assert push_seeds.isdisjoint(r.config_seed for r in evaluation.episodes)
    assert evaluate_policy(heldout_run, episodes=1, max_steps=5, write=False).tasks == ["reach"]


@pytest.mark.parametrize("run_name", ["binned_policy", "trained_policy"])
def test_the_policy_sees_exactly_the_windows_training_saw(run_name, request):
    """Each action equals the model's prediction on the trainer's own window of the same frames
    (train.data): argmax slot by slot for bins, the regression output for continuous actions."""
    loaded = load_model(read_run_folder(request.getfixturevalue(run_name)), "cpu")
    policy, env = TransformerPolicy(loaded), get_family("pointmass").make("reach")
    policy.reset([EvalEpisode("reach", 0, 0, config_seed=12345, sample_seed=0)])
    observation, observations, actions = env.reset(12345), [], []
    steps, window = 14, loaded.model.config.context_steps  # more steps than the window: it slides
    for _ in range(steps):
        action = policy.act(observation[None], np.array([0]))[0]
        observations.append(observation)
        actions.append(action)
        observation, *_ = env.step(action)
    data = TokenizedData(
        states=loaded.state_tokenizer.encode(np.array(observations)),
        actions=loaded.action_tokenizer.encode(np.array(actions)),
        tasks=np.zeros(steps, dtype=np.int64),
        episode_end=np.full(steps, steps),
        split_starts={},
        split_frames={},
        round_trip={},
        state_tokenizer=loaded.state_tokenizer,
        action_tokenizer=loaded.action_tokenizer,
        n_tasks=1,
    )
    config = loaded.model.config
    with torch.no_grad():
        for t in range(steps):
            start = max(0, t - window + 1)
            batch = data.batch(np.array([start]), window, torch.device("cpu"))
            hidden = loaded.model(batch["states"], batch["actions"], batch["tasks"])
            grid = hidden.view(window, config.slots_per_step, -1)
            output = loaded.model.action_head(grid[t - start, config.state_tokens - 1 : config.slots_per_step - 1])
            if loaded.action_tokenizer.discrete:
                assert np.array_equal(output.argmax(dim=-1).numpy(), data.actions[t]), f"step {t}"
            else:
                np.testing.assert_allclose(output.numpy(), data.actions[t], atol=1e-5, err_msg=f"step {t}")


class GlitchingExpert(ExpertPolicy):
    """The pointmass expert, except that batch row ``row`` gets a NaN action at step ``step``."""

    def __init__(self, row: int, step: int) -> None:
        super().__init__("pointmass")
        self.row, self.step, self.calls = row, step, 0

    def reset(self, episodes):
        super().reset(episodes)
        self.calls = 0

    def act(self, observations, rows):
        actions = super().act(observations, rows)
        if self.calls == self.step:
            actions[rows == self.row] = np.nan
        self.calls += 1
        return actions


@dataclass(frozen=True)
class GlitchingExpertSource:
    row: int
    step: int

    def build(self) -> GlitchingExpert:
        return GlitchingExpert(self.row, self.step)


def test_a_non_finite_action_fails_its_episode_and_nothing_else():
    plan = plan_episodes(["reach"], {"reach": 0}, 4, seed=0)
    results, _ = run_episodes(GlitchingExpertSource(row=1, step=3), "pointmass", plan, max_steps=150, envs=4)
    assert results[1].failure == "the policy's action was not finite at step 3"
    assert not results[1].success and results[1].length == 3
    assert all(r.success and r.failure is None for i, r in enumerate(results) if i != 1)


def test_a_policy_with_nan_weights_is_recorded_as_failing(trained_policy, tmp_path):
    broken = tmp_path / "nan"
    shutil.copytree(trained_policy, broken, ignore=shutil.ignore_patterns("eval"))
    weights = load_file(broken / "checkpoint" / "model.safetensors")
    weights = {
        name: tensor.fill_(float("nan")) if "action_head" in name else tensor for name, tensor in weights.items()
    }
    save_file(weights, broken / "checkpoint" / "model.safetensors")
    evaluation = evaluate_policy(broken, episodes=3, envs=2)
    assert evaluation.mean.success_rate == 0.0 and evaluation.mean.failures == 3
    assert all(r.failure == "the policy's action was not finite at step 0" for r in evaluation.episodes)
    assert evaluation.mean.ci_low == 0.0 and evaluation.mean.mean_length == 0.0
