"""Per-feature statistics: per episode, then aggregated over episodes in one pass.

LeRobot v3 stores per-episode statistics in ``meta/episodes`` and dataset statistics
in ``meta/stats.json``: min, max, mean, std, count and the 1/10/50/90/99%
quantiles, per dimension. Aggregation needs only the per-episode numbers, so a
dataset of any size is summarised without holding its frames in memory. As in
LeRobot, dataset quantiles are the count-weighted mean of episode quantiles (an
approximation; min, max, mean, std and count are exact).
"""

from __future__ import annotations

import numpy as np

from roboscale.data.layout import QUANTILES

Stats = dict[str, np.ndarray]
"""One feature's statistics: stat name -> per-dimension array."""


def episode_stats(values: np.ndarray) -> Stats:
    """Statistics of one episode's values, shape (frames, dims) or (frames,).

    min/max keep the values' kind (bool, int64; floats as float64, as LeRobot
    stores them); quantiles are those of :func:`rank_quantiles`.
    """
    x = values.reshape(len(values), -1)
    as_float = x.astype(np.float64)
    extremes = as_float if x.dtype.kind == "f" else x
    out: Stats = {
        "min": extremes.min(axis=0),
        "max": extremes.max(axis=0),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
        "count": np.array([len(x)], dtype=np.int64),
    }
    out.update(rank_quantiles(as_float))
    return out


def rank_quantiles(x: np.ndarray) -> Stats:
    """Per-dimension quantiles as LeRobot defines them, computed exactly.

    LeRobot bins an episode's values into a fine histogram (5,000 bins) and takes,
    for quantile q, the bin where the cumulative count first reaches q * frames.
    With far fewer frames than bins that bin holds the value of rank ceil(q * frames),
    which is what is returned here (no binning error). Fewer than two frames: the mean.
    """
    frames = len(x)
    if frames < 2:
        return {name: x.mean(axis=0) for name in QUANTILES}
    ordered = np.sort(x, axis=0)
    out = {}
    for name, q in QUANTILES.items():
        rank = min(max(int(np.ceil(q * frames)), 1), frames)
        out[name] = ordered[rank - 1]
    return out


class StatsAccumulator:
    """Aggregates episode statistics of one feature, one episode at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.minimum = None
        self.maximum = None
        self.total = None  # sum of values, float64
        self.total_squares = None  # sum of squared values, float64
        self.quantile_sums: dict[str, np.ndarray] = {}

    def add(self, stats: Stats) -> None:
        n = int(stats["count"][0])
        mean = stats["mean"]
        squares = n * (stats["std"] ** 2 + mean**2)
        if self.count == 0:
            self.minimum, self.maximum = stats["min"].copy(), stats["max"].copy()
            self.total, self.total_squares = n * mean, squares
            self.quantile_sums = {name: n * stats[name] for name in QUANTILES}
        else:
            self.minimum = np.minimum(self.minimum, stats["min"])
            self.maximum = np.maximum(self.maximum, stats["max"])
            self.total = self.total + n * mean
            self.total_squares = self.total_squares + squares
            for name in QUANTILES:
                self.quantile_sums[name] = self.quantile_sums[name] + n * stats[name]
        self.count += n

    def result(self) -> Stats:
        mean = self.total / self.count
        variance = np.maximum(self.total_squares / self.count - mean**2, 0.0)
        out: Stats = {
            "min": self.minimum,
            "max": self.maximum,
            "mean": mean,
            "std": np.sqrt(variance),
            "count": np.array([self.count], dtype=np.int64),
        }
        for name in QUANTILES:
            out[name] = self.quantile_sums[name] / self.count
        return out


def stats_to_json(stats: dict[str, Stats]) -> dict:
    """Plain lists, as ``meta/stats.json`` stores them."""
    return {feature: {name: values.tolist() for name, values in by_stat.items()} for feature, by_stat in stats.items()}
