"""Benchmark: closed-loop rollout throughput of BC policies against raw simulator stepping.

In one run, on the same held-out episodes (one lockstep batch of ``--envs``
episodes: same tasks, same initial configurations, same horizon):

- raw: reset + scripted expert + env.step in a bare loop over prebuilt simulators (the peer);
- the rollout machinery driven by the scripted expert (its own overhead);
- for each width in ``--widths``: a BC transformer in the loop, decoding with the
  key-value cache (after) and rerunning the whole window per action slot (before,
  ``use_cache=False``: what evaluation did before the cache).

Rates are environment steps per second of rollout loop in one process, one thread
(simulator construction and model loading excluded), medians over ``--repeats``.
Each policy is a run trained here for a few steps (its quality does not matter for
speed: episodes that fail run to the horizon, so the policy stays in the loop).
Targets (issue 13): a d64 uniform:256 policy at >= 0.5x raw stepping, d128 at >= 10x
its rate before the cache.

Run: python bench/eval_speed.py [--env pointmass --tasks reach,push --widths 32]
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


def tiny_dataset(folder: Path, args) -> Path:
    """A few demonstrations of the tasks (enough to fit tokenizers and train a few steps)."""
    spec = GenerationSpec(env=args.env, tasks=args.tasks, episodes=4 * len(args.tasks.split(",")), seed=0)
    return generate(spec, folder / "data").out


def tiny_run(dataset: Path, out: Path, d_model: int, args) -> Path:
    """A BC run of width ``d_model`` (ladder depth and heads) trained for ``--train-steps``."""
    config = TrainConfig(
        data=str(dataset),
        task="bc",
        tokenizer=args.tokenizer,
        d_model=d_model,
        steps=args.train_steps,
        batch_size=16,
        threads=1,
        eval_points=2,
        eval_windows=16,
    )
    train(config, out)
    return out


def raw_expert(env: str, episodes: list[EvalEpisode], max_steps: int) -> dict:
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
    return {"steps_per_second": steps / (time.perf_counter() - started)}


def in_the_loop(source, env: str, episodes: list[EvalEpisode], max_steps: int, envs: int) -> dict:
    """Steps per second with ``source``'s policy acting, its share of the loop time, batch size."""
    policy = source.build()
    _, timing = run_episodes(source, env, episodes, max_steps=max_steps, envs=envs, policy=policy)
    return {
        "steps_per_second": timing.steps_per_second,
        "policy_share": timing.policy_seconds / timing.loop_seconds,
        "envs_per_call": timing.steps_per_policy_call,
    }


def measure(args, runs: dict[int, Path], episodes: list[EvalEpisode]) -> dict[str, list[dict]]:
    """Every row, ``--repeats`` times, interleaved so that a change in machine load hits all rows."""
    rows: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        rows.setdefault("raw expert loop", []).append(raw_expert(args.env, episodes, args.max_steps))
        expert = in_the_loop(ExpertPolicySource(args.env), args.env, episodes, args.max_steps, args.envs)
        rows.setdefault("rollout machinery, expert", []).append(expert)
        for width, run in runs.items():
            for use_cache, label in ((False, "before: no cache"), (True, "after: kv cache")):
                source = RunPolicySource(str(run), device="cpu", use_cache=use_cache)
                result = in_the_loop(source, args.env, episodes, args.max_steps, args.envs)
                rows.setdefault(f"d{width} policy, {label}", []).append(result)
    return rows


def report(args, rows: dict[str, list[dict]], episodes: list[EvalEpisode]) -> None:
    """The table of medians, the targets' ratios, and one JSON line."""
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for name, runs in rows.items()
    }
    raw = medians["raw expert loop"]["steps_per_second"]
    print(
        f"env {args.env}, tasks {args.tasks}, {len(episodes)} held-out episodes in one batch, horizon "
        f"{args.max_steps}, policies {args.tokenizer} (context 8), 1 thread, medians of {args.repeats}"
    )
    print(f"{'':34s} {'steps/s':>9s} {'vs raw':>7s} {'policy time':>12s} {'envs/call':>10s}")
    for name, values in medians.items():
        share = f"{values['policy_share']:.0%}" if "policy_share" in values else "-"
        per_call = f"{values['envs_per_call']:.1f}" if "envs_per_call" in values else "-"
        rate = values["steps_per_second"]
        print(f"{name:34s} {rate:9.1f} {rate / raw:7.3f} {share:>12s} {per_call:>10s}")
    summary = {"raw_steps_per_second": raw}
    for width in args.widths:
        before = medians[f"d{width} policy, before: no cache"]["steps_per_second"]
        after = medians[f"d{width} policy, after: kv cache"]["steps_per_second"]
        summary[f"d{width}"] = {
            "before": before,
            "after": after,
            "speedup": after / before,
            "before_vs_raw": before / raw,
            "after_vs_raw": after / raw,
        }
        print(
            f"d{width}: {before:.1f} -> {after:.1f} steps/s ({after / before:.2f}x); "
            f"vs raw stepping {before / raw:.3f}x -> {after / raw:.3f}x"
        )
    print(json.dumps({"summary": summary, "medians": medians}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="metaworld")
    parser.add_argument("--tasks", default="reach-v3,push-v3")
    parser.add_argument("--envs", type=int, default=25, help="episodes, all in one batched policy call per step")
    parser.add_argument("--max-steps", type=int, default=60, help="horizon (the window slides after 8 steps)")
    parser.add_argument("--tokenizer", default="uniform:256", help="the README's: one token per dimension")
    parser.add_argument("--widths", default="64,128", help="policy widths (ladder depth and heads)")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.widths = [int(width) for width in args.widths.split(",")]
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as folder:
        dataset = tiny_dataset(Path(folder), args)
        runs = {width: tiny_run(dataset, Path(folder) / f"d{width}", width, args) for width in args.widths}
        data = open_dataset(dataset)
        tasks = get_family(args.env).task_names(args.tasks)
        indices = {task: data.tasks.index(task) for task in tasks}
        per_task = -(-args.envs // len(tasks))
        planned = plan_episodes(tasks, indices, per_task, seed=0, exclude=training_config_seeds(data))
        episodes = planned[: args.envs]
        rows = measure(args, runs, episodes)
    report(args, rows, episodes)


if __name__ == "__main__":
    main()
