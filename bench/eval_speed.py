"""Benchmark: closed-loop rollout throughput with a trained policy against raw simulator stepping.

In one run, on the same held-out episodes (same tasks and initial configurations):

- raw: reset + scripted expert + env.step in a bare loop over prebuilt simulators (the peer);
- the rollout machinery driven by the scripted expert (its own overhead);
- a trained BC transformer in the loop, one environment per policy call (one-sample inference);
- the same policy batched over 10 and 25 environments per call.

Rates are environment steps per second of rollout loop in one process (simulator
construction and model loading excluded), medians over --repeats. The policy is
a tiny run trained here first (its quality does not matter for speed: episodes
that fail run to the horizon, so the policy stays in the loop).

Run: python bench/eval_speed.py [--env pointmass --tasks reach,push]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from roboscale.data import GenerationSpec, generate, open_dataset
from roboscale.data.envs import get_family
from roboscale.evaluate import ExpertPolicySource, RunPolicySource, plan_episodes, run_episodes
from roboscale.evaluate.episodes import EvalEpisode, training_config_seeds
from roboscale.train import TrainConfig, train


def tiny_run(folder: Path, args) -> Path:
    """Generate a few demonstrations of the tasks and train a small BC run on them."""
    spec = GenerationSpec(env=args.env, tasks=args.tasks, episodes=4 * len(args.tasks.split(",")), seed=0)
    dataset = generate(spec, folder / "data").out
    config = TrainConfig(
        data=str(dataset),
        task="bc",
        tokenizer=args.tokenizer,
        d_model=args.d_model,
        steps=args.train_steps,
        batch_size=32,
        threads=1,
        eval_points=2,
        eval_windows=64,
    )
    train(config, folder / "run")
    return folder / "run"


def raw_expert(env: str, episodes: list[EvalEpisode], max_steps: int) -> float:
    """Steps per second of the bare expert loop (simulators built before the clock starts)."""
    family = get_family(env)
    envs = {task: family.make(task) for task in {episode.task for episode in episodes}}
    steps = 0
    started = time.perf_counter()
    for episode in episodes:
        simulator = envs[episode.task]
        observation = simulator.reset(episode.config_seed)
        for _ in range(max_steps):
            observation, _, terminated, truncated, info = simulator.step(simulator.expert_action(observation))
            steps += 1
            if terminated or truncated or info["success"]:
                break
    return steps / (time.perf_counter() - started)


def in_the_loop(source, env: str, episodes: list[EvalEpisode], max_steps: int, envs: int) -> dict:
    policy = source.build()
    _, timing = run_episodes(source, env, episodes, max_steps=max_steps, envs=envs, policy=policy)
    return {
        "steps_per_second": timing.steps_per_second,
        "policy_share": timing.policy_seconds / timing.loop_seconds,
        "envs_per_call": timing.steps_per_policy_call,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="metaworld")
    parser.add_argument("--tasks", default="reach-v3,push-v3")
    parser.add_argument("--episodes", type=int, default=25, help="episodes per task")
    parser.add_argument("--single-episodes", type=int, default=4, help="episodes for the one-env-per-call row")
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--tokenizer", default="uniform:256", help="the demo's: one token per dimension")
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as folder:
        run = tiny_run(Path(folder), args)
        dataset = open_dataset(run.parent / "data")
        tasks = get_family(args.env).task_names(args.tasks)
        indices = {task: dataset.tasks.index(task) for task in tasks}
        episodes = plan_episodes(tasks, indices, args.episodes, seed=0, exclude=training_config_seeds(dataset))
        policy = RunPolicySource(str(run), device="cpu")
        rows: dict[str, list[dict]] = {}
        for _ in range(args.repeats):
            rows.setdefault("raw expert loop", []).append(
                {"steps_per_second": raw_expert(args.env, episodes, args.max_steps)}
            )
            expert = in_the_loop(ExpertPolicySource(args.env), args.env, episodes, args.max_steps, 25)
            rows.setdefault("rollout machinery, expert, 25 envs", []).append(expert)
            single = episodes[: args.single_episodes]
            rows.setdefault("policy, 1 env per call", []).append(
                in_the_loop(policy, args.env, single, args.max_steps, 1)
            )
            for envs in (10, 25):
                rows.setdefault(f"policy, {envs} envs per call", []).append(
                    in_the_loop(policy, args.env, episodes, args.max_steps, envs)
                )

    print(
        f"env {args.env}, tasks {args.tasks}, {len(episodes)} held-out episodes, horizon {args.max_steps}, "
        f"policy {args.tokenizer} d_model {args.d_model}, 1 thread, medians of {args.repeats}"
    )
    print(f"{'':38s} {'steps/s':>9s} {'vs raw':>7s} {'policy time':>12s} {'envs/call':>10s}")
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for name, runs in rows.items()
    }
    raw = medians["raw expert loop"]["steps_per_second"]
    for name, values in medians.items():
        share = f"{values['policy_share']:.0%}" if "policy_share" in values else "-"
        per_call = f"{values['envs_per_call']:.1f}" if "envs_per_call" in values else "-"
        print(
            f"{name:38s} {values['steps_per_second']:9.0f} {values['steps_per_second'] / raw:7.2f} {share:>12s} {per_call:>10s}"
        )
    ratio = medians["policy, 25 envs per call"]["steps_per_second"] / raw
    batching = (
        medians["policy, 25 envs per call"]["steps_per_second"] / medians["policy, 1 env per call"]["steps_per_second"]
    )
    print(
        f"policy in the loop (25 envs) vs raw expert stepping: {ratio:.2f}x; batching gain over 1 env: {batching:.1f}x"
    )
    print(json.dumps({"ratio_25_envs_vs_raw": ratio, "batching_gain": batching, "medians": medians}))


if __name__ == "__main__":
    main()
