"""Benchmark: seconds to derive one data level (roboscale.data.derive_dataset) from a source.

A study derives one folder per data level (often 10-20 of them) before training. For a
source dataset, this derives ten nested amount levels (5 episodes to all training
episodes, log-spaced) and then asks for the three largest again (reused: nothing is
written). Wall seconds and CPU seconds of this process are both printed: on a busy
machine the wall time is inflated by other processes, the CPU time much less.

Run (generate a source first, e.g. roboscale data generate --env pointmass --episodes 1000 --out data/pm1000):
    python bench/derive_speed.py data/pm1000 [--levels 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from roboscale.data import SourceTake, derive_dataset, open_dataset


def timed(work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--levels", type=int, default=10)
    args = parser.parse_args()
    source = open_dataset(args.source)
    available = len(source.episode_indices("train"))
    amounts = sorted({round(float(k)) for k in np.geomspace(5, available, args.levels)})
    print(f"{args.source}: {available} training episodes, {source.total_frames} frames")
    with tempfile.TemporaryDirectory() as folder:

        def derive(k: int) -> None:
            take = SourceTake("source", str(args.source), k)
            derive_dataset([take], Path(folder) / f"k{k}", reference="source")

        costs = []
        for k in amounts:
            wall, cpu = timed(lambda k=k: derive(k))
            costs.append((wall, cpu))
            print(f"  {k:5d} episodes: {wall:5.2f} s wall, {cpu:5.2f} s CPU")
        reused = [timed(lambda k=k: derive(k)) for k in amounts[-3:]]
    wall, cpu = np.mean(costs, axis=0)
    print(f"mean per level: {wall:.2f} s wall, {cpu:.2f} s CPU; reused: {np.mean([r[0] for r in reused]):.2f} s wall")


if __name__ == "__main__":
    main()
