"""Benchmark: decoding speed in evaluation, with the key-value cache against recomputing the window.

Two suites (``--suite``):

``state`` (the default; issue 13): closed-loop rollout throughput of BC policies against raw
simulator stepping. In one run, on the same held-out episodes (one lockstep batch of ``--envs``
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

``images`` (issue 15): decode speed per tokens-per-frame setting (``--tokens 16,64,256``), for
models that see camera frames (pointmass ``top`` camera at ``--image-size`` px, ``patch:P`` image
tokens with P chosen for each setting, or ``--image-kind vq`` for ``vq:K@T``; one width
``--width``, trained for ``--train-steps`` steps: speed does not depend on quality):

- closed loop: a BC policy that sees the image (observation = image) acting in a lockstep batch of
  ``--envs`` pointmass episodes of ``--image-steps`` steps (the window slides after
  ``--context`` steps): policy milliseconds per batched call and environment steps per second
  of the whole loop (rendering and the simulator included), cached and recomputed (every
  action slot reruns the whole window: the peer);
- open loop: a world model that sees the image generating ``--horizon`` frames ahead of
  ``--starts`` validation starts, greedy, one image token after another: generated frames per
  second, cached (the window before each frame prefilled once, then one token per slot) and
  recomputed (the whole window rerun for every token: the peer).

Rates are medians over ``--repeats`` (interleaved), one process, one thread.

Run: python bench/eval_speed.py [--env pointmass --tasks reach,push --widths 32]
     python bench/eval_speed.py --suite images [--tokens 16,64 --image-kind vq]
"""

from __future__ import annotations

import argparse
import json
import math
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


# -- the images suite ---------------------------------------------------------------------


def image_tokenizer_spec(tokens: int, args) -> str:
    """The image tokenizer of one tokens-per-frame setting: patch:P with (size/P)^2 = tokens, or vq:K@T."""
    if args.image_kind == "vq":
        return f"vq:{args.codes}@{tokens}"
    side = math.isqrt(tokens)
    if side * side != tokens or args.image_size % side:
        raise SystemExit(f"--tokens {tokens}: patches need a square number whose root divides --image-size")
    return f"patch:{args.image_size // side}"


def image_dataset(folder: Path, args) -> Path:
    """Pointmass reach with the top camera, episodes long enough for the open-loop horizon."""
    spec = GenerationSpec(
        env="pointmass",
        tasks="reach",
        episodes=12,
        seed=0,
        validation_fraction=0.25,
        max_steps=max(args.image_steps, args.horizon + 2),
        stop_on_success=False,
        camera="top",
        image_size=args.image_size,
    )
    return generate(spec, folder / "images").out


def image_run(dataset: Path, out: Path, task: str, spec: str, args) -> Path:
    config = TrainConfig(
        data=str(dataset),
        task=task,
        tokenizer="continuous",
        observation="image",
        image_tokenizer=spec,
        d_model=args.width,
        context_steps=args.context,
        steps=args.train_steps,
        batch_size=8,
        threads=1,
        eval_points=2,
        eval_windows=8,
    )
    train(config, out)
    return out


def closed_loop_speed(run: Path, episodes: list[EvalEpisode], args, use_cache: bool) -> dict:
    """Policy milliseconds per batched call and environment steps per second, rendering included."""
    from roboscale.evaluate.images import Camera

    source = RunPolicySource(str(run), device="cpu", use_cache=use_cache)
    camera = Camera("top", args.image_size)
    _, timing = run_episodes(
        source,
        "pointmass",
        episodes,
        max_steps=args.image_steps,
        envs=len(episodes),
        camera=camera,
        policy=source.build(),
    )
    return {
        "policy_ms_per_call": 1000 * timing.policy_seconds / timing.policy_calls,
        "steps_per_second": timing.steps_per_second,
    }


def open_loop_speed(run: Path, args, use_cache: bool) -> dict:
    """Frames generated per second (and image tokens per second) by greedy open-loop decoding."""
    from roboscale.evaluate.images import run_camera
    from roboscale.evaluate.policy import load_model
    from roboscale.evaluate.runs import open_run_dataset
    from roboscale.evaluate.world_model import choose_starts, encode_frames, predict_open_loop, validation_frames
    from roboscale.runfolder import read_run_folder

    folder = read_run_folder(run)
    dataset = open_run_dataset(folder)
    loaded = load_model(folder, "cpu")
    frames = validation_frames(dataset, run_camera(folder, dataset))
    starts = frames.local(choose_starts(dataset, args.horizon, args.starts, 1))
    encoded = encode_frames(loaded, frames)
    started = time.perf_counter()
    predict_open_loop(loaded, encoded, starts, args.horizon, use_cache=use_cache)
    seconds = time.perf_counter() - started
    generated = len(starts.start) * args.horizon
    return {
        "frames_per_second": generated / seconds,
        "tokens_per_second": generated * loaded.image_tokenizer.tokens / seconds,
    }


