"""Bring existing datasets into roboscale's layout: LeRobot v3 folders and Minari datasets.

Both importers stream episodes into :class:`DatasetWriter`, so the result is a
LeRobot v3 folder like a generated one: states, actions, reward, done, success,
camera images (LeRobot sources), fresh statistics, and an episode-level validation
split (a seeded choice of whole episodes; an existing validation/test split of a
LeRobot source is kept).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roboscale import __version__
from roboscale.data.dataset import Dataset, _decode_images, open_dataset
from roboscale.data.layout import IMAGE_PREFIX, Feature, camera_of, frame_features
from roboscale.data.video import decode_video_frames, video_frame_size
from roboscale.data.writer import DatasetWriter, Episode, check_destination
from roboscale.errors import BadInputError, check_seed

HELD_OUT_NAMES = ("validation", "val", "valid", "test", "eval")


def validation_choice(n_episodes: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the episodes held out for validation (seeded, whole episodes)."""
    if not 0.0 <= fraction < 1.0:
        raise BadInputError(f"validation fraction {fraction}: must be in [0, 1)")
    count = round(n_episodes * fraction)
    if n_episodes > 1:
        count = min(max(count, 1 if fraction > 0 else 0), n_episodes - 1)
    mask = np.zeros(n_episodes, dtype=bool)
    mask[np.random.default_rng([seed, 3]).choice(n_episodes, size=count, replace=False)] = True
    return mask


def import_lerobot(
    source: str | Path,
    out: str | Path,
    *,
    validation_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
    cameras: Sequence[str] | None = None,
) -> Path:
    """Copy a local LeRobot v3 dataset into roboscale's layout (validated on the way).

    Kept: ``observation.state``, ``action``, ``next.reward``, ``next.success``
    (missing ones become zeros / False) and the camera images of every
    ``observation.images.<camera>`` feature, stored in the parquet (``dtype: image``,
    PNG) or as mp4 files (``dtype: video``, decoded with PyAV), written as roboscale
    image features (PNG). ``cameras`` keeps only those cameras (``[]``: none). Other
    features are not carried over.
    """
    out = Path(out)
    if Path(source).resolve() == out.resolve():
        raise BadInputError("--out is the source folder: import into a new folder")
    check_seed(seed)
    check_destination(out, overwrite)
    dataset = open_dataset(source)
    sources = _camera_sources(dataset, cameras)
    for camera in sources:
        if camera.stored_as == "video":
            _check_video_files(dataset, camera)
    columns = [
        name
        for name in ("observation.state", "action", "next.reward", "next.success", "timestamp")
        if name in dataset.features
    ]
    frames = dataset.frames(columns)
    held_out = _held_out_episodes(dataset, validation_fraction, seed)
    state = dataset.features["observation.state"]
    action = dataset.features["action"]
    features = frame_features(
        _names(state, "state"),
        _names(action, "action"),
        with_expert_action=False,
        cameras={camera.name: camera.size for camera in sources},
    )
    kept = set(columns) | {camera.feature for camera in sources}
    provenance = {
        "generator": "roboscale data import lerobot",
        "roboscale_version": __version__,
        "source": str(Path(source).resolve()),
        "source_codebase_version": dataset.info["codebase_version"],
        "validation_fraction": validation_fraction,
        "seed": seed,
        "dropped_features": sorted(set(dataset.info["features"]) - kept - _INDEX_COLUMNS),
    }
    if sources:
        provenance["cameras"] = {
            camera.name: {"source_feature": camera.feature, "stored_as": camera.stored_as, "size": camera.size}
            for camera in sources
        }
    images = _ImageReader(dataset)

    def episodes() -> Iterator[tuple[Episode, str]]:
        rows = dataset.episodes
        order = np.r_[np.flatnonzero(~held_out), np.flatnonzero(held_out)]  # splits must be contiguous
        for position in order:
            row = rows.iloc[position]
            span = slice(int(row["dataset_from_index"]), int(row["dataset_to_index"]))
            n = span.stop - span.start
            episode = Episode(
                task=row["task"],
                states=frames["observation.state"][span].reshape(n, -1),
                actions=frames["action"][span].reshape(n, -1),
                rewards=frames["next.reward"][span] if "next.reward" in frames else np.zeros(n, np.float32),
                successes=frames["next.success"][span] if "next.success" in frames else np.zeros(n, bool),
                extra={"source_episode_index": int(row["episode_index"])},
                images={camera.name: images.episode(camera, row, _timestamps(frames, span)) for camera in sources},
            )
            yield episode, "validation" if held_out[position] else "train"

    _write(
        out,
        features,
        dataset.tasks,
        dataset.fps,
        dataset.info.get("robot_type") or "unknown",
        provenance,
        episodes(),
        overwrite,
    )
    return out


