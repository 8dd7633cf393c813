"""Benchmark: demonstration generation against raw simulator stepping, 1 vs 2 workers, memory.

In one run, on the same episodes (same tasks, configurations and expert):

- raw: reset + scripted expert + env.step in a bare loop, nothing recorded (the peer);
- roboscale generate, 1 worker: the same episodes recorded and written as a dataset;
- roboscale generate, 2 workers;
- peak memory (max RSS) of generating a small and a 10x larger dataset, each in a
  fresh process, to show that memory does not grow with the dataset.

Rates are medians over --repeats. Run: python bench/data_generation.py [--env pointmass]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roboscale.data import GenerationSpec, generate
from roboscale.data.envs import get_family
from roboscale.data.generate import plan_episode, task_split


def raw_stepping(spec: GenerationSpec) -> tuple[float, int, int]:
    """Seconds, episodes and steps of the bare loop over the dataset's own episodes."""
    os.environ["OMP_NUM_THREADS"] = "1"
    family = get_family(spec.env)
    tasks = task_split(spec, family.task_names(spec.tasks))["train"]
    max_steps = spec.max_steps or family.spec.max_steps
    plans = [plan_episode(spec, tasks, "train", k) for k in range(spec.episodes)]
    steps = 0
    start = time.perf_counter()  # like generate(), the clock includes building the simulators
    envs = {task: family.make(task) for task in tasks}
    for plan in plans:
        env = envs[plan.task]
        observation = env.reset(plan.config_seed)
        for _ in range(max_steps):
            observation, _, terminated, truncated, info = env.step(env.expert_action(observation))
            steps += 1
            if terminated or truncated or info["success"]:
                break
    return time.perf_counter() - start, len(plans), steps


def generated(spec: GenerationSpec, workers: int) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as folder:
        report = generate(spec, Path(folder) / "ds", workers=workers)
    return report.seconds, report.total_episodes, report.transitions


def peak_memory_mb(env: str, tasks: str, episodes: int) -> float:
    """Max RSS of a fresh process generating ``episodes`` episodes."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    code = (
        "import tempfile\n"
        "from roboscale.data import GenerationSpec, generate\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        f"    generate(GenerationSpec(env={env!r}, tasks={tasks!r}, episodes={episodes}), d + '/ds')\n"
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "print(int(peak.split()[1]) / 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="metaworld")
    parser.add_argument("--tasks", default="reach-v3,push-v3,pick-place-v3,drawer-open-v3")
    parser.add_argument("--episodes", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-episodes", type=int, default=1000, help="small size for the memory check (x10 large)")
    args = parser.parse_args()

    # validation_fraction 0: the raw loop and the generator run exactly the same episodes.
    spec = GenerationSpec(env=args.env, tasks=args.tasks, episodes=args.episodes, validation_fraction=0.0)
    rows = {"raw stepping (no recording)": [], "generate, 1 worker": [], "generate, 2 workers": []}
    for _ in range(args.repeats):
        rows["raw stepping (no recording)"].append(raw_stepping(spec))
        rows["generate, 1 worker"].append(generated(spec, 1))
        rows["generate, 2 workers"].append(generated(spec, 2))

    print(f"env {args.env}, tasks {args.tasks}, {args.episodes} episodes, medians of {args.repeats}")
    print(f"{'':32s} {'episodes/s':>11s} {'steps/s':>10s} {'vs raw':>8s}")
    rates = {}
    for name, runs in rows.items():
        episode_rate = statistics.median(episodes / seconds for seconds, episodes, _ in runs)
        step_rate = statistics.median(steps / seconds for seconds, _, steps in runs)
        rates[name] = step_rate
        print(
            f"{name:32s} {episode_rate:11.1f} {step_rate:10.0f} {step_rate / rates['raw stepping (no recording)']:8.2f}"
        )
    overhead = 1 - rates["generate, 1 worker"] / rates["raw stepping (no recording)"]
    speedup = rates["generate, 2 workers"] / rates["generate, 1 worker"]
    print(f"generation overhead vs raw stepping (1 worker): {100 * overhead:.1f}% (target <= 15%)")
    print(f"2 workers vs 1 worker: {speedup:.2f}x (target >= 1.8x on 2 cores)")

    small, large = args.memory_episodes, 10 * args.memory_episodes
    memory = {n: peak_memory_mb("pointmass", "all", n) for n in (small, large)}
    print(
        f"peak memory, pointmass: {small} episodes {memory[small]:.0f} MB, {large} episodes {memory[large]:.0f} MB "
        f"({memory[large] / memory[small]:.2f}x for 10x the data)"
    )
    print(json.dumps({"overhead": overhead, "speedup_2_workers": speedup, "peak_memory_mb": memory}))


if __name__ == "__main__":
    main()