def image_suite(args) -> None:
    """Build the runs, measure every row --repeats times (interleaved), print medians and ratios."""
    settings = [int(tokens) for tokens in args.tokens.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        dataset = image_dataset(Path(folder), args)
        runs = {}
        for tokens in settings:
            spec = image_tokenizer_spec(tokens, args)
            for task in ("bc", "wm"):
                runs[tokens, task] = image_run(dataset, Path(folder) / f"{task}-{tokens}", task, spec, args)
        data = open_dataset(dataset)
        episodes = plan_episodes(["reach"], {"reach": 0}, args.envs, seed=0, exclude=training_config_seeds(data))
        rows: dict[tuple[int, str, bool], list[dict]] = {}
        for _ in range(args.repeats):
            for tokens in settings:
                for use_cache in (False, True):
                    closed = closed_loop_speed(runs[tokens, "bc"], episodes, args, use_cache)
                    rows.setdefault((tokens, "closed", use_cache), []).append(closed)
                    opened = open_loop_speed(runs[tokens, "wm"], args, use_cache)
                    rows.setdefault((tokens, "open", use_cache), []).append(opened)
    report_images(args, settings, rows)


def report_images(args, settings: list[int], rows: dict) -> None:
    medians = {
        key: {name: statistics.median(run[name] for run in runs) for name in runs[0]} for key, runs in rows.items()
    }
    print(
        f"pointmass top camera {args.image_size}x{args.image_size}, {args.image_kind} image tokens, d_model "
        f"{args.width}, context {args.context} steps, 1 thread, medians of {args.repeats}"
    )
    print(
        f"closed loop: BC (observation image) acting for {args.envs} episodes in lockstep, {args.image_steps} steps; "
        f"open loop: WM generating {args.horizon} frames ahead of {args.starts} validation starts"
    )
    header = (
        f"{'tokens/frame':>12s} {'act ms (recomputed)':>20s} {'act ms (cached)':>16s} {'speed-up':>9s} "
        f"{'env steps/s (cached)':>21s} {'frames/s (recomputed)':>22s} {'frames/s (cached)':>18s} {'speed-up':>9s}"
    )
    print(header)
    summary = {}
    for tokens in settings:
        act_before = medians[tokens, "closed", False]["policy_ms_per_call"]
        act_after = medians[tokens, "closed", True]["policy_ms_per_call"]
        frames_before = medians[tokens, "open", False]["frames_per_second"]
        frames_after = medians[tokens, "open", True]["frames_per_second"]
        summary[tokens] = {
            "closed_loop_act_ms": {"recomputed": act_before, "cached": act_after, "speedup": act_before / act_after},
            "closed_loop_steps_per_second": medians[tokens, "closed", True]["steps_per_second"],
            "open_loop_frames_per_second": {
                "recomputed": frames_before,
                "cached": frames_after,
                "speedup": frames_after / frames_before,
            },
            "open_loop_tokens_per_second": medians[tokens, "open", True]["tokens_per_second"],
        }
        print(
            f"{tokens:12d} {act_before:20.2f} {act_after:16.2f} {act_before / act_after:8.2f}x "
            f"{medians[tokens, 'closed', True]['steps_per_second']:21.1f} {frames_before:22.2f} {frames_after:18.2f} "
            f"{frames_after / frames_before:8.2f}x"
        )
    print(json.dumps({"summary": summary}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", choices=("state", "images"), default="state")
    parser.add_argument("--env", default="metaworld")
    parser.add_argument("--tasks", default="reach-v3,push-v3")
    parser.add_argument("--envs", type=int, default=25, help="episodes, all in one batched policy call per step")
    parser.add_argument("--max-steps", type=int, default=60, help="horizon (the window slides after 8 steps)")
    parser.add_argument("--tokenizer", default="uniform:256", help="the README's: one token per dimension")
    parser.add_argument("--widths", default="64,128", help="policy widths (ladder depth and heads)")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    images = parser.add_argument_group("images suite")
    images.add_argument("--tokens", default="16,64,256", help="image tokens per frame, one model pair each")
    images.add_argument("--image-kind", choices=("patch", "vq"), default="patch")
    images.add_argument("--codes", type=int, default=64, help="vq codebook size K")
    images.add_argument("--image-size", type=int, default=64)
    images.add_argument("--width", type=int, default=32, help="d_model of the image models")
    images.add_argument("--context", type=int, default=4, help="context steps of the image models")
    images.add_argument("--image-steps", type=int, default=8, help="closed loop: steps per episode")
    images.add_argument("--horizon", type=int, default=3, help="open loop: frames generated per start")
    images.add_argument("--starts", type=int, default=4, help="open loop: validation starts (one per episode)")
    args = parser.parse_args()
    args.widths = [int(width) for width in args.widths.split(",")]
    torch.set_num_threads(1)
    if args.suite == "images":
        args.envs = min(args.envs, 8) if args.envs == 25 else args.envs  # the state suite's default is 25
        image_suite(args)
        return

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