@dataclass(frozen=True)
class CameraSource:
    """One camera of a LeRobot source: its feature, how it is stored and its frame size."""

    feature: str
    """``observation.images.<camera>``."""
    stored_as: str
    """``image`` (PNG bytes in the parquet) or ``video`` (mp4 files under ``videos/``)."""
    size: int
    """Height = width of its frames (pixels)."""

    @property
    def name(self) -> str:
        return camera_of(self.feature)


def _camera_sources(dataset: Dataset, cameras: Sequence[str] | None) -> list[CameraSource]:
    """The ``observation.images.*`` image and video features to keep, checked to be square
    RGB (BadInputError naming the feature and the fix otherwise)."""
    info_path = dataset.root / "meta" / "info.json"
    found = {
        camera_of(name): (name, spec)
        for name, spec in dataset.info["features"].items()
        if name.startswith(IMAGE_PREFIX) and isinstance(spec, dict) and spec.get("dtype") in ("image", "video")
    }
    wanted = list(found) if cameras is None else list(cameras)
    unknown = [camera for camera in wanted if camera not in found]
    if unknown:
        raise BadInputError(
            f"{dataset.root} has no camera {', '.join(map(repr, unknown))}; "
            f"its cameras are {', '.join(found) or 'none'} (features observation.images.<camera>)"
        )
    sources = []
    for camera in wanted:
        name, spec = found[camera]
        shape = tuple(int(s) for s in spec["shape"])
        if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
            raise BadInputError(
                f"{info_path}: {name} is {'x'.join(map(str, shape))} (height x width x channels); roboscale "
                f"keeps square RGB images: leave this camera out (--camera with the others: {', '.join(found)})"
            )
        sources.append(CameraSource(name, spec["dtype"], shape[0]))
    return sources


def _video_columns(dataset: Dataset, camera: CameraSource) -> tuple[str, str, str]:
    """Episodes-metadata columns of a video camera: chunk index, file index, start time (s)."""
    columns = tuple(f"videos/{camera.feature}/{part}" for part in ("chunk_index", "file_index", "from_timestamp"))
    missing = [column for column in columns if column not in dataset.episodes.columns]
    if missing or "video_path" not in dataset.info:
        lacking = ", ".join(missing) if missing else "video_path (in meta/info.json)"
        raise BadInputError(
            f"{dataset.root / 'meta' / 'episodes'} lacks {lacking} for video feature {camera.feature}: "
            "not a complete LeRobot v3 dataset (convert it with LeRobot's v2.1 -> v3.0 converter)"
        )
    return columns


def _video_file(dataset: Dataset, camera: CameraSource, row) -> Path:
    chunk, file, _ = _video_columns(dataset, camera)
    relative = dataset.info["video_path"].format(
        video_key=camera.feature, chunk_index=int(row[chunk]), file_index=int(row[file])
    )
    return dataset.root / relative


def _check_video_files(dataset: Dataset, camera: CameraSource) -> None:
    """Before any work: every video file the episodes name exists, opens, and has the
    declared frame size."""
    chunk, file, _ = _video_columns(dataset, camera)
    for _, row in dataset.episodes.drop_duplicates([chunk, file]).iterrows():
        path = _video_file(dataset, camera, row)
        height, width = video_frame_size(path)
        if (height, width) != (camera.size, camera.size):
            raise BadInputError(
                f"{path}: frames are {height}x{width} but info.json declares {camera.feature} "
                f"{camera.size}x{camera.size}: images of different sizes in one dataset; re-encode the video "
                f"at {camera.size}x{camera.size} or leave this camera out (--camera)"
            )


