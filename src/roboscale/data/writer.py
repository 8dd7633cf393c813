"""Streaming, atomic writer of LeRobot v3 dataset folders.

Episodes are appended one at a time; frames go straight to chunked parquet files
and only per-episode summaries stay in memory, so memory does not grow with the
dataset. Everything is written under a hidden ``.<name>.partial`` folder next to
the destination, which is renamed into place only when complete: a killed process
leaves either no dataset or the previous complete one, and the next run removes
the stale partial folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from roboscale.data.layout import (
    CHUNKS_SIZE,
    CODEBASE_VERSION,
    DATA_PATH,
    INFO_PATH,
    PROVENANCE_PATH,
    STAT_NAMES,
    STATS_PATH,
    TASKS_PATH,
    Feature,
    arrow_schema,
    camera_of,
    data_file,
    encode_png,
    episodes_file,
    write_json,
)
from roboscale.data.stats import Stats, StatsAccumulator, episode_stats, image_episode_stats, stats_to_json
from roboscale.errors import BadInputError
from roboscale.files import require_writable_folder

ROWS_PER_GROUP = 65536
"""Parquet row-group size (frames): fixed, so files are byte-identical across runs."""
IMAGE_ROWS_PER_GROUP = 1000
"""Row-group size of datasets with image features (PNG bytes make rows ~100x larger)."""

EPISODES_PER_GROUP = 512


@dataclass
class Episode:
    """One recorded episode: per-frame arrays (frames first) and its task."""

    task: str
    states: np.ndarray
    """(frames, state dims) float32: the observation before each action."""
    actions: np.ndarray
    """(frames, action dims) float32: the action executed."""
    rewards: np.ndarray
    """(frames,) float32: reward after each action."""
    successes: np.ndarray
    """(frames,) bool: task solved after each action."""
    expert_actions: np.ndarray | None = None
    """(frames, action dims) float32: what the scripted expert proposed."""
    extra: dict = field(default_factory=dict)
    """Episode-level metadata (policy, initial configuration, seed), stored in meta/episodes."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Camera name -> (frames, H, W, C) uint8: the frame seen before each action."""

    @property
    def length(self) -> int:
        return len(self.actions)

    @property
    def success(self) -> bool:
        return bool(self.successes.any())


def partial_folder(root: Path) -> Path:
    """Where a dataset is assembled before it is renamed to ``root``."""
    return root.parent / f".{root.name}.partial"


def check_destination(root: Path, overwrite: bool) -> None:
    """Refuse to start when ``root`` cannot become a dataset folder: it is a file, it
    exists (unless overwriting a dataset roboscale wrote), it cannot be written, or a
    live process is writing it. Nothing is created or deleted here."""
    if root.is_file():
        raise BadInputError(f"{root} is a file, not a dataset folder: choose another --out (or delete the file)")
    if root.exists() and not overwrite:
        raise BadInputError(f"{root} already exists: choose another --out or pass --overwrite to replace it")
    if root.is_dir() and not is_replaceable(root):
        raise BadInputError(
            f"{root} is not a roboscale dataset (no {INFO_PATH} and {PROVENANCE_PATH}): --overwrite only "
            "replaces datasets roboscale wrote, so nothing in it is deleted; choose another --out"
        )
    require_writable_folder(root)
    lock = partial_folder(root) / ".pid"
    if lock.exists():
        try:
            pid = int(lock.read_text().strip())
        except ValueError:
            pid = None
        if pid is not None and pid != os.getpid() and _alive(pid):
            raise BadInputError(f"another process (pid {pid}) is writing {root}: wait for it or stop it")


