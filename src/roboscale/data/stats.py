"""Per-feature statistics: per episode, then aggregated over episodes in one pass.

LeRobot v3 stores per-episode statistics in ``meta/episodes`` and dataset statistics
in ``meta/stats.json``: min, max, mean, std, count and the 1/10/50/90/99%
quantiles, per dimension. Aggregation needs only the per-episode numbers, so a
dataset of any size is summarised without holding its frames in memory. As in
LeRobot, dataset quantiles are the count-weighted mean of episode quantiles (an
approximation; min, max, mean, std and count are exact).

Image features get LeRobot's image statistics: per channel, pixel values scaled to
[0, 1], every statistic of shape (C, 1, 1), computed on a deterministic subsample of
each episode's frames (LeRobot's: every frame of episodes up to 100 frames, then
about frames^0.75 evenly spaced ones); ``count`` is the number of frames sampled.
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


IMAGE_SAMPLES_MIN = 100
IMAGE_SAMPLES_MAX = 10_000
IMAGE_SAMPLES_POWER = 0.75
DOWNSAMPLE_ABOVE = 300
"""Images at least this many pixels on a side are strided down to about 150 for stats (LeRobot's rule)."""
DOWNSAMPLE_TARGET = 150


def image_sample_indices(frames: int) -> np.ndarray:
    """Which of an episode's ``frames`` the image statistics use: LeRobot's evenly spaced
    subsample (all of them up to 100 frames; 177 of 1,000; at most 10,000)."""
    wanted = min(frames, IMAGE_SAMPLES_MIN)
    samples = max(wanted, min(int(frames**IMAGE_SAMPLES_POWER), IMAGE_SAMPLES_MAX))
    return np.round(np.linspace(0, frames - 1, samples)).astype(np.int64)


def image_episode_stats(frames: np.ndarray) -> Stats:
    """Statistics of one episode's frames, (frames, H, W, C) uint8: per channel, pixel
    values / 255, each of shape (C, 1, 1), over the frames of :func:`image_sample_indices`.
    Quantiles are exact ranks over the sampled pixels (as in :func:`rank_quantiles`)."""
    sampled = frames[image_sample_indices(len(frames))]
    height, width = sampled.shape[1:3]
    if max(height, width) >= DOWNSAMPLE_ABOVE:
        stride = max(height, width) // DOWNSAMPLE_TARGET
        sampled = sampled[:, ::stride, ::stride]
    channels = sampled.shape[-1]
    pixels = sampled.reshape(-1, channels)
    as_float = pixels.astype(np.float64)
    out: Stats = {
        "min": pixels.min(axis=0).astype(np.float64),
        "max": pixels.max(axis=0).astype(np.float64),
        "mean": as_float.mean(axis=0),
        "std": as_float.std(axis=0),
    }
    out.update(_uint8_rank_quantiles(pixels))
    shaped = {name: (values / 255.0).reshape(channels, 1, 1) for name, values in out.items()}
    return {**shaped, "count": np.array([len(sampled)], dtype=np.int64)}


def _uint8_rank_quantiles(pixels: np.ndarray) -> Stats:
    """:func:`rank_quantiles` of (pixels, channels) uint8 values, by counting (no sort)."""
    total = len(pixels)
    cumulative = np.stack([np.cumsum(np.bincount(pixels[:, c], minlength=256)) for c in range(pixels.shape[1])])
    out = {}
    for name, q in QUANTILES.items():
        rank = min(max(int(np.ceil(q * total)), 1), total)
        out[name] = np.array([np.searchsorted(row, rank) for row in cumulative], dtype=np.float64)
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
