"""Benchmark: what a vq:K@T image tokenizer keeps of pointmass-like frames, and its cost.

Draws top-down frames like pointmass's (a red agent disc, a blue block square and a green
goal ring on a light floor, moving along smooth random walks; episodes of 100 frames),
fits each VQ spec on the training episodes with the default training settings (fresh
cache, so it trains) and measures on held-out episodes: PSNR (dB, pixels in [0, 1]),
codebook usage and perplexity, training wall and CPU seconds, training FLOPs, and the
bits a frame is stored in (T log2 K). ``patch:P`` is the reference in the same table: it
reconstructs exactly (uint8 rounding) from H*W*C*8 bits; the training frames' mean frame,
drawn for every held-out frame, is the floor any tokenizer should beat. A second fit of the first spec
shows the cache hit.

Run:
    python bench/vq_tokenizer.py [--frames 20000] [--size 32] [--specs vq:64@16,vq:64@64]
    python bench/vq_tokenizer.py --size 64 --frames 5000 --specs vq:256@64,vq:256@256
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from roboscale.tokenize import ImageTokenizerSpec, fit_image_tokenizer

EPISODE_FRAMES = 100


def pointmass_like_frames(episodes: int, size: int, seed: int) -> np.ndarray:
    """(episodes * 100, size, size, 3) uint8 top-down frames along smooth random walks."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size] + 0.5
    floor = np.array([235, 230, 215], np.uint8)
    frames = np.empty((episodes, EPISODE_FRAMES, size, size, 3), np.uint8)
    for episode in range(episodes):
        goal = rng.uniform(0.15, 0.85, 2) * size
        paths = [_smooth_walk(rng, size) for _ in range(2)]  # agent, block
        for step in range(EPISODE_FRAMES):
            frame = frames[episode, step]
            frame[:] = floor
            distance_to_goal = np.hypot(rows - goal[0], columns - goal[1])
            frame[(distance_to_goal < 0.12 * size) & (distance_to_goal > 0.07 * size)] = (40, 170, 60)
            block = paths[1][step]
            frame[(np.abs(rows - block[0]) < 0.07 * size) & (np.abs(columns - block[1]) < 0.07 * size)] = (50, 80, 220)
            agent = paths[0][step]
            frame[np.hypot(rows - agent[0], columns - agent[1]) < 0.06 * size] = (210, 50, 40)
    return frames.reshape(-1, size, size, 3)


def _smooth_walk(rng: np.random.Generator, size: int) -> np.ndarray:
    """(100, 2) positions in pixels: velocity a decaying sum of random kicks, bounced off the walls."""
    position, velocity, path = rng.uniform(0.1, 0.9, 2), np.zeros(2), []
    for _ in range(EPISODE_FRAMES):
        velocity = 0.9 * velocity + rng.normal(0, 0.006, 2)
        position = position + velocity
        low, high = position < 0.08, position > 0.92
        velocity[low | high] *= -1
        position = np.clip(position, 0.08, 0.92)
        path.append(position * size)
    return np.array(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000, help="training frames (a multiple of 100)")
    parser.add_argument("--size", type=int, default=32, help="image size in pixels")
    parser.add_argument("--specs", default="vq:64@16,vq:256@16,vq:64@64", help="comma-separated vq specs")
    parser.add_argument("--patch", type=int, default=8, help="patch size of the exact reference")
    args = parser.parse_args()
    train = pointmass_like_frames(args.frames // EPISODE_FRAMES, args.size, seed=0)
    heldout = pointmass_like_frames(20, args.size, seed=1)
    print(f"{len(train)} training and {len(heldout)} held-out frames, {args.size}x{args.size}x3")
    print(
        f"{'spec':>12} {'tokens':>6} {'bits':>6} {'PSNR dB':>8} {'MSE':>9} {'usage':>6} {'perplex':>7} "
        f"{'wall s':>7} {'CPU s':>7} {'GFLOP':>7}"
    )
    mean_frame_mse = float(np.mean(((heldout - train.mean(axis=0)) / 255.0) ** 2))
    print(f"{'mean frame':>12} {'-':>6} {'-':>6} {-10 * np.log10(mean_frame_mse):>8.2f} {mean_frame_mse:>9.2e}")
    reference = fit_image_tokenizer(f"patch:{args.patch}", train, heldout_frames=heldout)
    _row(reference.report(), args.size * args.size * 3 * 8, 0.0, 0.0)
    with tempfile.TemporaryDirectory() as cache:
        for text in args.specs.split(","):
            spec = ImageTokenizerSpec.parse(text)
            wall, cpu = time.perf_counter(), time.process_time()
            tokenizer = fit_image_tokenizer(spec, train, heldout_frames=heldout, cache_dir=Path(cache))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            _row(tokenizer.report(), spec.tokens * math.log2(spec.codes), wall, cpu)
        started = time.perf_counter()
        fit_image_tokenizer(args.specs.split(",")[0], train, heldout_frames=heldout, cache_dir=Path(cache))
        print(f"second fit of {args.specs.split(',')[0]} (cache hit): {time.perf_counter() - started:.2f} s wall")


def _row(report: dict, bits: float, wall: float, cpu: float) -> None:
    psnr = "exact" if report["psnr_db"] is None else f"{report['psnr_db']:.2f}"
    usage = "-" if report["codebook_usage"] is None else f"{report['codebook_usage']:.2f}"
    perplexity = "-" if report["perplexity"] is None else f"{report['perplexity']:.1f}"
    print(
        f"{report['spec']:>12} {report['tokens_per_frame']:>6} {bits:>6.0f} {psnr:>8} {report['recon_mse']:>9.2e} "
        f"{usage:>6} {perplexity:>7} {wall:>7.1f} {cpu:>7.1f} {report['train_flops'] / 1e9:>7.0f}"
    )


if __name__ == "__main__":
    main()
