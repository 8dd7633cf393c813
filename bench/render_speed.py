"""Benchmark: camera frames per second, roboscale's renderers against Meta-World's own render().

Rows: the numpy pointmass renderer (camera top) at 32 and 64 px; Meta-World push-v3
at 64 px (camera corner2) through roboscale (a plain ``mujoco.Renderer``, shadows and
reflections off), a plain ``mujoco.Renderer`` with MuJoCo's default scene (shadows and
reflections on), and the peer, Meta-World's own ``render()`` (``render_mode="rgb_array"``).
Each row is the median of ``--repeats`` timed blocks (frames/s, wall clock); then the
same renderer in 1 and 2 worker processes rendering at the same time (total frames/s).
On a shared machine, wall-clock rates include time other processes took; the CPU
frames/s column (frames per CPU second of this process) is steadier.

Run:
    python bench/render_speed.py [--repeats 3] [--metaworld-frames 30] [--pointmass-frames 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable

from roboscale.data.envs import get_family
from roboscale.data.envs.render import select_mujoco_gl

TASK = "push-v3"
CAMERA = "corner2"


def rates(render: Callable[[], object], frames: int, repeats: int) -> tuple[float, float]:
    """Median (wall frames/s, CPU frames/s) over ``repeats`` blocks of ``frames`` renders."""
    render()  # warm-up: context and texture upload
    wall_rates, cpu_rates = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(frames):
            render()
        wall_rates.append(frames / (time.perf_counter() - wall))
        cpu_rates.append(frames / max(time.process_time() - cpu, 1e-9))
    return statistics.median(wall_rates), statistics.median(cpu_rates)


def pointmass_renderer(size: int) -> Callable[[], object]:
    env = get_family("pointmass").make("push")
    env.reset(0)
    env.enable_camera("top", size)
    return env.render_frame


def roboscale_metaworld_renderer(size: int) -> Callable[[], object]:
    env = get_family("metaworld").make(TASK)
    env.reset(0)
    env.enable_camera(CAMERA, size)
    return env.render_frame


def default_scene_renderer(size: int) -> Callable[[], object]:
    """A plain mujoco.Renderer on the same model, MuJoCo's default scene flags."""
    import mujoco

    env = get_family("metaworld").make(TASK)
    env.reset(0)
    renderer = mujoco.Renderer(env.env.model, size, size)

    def render():
        renderer.update_scene(env.env.data, camera=CAMERA)
        return renderer.render()

    return render


def metaworld_own_renderer(size: int) -> Callable[[], object]:
    """The peer: Meta-World's render() (Gymnasium's MujocoRenderer), as its users call it."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS[TASK](render_mode="rgb_array", camera_name=CAMERA, width=size, height=size)
    env._set_task_called, env._freeze_rand_vec = True, False  # a bare task env: reset draws a placement
    env.reset()
    return env.render


def _worker(family: str, size: int, frames: int, repeats: int, barrier, results) -> None:
    render = pointmass_renderer(size) if family == "pointmass" else roboscale_metaworld_renderer(size)
    render()
    for repeat in range(repeats):
        barrier.wait()  # all workers start each block together
        start = time.monotonic()
        for _ in range(frames):
            render()
        results.put((repeat, start, time.monotonic()))


def parallel_rate(family: str, size: int, frames: int, workers: int, repeats: int) -> float:
    """Median total frames/s of ``workers`` processes each rendering ``frames`` at the same time."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    arguments = (family, size, frames, repeats, barrier, results)
    processes = [context.Process(target=_worker, args=arguments) for _ in range(workers)]
    for process in processes:
        process.start()
    spans: dict[int, list[tuple[float, float]]] = {}
    for _ in range(workers * repeats):
        repeat, start, end = results.get()
        spans.setdefault(repeat, []).append((start, end))
    for process in processes:
        process.join()
    block_rates = [
        workers * frames / (max(end for _, end in block) - min(start for start, _ in block)) for block in spans.values()
    ]
    return statistics.median(block_rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--metaworld-frames", type=int, default=30)
    parser.add_argument("--pointmass-frames", type=int, default=2000)
    args = parser.parse_args()
    print(f"MUJOCO_GL backend: {select_mujoco_gl()}")
    rows = [
        ("pointmass top 32 px (numpy)", pointmass_renderer(32), args.pointmass_frames),
        ("pointmass top 64 px (numpy)", pointmass_renderer(64), args.pointmass_frames),
        ("metaworld corner2 64 px, roboscale", roboscale_metaworld_renderer(64), args.metaworld_frames),
        ("metaworld corner2 64 px, Renderer default scene", default_scene_renderer(64), args.metaworld_frames),
        ("metaworld corner2 64 px, Meta-World render() [peer]", metaworld_own_renderer(64), args.metaworld_frames),
    ]
    measured = {}
    print(f"{'renderer':55s} {'frames/s':>10s} {'CPU frames/s':>13s}")
    for name, render, frames in rows:
        wall, cpu = rates(render, frames, args.repeats)
        measured[name] = wall
        print(f"{name:55s} {wall:10.1f} {cpu:13.1f}")
    ours, peer = measured[rows[2][0]], measured[rows[4][0]]
    print(
        f"roboscale / Meta-World render(): {ours / peer:.2f}x; default scene / render(): {measured[rows[3][0]] / peer:.2f}x"
    )
    # Blocks of about a second or more, so process scheduling noise stays small.
    for family, size, frames in (
        ("pointmass", 64, 10 * args.pointmass_frames),
        ("metaworld", 64, args.metaworld_frames),
    ):
        one, two = (parallel_rate(family, size, frames, workers, args.repeats) for workers in (1, 2))
        print(f"{family} {size} px: 1 worker {one:.1f} frames/s, 2 workers {two:.1f} frames/s, ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