def is_replaceable(root: Path) -> bool:
    """Whether --overwrite may delete folder ``root``: an empty folder, or a dataset
    roboscale wrote (it has both info.json and roboscale's provenance file). Anything
    else may hold the user's own files."""
    if not any(root.iterdir()):
        return True
    return (root / INFO_PATH).is_file() and (root / PROVENANCE_PATH).is_file()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DatasetWriter:
    """Write episodes into a LeRobot v3 folder at ``root``; use as a context manager.

    ``splits`` of the finished dataset are derived from the split name given with
    each episode; episodes of one split must be contiguous (LeRobot describes a
    split as a range ``"start:end"`` of episode indices).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        features: tuple[Feature, ...],
        tasks: list[str],
        fps: float,
        robot_type: str,
        provenance: dict,
        file_size_mb: float = 100.0,
        overwrite: bool = False,
        extra_info: dict | None = None,
    ) -> None:
        self.root = Path(root)
        self.features = features
        self.schema = arrow_schema(features)
        self.rows_per_group = IMAGE_ROWS_PER_GROUP if any(f.is_image for f in features) else ROWS_PER_GROUP
        self.tasks = list(tasks)
        self.task_index = {task: i for i, task in enumerate(self.tasks)}
        self.fps = fps
        self.robot_type = robot_type
        self.provenance = provenance
        self.file_bytes_limit = file_size_mb * 1024 * 1024
        self.overwrite = overwrite
        self.extra_info = dict(extra_info or {})
        """Keys added to meta/info.json (e.g. a derived dataset's recipe under ``roboscale``)."""
        check_destination(self.root, overwrite)
        self.work = partial_folder(self.root)

        self.total_frames = 0
        self.split_of_episode: list[str] = []
        self.feature_stats = {f.name: StatsAccumulator() for f in features}
        self.episode_rows: list[dict] = []
        self.episode_writer: pq.ParquetWriter | None = None
        self.episode_schema: pa.Schema | None = None
        self.file_index = 0
        self.file_bytes = 0
        self.frame_writer: pq.ParquetWriter | None = None
        self.pending: list[dict[str, np.ndarray]] = []
        self.pending_rows = 0

    # -- context management ------------------------------------------------------
    def __enter__(self) -> DatasetWriter:
        if self.work.exists():
            shutil.rmtree(self.work)  # a stale attempt that died; it was never a dataset
        (self.work / "meta").mkdir(parents=True)
        (self.work / ".pid").write_text(str(os.getpid()))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._finish()
        else:
            self._close_writers()
            shutil.rmtree(self.work, ignore_errors=True)

    # -- appending ----------------------------------------------------------------
    def add(self, episode: Episode, split: str = "train", known_stats: dict[str, Stats] | None = None) -> None:
        """Append one episode (its frames get the next global indices). ``known_stats``:
        statistics of some of its features computed before (e.g. copied with the frames
        from another dataset), used as they are instead of computed again."""
        if episode.length == 0:
            raise ValueError(f"episode {len(self.split_of_episode)} of task {episode.task!r} has no frames")
        if episode.task not in self.task_index:
            raise ValueError(f"task {episode.task!r} is not one of the dataset's tasks {self.tasks}")
        episode_index = len(self.split_of_episode)
        if self.split_of_episode and split != self.split_of_episode[-1] and split in self.split_of_episode:
            raise ValueError(f"split {split!r} is not contiguous: episodes of one split must be written together")
        images = self._episode_images(episode, episode_index)
        columns = self._frame_columns(episode, episode_index)
        known = known_stats or {}
        stats = {name: known[name] if name in known else episode_stats(values) for name, values in columns.items()}
        for name, frames in images.items():
            stats[name] = known[name] if name in known else image_episode_stats(frames)
            columns[name] = np.array([encode_png(frame) for frame in frames], dtype=object)
        if self.file_bytes >= self.file_bytes_limit:
            self._roll_file()
        self._buffer(columns)
        for name, accumulator in self.feature_stats.items():
            accumulator.add(stats[name])
        self._add_episode_row(episode, episode_index, split, stats)
        self.split_of_episode.append(split)
        self.total_frames += episode.length

    def _frame_columns(self, episode: Episode, episode_index: int) -> dict[str, np.ndarray]:
        n = episode.length
        frame_index = np.arange(n, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        done[-1] = True
        columns = {
            "observation.state": episode.states,
            "action": episode.actions,
            "expert.action": episode.expert_actions,
            "next.reward": episode.rewards,
            "next.done": done,
            "next.success": episode.successes,
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(n, episode_index, dtype=np.int64),
            "index": np.arange(self.total_frames, self.total_frames + n, dtype=np.int64),
            "task_index": np.full(n, self.task_index[episode.task], dtype=np.int64),
        }
        out = {}
        for feature in self.features:
            if feature.is_image:
                continue
            values = columns.get(feature.name)
            if values is None:
                raise ValueError(f"episode has no values for feature {feature.name!r}")
            values = np.asarray(values, dtype=feature.numpy_dtype())
            expected = (n, *feature.shape) if feature.is_vector else (n,)
            if values.shape != expected and values.size == int(np.prod(expected)):
                values = values.reshape(expected)  # e.g. a 1-dim action given as (frames, 1)
            if values.shape != expected:
                raise ValueError(f"{feature.name} has shape {values.shape}, expected {expected}")
            out[feature.name] = values
        return out

    def _episode_images(self, episode: Episode, episode_index: int) -> dict[str, np.ndarray]:
        """The episode's frames of each image feature, checked against the feature's shape
        (BadInputError naming the feature, the episode and the first frame that differs)."""
        out = {}
        where = f"episode {episode_index} (task {episode.task!r})"
        for feature in self.features:
            if not feature.is_image:
                continue
            frames = episode.images.get(camera_of(feature.name))
            if frames is None:
                raise BadInputError(
                    f"{where} has no frames of camera {camera_of(feature.name)!r} for {feature.name}: "
                    f"it has {', '.join(episode.images) or 'no cameras'}"
                )
            out[feature.name] = _checked_frames(frames, feature, episode.length, where)
        return out

    def _buffer(self, columns: dict[str, np.ndarray]) -> None:
        self.pending.append(columns)
        self.pending_rows += len(columns["index"])
        self.file_bytes += sum(_stored_bytes(v) for v in columns.values())
        if self.pending_rows >= self.rows_per_group:
            self._flush_frames()

    def _flush_frames(self) -> None:
        if not self.pending:
            return
        arrays = []
        for feature in self.features:
            values = np.concatenate([part[feature.name] for part in self.pending])
            if feature.is_image:
                arrays.append(_image_array(values, np.concatenate([part["frame_index"] for part in self.pending])))
            elif feature.is_vector:
                flat = pa.array(values.reshape(-1), type=feature.arrow_type().value_type)
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, feature.size))
            else:
                arrays.append(pa.array(values, type=feature.arrow_type()))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self.frame_writer is None:
            path = data_file(self.work, self.file_index // CHUNKS_SIZE, self.file_index % CHUNKS_SIZE)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.frame_writer = pq.ParquetWriter(path, self.schema)
        self.frame_writer.write_table(table, row_group_size=self.rows_per_group)
        self.pending, self.pending_rows = [], 0

    def _roll_file(self) -> None:
        self._flush_frames()
        if self.frame_writer is not None:
            self.frame_writer.close()
            self.frame_writer = None
        self.file_index += 1
        self.file_bytes = 0

    def _add_episode_row(self, episode: Episode, episode_index: int, split: str, stats) -> None:
        row = {
            "episode_index": episode_index,
            "tasks": [episode.task],
            "length": episode.length,
            "data/chunk_index": self.file_index // CHUNKS_SIZE,
            "data/file_index": self.file_index % CHUNKS_SIZE,
            "dataset_from_index": self.total_frames,
            "dataset_to_index": self.total_frames + episode.length,
        }
        for feature in self.features:
            for stat in STAT_NAMES:
                value = stats[feature.name][stat]
                # Arrow converts 1-d arrays only: image stats (C, 1, 1) go in as nested lists, as LeRobot writes them.
                row[f"stats/{feature.name}/{stat}"] = value.tolist() if np.ndim(value) > 1 else value
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        row["split"] = split
        row["success"] = episode.success
        for key, value in sorted(episode.extra.items()):
            row[key] = value
        self.episode_rows.append(row)
        if len(self.episode_rows) >= EPISODES_PER_GROUP:
            self._flush_episodes()

    def _flush_episodes(self) -> None:
        if not self.episode_rows:
            return
        table = pa.Table.from_pylist(self.episode_rows, schema=self.episode_schema)
        if self.episode_writer is None:
            self.episode_schema = table.schema
            path = episodes_file(self.work)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.episode_writer = pq.ParquetWriter(path, table.schema)
        self.episode_writer.write_table(table)
        self.episode_rows = []

    def _close_writers(self) -> None:
        for writer in (self.frame_writer, self.episode_writer):
            if writer is not None:
                writer.close()
        self.frame_writer = self.episode_writer = None

    # -- finishing ----------------------------------------------------------------
    def _finish(self) -> None:
        if not self.split_of_episode:
            raise ValueError("no episodes were written")
        self._flush_frames()
        self._flush_episodes()
        self._close_writers()
        self._write_tasks()
        stats = {name: accumulator.result() for name, accumulator in self.feature_stats.items()}
        write_json(self.work / STATS_PATH, stats_to_json(stats))
        write_json(self.work / INFO_PATH, self._info())
        write_json(self.work / PROVENANCE_PATH, self.provenance)
        (self.work / ".pid").unlink()
        self._move_into_place()

    def _write_tasks(self) -> None:
        # LeRobot reads tasks.parquet with pandas: the task string is the index.
        frame = pd.DataFrame({"task_index": np.arange(len(self.tasks), dtype=np.int64)}, index=pd.Index(self.tasks))
        frame.to_parquet(self.work / TASKS_PATH)

    def _info(self) -> dict:
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(self.split_of_episode),
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": int(round(self.file_bytes_limit / 1024 / 1024)),
            "video_files_size_in_mb": 200,
            "fps": int(self.fps) if float(self.fps).is_integer() else self.fps,
            "splits": self._splits(),
            "data_path": DATA_PATH,
            "video_path": None,
            "features": {f.name: f.to_info() for f in self.features},
            **self.extra_info,
        }

    def _splits(self) -> dict[str, str]:
        splits: dict[str, str] = {}
        start = 0
        for index in range(1, len(self.split_of_episode) + 1):
            if index == len(self.split_of_episode) or self.split_of_episode[index] != self.split_of_episode[start]:
                splits[self.split_of_episode[start]] = f"{start}:{index}"
                start = index
        return splits

    def _move_into_place(self) -> None:
        if self.root.exists():
            retired = self.root.parent / f".{self.root.name}.replaced"
            shutil.rmtree(retired, ignore_errors=True)
            os.rename(self.root, retired)
            os.rename(self.work, self.root)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            os.rename(self.work, self.root)


