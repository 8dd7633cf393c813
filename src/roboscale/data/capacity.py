"""Will a dataset fit? An estimate of its size from the environment's spaces and horizon,
checked against free disk space and memory before any episode is generated."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np

from roboscale.data.envs.base import EnvSpec
from roboscale.data.layout import STAT_NAMES, frame_features
from roboscale.errors import BadInputError
from roboscale.files import existing_ancestor

MEMORY_BYTES_PER_EPISODE = 100
"""What the streaming writer keeps per episode until the end (its split label and
counters, with Python's overhead): frames go to disk as they come."""


def frame_bytes(env_spec: EnvSpec) -> int:
    """Bytes of one frame in the data files (uncompressed), from the state and action sizes."""
    features = frame_features(env_spec.state_names, env_spec.action_names)
    return sum(f.size * np.dtype(f.dtype).itemsize for f in features)


def episode_metadata_bytes(env_spec: EnvSpec) -> int:
    """Bytes of one row of meta/episodes: every statistic of every feature value, as float64."""
    values = sum(f.size for f in frame_features(env_spec.state_names, env_spec.action_names))
    return len(STAT_NAMES) * values * 8


def estimated_bytes(env_spec: EnvSpec, episodes: int, frames: int) -> int:
    """Bytes on disk of ``episodes`` episodes holding ``frames`` frames in all (an upper
    bound: parquet compression only makes it smaller)."""
    return frames * frame_bytes(env_spec) + episodes * episode_metadata_bytes(env_spec)


def image_frame_bytes(cameras: dict[str, int] | None) -> int:
    """Bytes of one frame's camera images, uncompressed RGB (PNG only makes them smaller,
    except for pure noise): ``cameras`` maps camera name -> image size in pixels."""
    return sum(3 * size * size for size in (cameras or {}).values())


def check_amount(
    env_spec: EnvSpec, episodes: int, frames: int, out: Path, cameras: dict[str, int] | None = None
) -> None:
    """Raise BadInputError, naming the estimate and what is free, when ``episodes``
    episodes holding up to ``frames`` frames (with images of ``cameras``: name -> size)
    cannot fit on the disk of ``out``, or the writer's bookkeeping for them cannot fit
    in memory."""
    needed = estimated_bytes(env_spec, episodes, frames) + frames * image_frame_bytes(cameras)
    folder = existing_ancestor(out)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise BadInputError(
            f"{episodes} episodes ({frames} frames at most) need up to {_size(needed)} on disk but {folder} "
            f"has {_size(free)} free: ask for fewer --episodes/--transitions or choose an --out on a larger disk"
        )
    memory = _available_memory()
    if memory is not None and episodes * MEMORY_BYTES_PER_EPISODE > memory:
        raise BadInputError(
            f"{episodes} episodes need {_size(episodes * MEMORY_BYTES_PER_EPISODE)} of memory for the "
            f"writer's bookkeeping but {_size(memory)} is available: ask for fewer --episodes/--transitions"
        )


def _available_memory() -> int | None:
    """Physical memory not in use, in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(n_bytes: float) -> str:
    """``n_bytes`` in the largest binary unit up to TB, e.g. '1.3 GB'."""
    units = ("bytes", "KB", "MB", "GB", "TB")
    power = min(int(math.log(max(n_bytes, 1), 1024)), len(units) - 1)
    return f"{n_bytes / 1024**power:.3g} {units[power]}"