def _timestamps(frames: dict[str, np.ndarray], span: slice) -> np.ndarray:
    """(frames,) seconds from the episode's start of each frame (LeRobot's ``timestamp``)."""
    if "timestamp" not in frames:
        raise BadInputError("the dataset has no timestamp feature: LeRobot v3 datasets record one per frame")
    return frames["timestamp"][span].reshape(-1).astype(np.float64)


class _ImageReader:
    """Reads one episode's frames of a camera at a time; keeps the encoded image column
    of the last data file read (the next episode is usually in the same file)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.first_index = self._first_index_of_files()
        self.cached: tuple[Path, str, pa.ChunkedArray] | None = None

    def episode(self, camera: CameraSource, row, timestamps: np.ndarray) -> np.ndarray:
        """(frames, H, W, 3) uint8 frames of ``camera`` in the episode of episodes-table row ``row``."""
        if camera.stored_as == "video":
            _, _, start = _video_columns(self.dataset, camera)
            times = float(row[start]) + timestamps  # seconds in the file, as LeRobot queries them
            return decode_video_frames(_video_file(self.dataset, camera, row), times)
        key = (int(row["data/chunk_index"]), int(row["data/file_index"]))
        path = self.dataset.root / self.dataset.info["data_path"].format(chunk_index=key[0], file_index=key[1])
        if self.cached is None or self.cached[:2] != (path, camera.feature):
            self.cached = (path, camera.feature, pq.read_table(path, columns=[camera.feature]).column(0))
        first = int(row["dataset_from_index"]) - self.first_index[key]
        rows = np.arange(first, first + int(row["length"]))
        column = self.cached[2].slice(first, len(rows))
        return _decode_images(column, self.dataset.features[camera.feature], path, rows)

    def _first_index_of_files(self) -> dict[tuple[int, int], int]:
        """Data file (chunk, file) -> dataset index of its first frame."""
        episodes = self.dataset.episodes
        grouped = episodes.groupby(["data/chunk_index", "data/file_index"])["dataset_from_index"].min()
        return {(int(chunk), int(file)): int(first) for (chunk, file), first in grouped.items()}


_INDEX_COLUMNS = {"timestamp", "frame_index", "episode_index", "index", "task_index", "next.done"}


def _held_out_episodes(dataset, fraction: float, seed: int) -> np.ndarray:
    existing = [name for name in dataset.splits if name in HELD_OUT_NAMES]
    if existing:
        indices = np.concatenate([dataset.episode_indices(name) for name in existing])
        return dataset.episodes["episode_index"].isin(indices).to_numpy()
    return validation_choice(len(dataset.episodes), fraction, seed)


def _names(feature: Feature, prefix: str) -> tuple[str, ...]:
    return feature.names if feature.names else tuple(f"{prefix}_{i}" for i in range(feature.size))


def import_minari(
    dataset: str | Path,
    out: str | Path,
    *,
    fps: float = 30.0,
    validation_fraction: float = 0.1,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Copy a local Minari dataset (a dataset id under ``MINARI_DATASETS_PATH``, or
    the path of its folder) into roboscale's layout. Never downloads.

    Observations (T+1 per episode) become the T states before each action; dict
    observations are flattened key by key. ``info["success"]`` becomes
    ``next.success`` when present. Minari records no control rate: give ``fps``.
    """
    try:
        import minari
    except ModuleNotFoundError:
        raise BadInputError("Minari is not installed: pip install 'roboscale[minari]'") from None
    out = Path(out)
    check_seed(seed)
    check_destination(out, overwrite)
    source = _open_minari(minari, dataset)
    n_episodes = source.total_episodes
    if n_episodes == 0:
        raise BadInputError(f"Minari dataset {dataset} has no episodes")
    held_out = validation_choice(n_episodes, validation_fraction, seed)
    first = next(iter(source.iterate_episodes([0])))
    state_names = _flat_names(first.observations, "obs")
    action_names = _flat_names(first.actions, "action")
    env_spec = source.spec.env_spec
    task = env_spec.id if env_spec is not None else source.spec.dataset_id
    features = frame_features(state_names, action_names, with_expert_action=False)
    provenance = {
        "generator": "roboscale data import minari",
        "roboscale_version": __version__,
        "source": str(dataset),
        "minari_dataset_id": source.spec.dataset_id,
        "minari_version": minari.__version__,
        "fps": fps,
        "validation_fraction": validation_fraction,
        "seed": seed,
    }

    def episodes() -> Iterator[tuple[Episode, str]]:
        order = np.r_[np.flatnonzero(~held_out), np.flatnonzero(held_out)]
        for index in order:
            data = next(iter(source.iterate_episodes([int(index)])))
            steps = len(data.rewards)
            if steps == 0:
                continue  # Minari allows empty episodes; a dataset frame table cannot hold them
            states = _flatten(data.observations)[:steps]
            actions = _flatten(data.actions).reshape(steps, -1)
            success = np.asarray(data.infos.get("success", np.zeros(steps + 1)), dtype=bool)
            success = success[1:] if len(success) == steps + 1 else success[:steps]
            episode = Episode(
                task=task,
                states=states.astype(np.float32),
                actions=actions.astype(np.float32),
                rewards=np.asarray(data.rewards, dtype=np.float32),
                successes=success,
                extra={"source_episode_index": int(data.id)},
            )
            yield episode, "validation" if held_out[index] else "train"

    robot = task.split("-")[0].lower() if task else "unknown"
    _write(out, features, [task], fps, robot, provenance, episodes(), overwrite)
    return out