def _checked_frames(frames, feature: Feature, length: int, where: str) -> np.ndarray:
    """``frames`` as a (length, H, W, C) uint8 array matching ``feature``'s shape, or a
    BadInputError naming the feature, the episode and the first frame that does not."""
    expected = tuple(feature.shape)
    if len(frames) != length:
        raise BadInputError(f"{where}: {feature.name} has {len(frames)} frames but the episode has {length} steps")
    for row, frame in enumerate(frames):
        shape = tuple(np.shape(frame))
        if shape != expected:
            raise BadInputError(
                f"{where}, frame {row}: {feature.name} is {'x'.join(map(str, shape))} but the dataset's images are "
                f"{'x'.join(map(str, expected))} (height x width x channels): every image of one camera needs "
                "the same size and channels"
            )
        if isinstance(frames, np.ndarray):
            break  # one stacked array: every frame has the first one's shape
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise BadInputError(f"{where}: {feature.name} frames are {array.dtype}, expected uint8 pixel values 0-255")
    return array


def _stored_bytes(values: np.ndarray) -> int:
    """Bytes a column takes: its array, or the encoded images of an object array."""
    return sum(len(item) for item in values) if values.dtype == object else values.nbytes


def _image_array(encoded: np.ndarray, frame_index: np.ndarray) -> pa.StructArray:
    """PNG bytes as HF `datasets` stores an embedded Image: ``bytes`` and the file name
    LeRobot gives the frame (``frame-000012.png``)."""
    paths = pa.array([f"frame-{int(i):06d}.png" for i in frame_index], type=pa.string())
    return pa.StructArray.from_arrays([pa.array(list(encoded), type=pa.binary()), paths], names=["bytes", "path"])