def _open_minari(minari, dataset):
    path = Path(dataset)
    try:
        if path.exists():
            folder = path / "data" if (path / "data" / "metadata.json").exists() else path
            return minari.MinariDataset(str(folder))
        return minari.load_dataset(str(dataset), download=False)
    except (FileNotFoundError, ValueError, OSError) as error:
        if path.exists():
            raise BadInputError(
                f"{path} is not a readable Minari dataset ({error}): give the folder Minari wrote "
                "(it holds data/metadata.json)"
            ) from None
        # Minari's own message suggests download=True; roboscale never downloads, so
        # say where the dataset must be and how to put it there instead.
        root = os.environ.get("MINARI_DATASETS_PATH")
        where = f"{root} (MINARI_DATASETS_PATH)" if root else "~/.minari/datasets (MINARI_DATASETS_PATH unset)"
        raise BadInputError(
            f"no local Minari dataset {str(dataset)!r} in {where}: roboscale never downloads; copy the "
            f"dataset's folder to {dataset} there (e.g. from a machine that ran `minari download {dataset}`), "
            "write one with minari.create_dataset_from_buffers (or minari's DataCollector, which needs "
            "minari[create]), or give the folder's path"
        ) from None


def _flatten(values) -> np.ndarray:
    """(T, ...) arrays, or a dict of them (keys sorted), as one (T, dims) float array."""
    if isinstance(values, dict):
        return np.concatenate([_flatten(values[key]) for key in sorted(values)], axis=1)
    array = np.asarray(values)
    return array.reshape(len(array), -1).astype(np.float64)


def _flat_names(values, prefix: str) -> tuple[str, ...]:
    if isinstance(values, dict):
        return tuple(name for key in sorted(values) for name in _flat_names(values[key], key))
    width = int(np.prod(np.asarray(values).shape[1:])) if np.asarray(values).ndim > 1 else 1
    return tuple(f"{prefix}_{i}" for i in range(width))


def _write(out, features, tasks, fps, robot_type, provenance, episodes, overwrite) -> None:
    with DatasetWriter(
        out,
        features=features,
        tasks=tasks,
        fps=fps,
        robot_type=robot_type,
        provenance=provenance,
        overwrite=overwrite,
    ) as writer:
        for episode, split in episodes:
            writer.add(episode, split)
