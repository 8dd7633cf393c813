"""Open and validate a LeRobot v3 dataset folder; read its frames as numpy arrays.

Opening checks the metadata (``meta/info.json``, tasks, episodes, stats) and the
schema of every data file against the declared features (and the first image of
each image feature in each file against its declared size); reading the frames also
checks their values (no NaN or inf in float features, every image of its feature's
size and channels). Every problem is reported
as one :class:`BadInputError` naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from roboscale.data.layout import (
    EPISODES_PATH,
    INFO_PATH,
    PROVENANCE_PATH,
    STATS_PATH,
    TASKS_PATH,
    Feature,
    decode_png_into,
    png_shape,
)
from roboscale.errors import BadInputError
from roboscale.files import read_json_object

REQUIRED_INFO = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path")
EPISODE_COLUMNS = (
    "episode_index",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
REQUIRED_FEATURES = ("observation.state", "action")


@dataclass
class Dataset:
    """A validated dataset: metadata in memory, frames read on demand."""

    root: Path
    info: dict
    features: dict[str, Feature]
    tasks: list[str]
    episodes: pd.DataFrame
    """One row per episode: index, task, length, file, frame range, split (+ extras)."""
    stats: dict[str, dict[str, np.ndarray]]
    provenance: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.info["fps"]

    @property
    def total_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def image_keys(self) -> list[str]:
        """Image features (``observation.images.*``), in info.json's order."""
        return [name for name, feature in self.features.items() if feature.is_image]

    @property
    def splits(self) -> dict[str, range]:
        """Split name -> range of episode indices."""
        return _parse_splits(self.info.get("splits") or {"train": f"0:{len(self.episodes)}"}, self.root)

    def episode_indices(self, split: str | None = None) -> np.ndarray:
        if split is None:
            return self.episodes["episode_index"].to_numpy()
        if split not in self.splits:
            raise BadInputError(f"{self.root} has no split {split!r}; it has {', '.join(self.splits)}")
        return np.arange(self.splits[split].start, self.splits[split].stop)

    def data_files(self) -> list[Path]:
        keys = self.episodes[["data/chunk_index", "data/file_index"]].drop_duplicates().itertuples(index=False)
        template = self.info["data_path"]
        return [self.root / template.format(chunk_index=int(c), file_index=int(f)) for c, f in keys]

    def frames(self, columns=None, split: str | None = None, check_values: bool = True) -> dict[str, np.ndarray]:
        """Per-frame arrays, (frames, dims) for vector features, (frames,) for scalars,
        (frames, H, W, C) uint8 for image features (PNGs decoded).

        ``split`` keeps the frames of that split's episodes (only those images are
        decoded). Float features are checked for NaN/inf unless ``check_values`` is
        false; images are always checked against their feature's size and channels.
        """
        names = list(columns) if columns is not None else list(self.features)
        unknown = [name for name in names if name not in self.features]
        if unknown:
            raise BadInputError(
                f"{self.root} has no feature(s) {', '.join(unknown)}; it has {', '.join(self.features)}"
            )
        mask = None if split is None else self._split_mask(split)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        start = 0  # dataset index of the file's first frame
        for path in self.data_files():
            table = pq.read_table(path, columns=names)
            rows = np.arange(table.num_rows)  # rows of this file, named in error messages
            if mask is not None:
                keep = mask[start : start + table.num_rows]
                start += table.num_rows
                rows, table = rows[keep], table.filter(pa.array(keep))
            for name in names:
                feature = self.features[name]
                if feature.is_image:
                    parts[name].append(_decode_images(table.column(name), feature, path, rows))
                    continue
                values = _column_to_numpy(table.column(name), feature)
                if check_values and values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                    row = int(np.flatnonzero(~np.all(np.isfinite(values.reshape(len(values), -1)), axis=1))[0])
                    raise BadInputError(f"{path}: column {name} has NaN or inf values (first at row {row})")
                parts[name].append(values)
        return {name: np.concatenate(chunks) if chunks else np.empty(0) for name, chunks in parts.items()}

    def _split_mask(self, split: str) -> np.ndarray:
        """(total frames,) bool: the frames of ``split``'s episodes."""
        selected = self.episodes.set_index("episode_index").loc[self.episode_indices(split)]
        mask = np.zeros(self.total_frames, dtype=bool)
        for start, stop in zip(selected["dataset_from_index"], selected["dataset_to_index"]):
            mask[start:stop] = True
        return mask

    def fingerprint(self) -> str:
        """SHA-256 of every file (path and bytes): equal fingerprints mean identical datasets."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(self.root)).encode() + b"\0")
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def size_on_disk(self) -> int:
        """Bytes of all files in the folder."""
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def summary(self) -> dict:
        """Episodes, frames, tasks, success and how the data was made, for `roboscale data info`."""
        episodes = self.episodes
        # Episodes appended by other tools may lack roboscale's columns (null values).
        success = pd.to_numeric(episodes["success"], errors="coerce") if "success" in episodes else None
        per_task = []
        for task, part in episodes.groupby("task", sort=False):
            row = {"task": task, "episodes": len(part), "frames": int(part["length"].sum())}
            if success is not None and success[part.index].notna().any():
                row["success_rate"] = float(success[part.index].mean())
            per_task.append(row)
        summary = {
            "path": str(self.root),
            "codebase_version": self.info["codebase_version"],
            "robot_type": self.info.get("robot_type"),
            "fps": self.fps,
            "episodes": len(episodes),
            "frames": self.total_frames,
            "tasks": len(self.tasks),
            "splits": {name: len(r) for name, r in self.splits.items()},
            "episode_length": {
                "mean": float(episodes["length"].mean()),
                "min": int(episodes["length"].min()),
                "max": int(episodes["length"].max()),
            },
            "state_dim": self.features["observation.state"].size,
            "action_dim": self.features["action"].size,
            **({"images": {key: list(self.features[key].shape) for key in self.image_keys}} if self.image_keys else {}),
            "per_task": per_task,
            "size_on_disk_bytes": self.size_on_disk(),
            "fingerprint": self.fingerprint()[:16],
        }
        if success is not None and success.notna().any():
            summary["success_rate"] = float(success.mean())
        if self.provenance:
            spec = self.provenance.get("spec", {})
            summary["generation"] = {
                "env": spec.get("env"),
                "quality": self.provenance.get("quality"),
                "configs_per_task": spec.get("configs_per_task"),
                "seed": spec.get("seed"),
                "env_versions": self.provenance.get("env_versions"),
                "source": self.provenance.get("source"),
                "image": self.provenance.get("image"),
            }
        return summary


def open_dataset(root: str | Path, *, check_files: bool = True) -> Dataset:
    """Open a LeRobot v3 folder, validating its metadata (and, with ``check_files``,
    every data file's schema and row count)."""
    root = Path(root)
    if root.is_file():
        raise BadInputError(
            f"{root} is a file, not a dataset folder: give the folder that holds {INFO_PATH} (a LeRobot v3 dataset)"
        )
    if not root.is_dir():
        raise BadInputError(
            f"dataset folder {root} not found: check the path (or generate it with roboscale data generate)"
        )
    info = _read_info(root)
    features = _features(root, info)
    tasks = _read_tasks(root)
    episodes = _read_episodes(root, info, tasks)
    stats = _read_stats(root, features)
    provenance = json.loads((root / PROVENANCE_PATH).read_text()) if (root / PROVENANCE_PATH).exists() else {}
    dataset = Dataset(root, info, features, tasks, episodes, stats, provenance)
    dataset.splits  # noqa: B018 - parse and check the split ranges now
    if check_files:
        _check_data_files(dataset)
    return dataset


def _read_info(root: Path) -> dict:
    path = root / INFO_PATH
    info = read_json_object(path, f"{root} is not a LeRobot dataset folder", "the dataset metadata is damaged")
    missing = [key for key in REQUIRED_INFO if key not in info]
    if missing:
        raise BadInputError(f"{path} lacks {', '.join(missing)}: not a complete LeRobot v3 info file")
    version = str(info["codebase_version"])
    if not version.startswith("v3"):
        raise BadInputError(
            f"{path}: codebase_version {version}; roboscale reads LeRobot v3.0 datasets "
            "(convert older ones with LeRobot's v2.1 -> v3.0 converter)"
        )
    return info


def _features(root: Path, info: dict) -> dict[str, Feature]:
    path = root / INFO_PATH
    features = {}
    for name, spec in info["features"].items():
        if not isinstance(spec, dict) or "dtype" not in spec or "shape" not in spec:
            raise BadInputError(f"{path}: feature {name!r} needs a dtype and a shape")
        if spec["dtype"] in ("video", "string"):
            continue  # videos (mp4 files) and text are not frame columns; roboscale leaves them alone
        try:
            features[name] = Feature.from_info(name, spec)
        except (TypeError, ValueError, KeyError) as error:
            raise BadInputError(f"{path}: feature {name!r} is malformed ({error})") from None
        if features[name].is_image:
            _check_image_shape(features[name], path)
    missing = [name for name in REQUIRED_FEATURES if name not in features]
    if missing:
        raise BadInputError(f"{path} declares no {', '.join(missing)} feature: roboscale needs states and actions")
    return features


def _check_image_shape(feature: Feature, path: Path) -> None:
    height, width, channels = (*feature.shape, 0, 0, 0)[:3]
    if len(feature.shape) != 3 or min(feature.shape) < 1 or channels not in (1, 3, 4):
        raise BadInputError(
            f"{path}: image feature {feature.name} has shape {list(feature.shape)}; "
            "expected [height, width, channels] with 1, 3 or 4 channels"
        )


def _read_tasks(root: Path) -> list[str]:
    path = root / TASKS_PATH
    if not path.exists():
        raise BadInputError(f"{path} is missing: the dataset has no task list")
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise BadInputError(f"{path} is not a readable parquet file ({error})") from None
    if "task_index" not in frame.columns:
        raise BadInputError(f"{path} has no task_index column")
    tasks = frame["task"] if "task" in frame.columns else pd.Series(frame.index, index=frame.index)
    order = np.argsort(frame["task_index"].to_numpy(), kind="stable")
    return [str(tasks.iloc[i]) for i in order]


def _read_episodes(root: Path, info: dict, tasks: list[str]) -> pd.DataFrame:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise BadInputError(f"{root / 'meta' / 'episodes'} holds no episode files (expected {EPISODES_PATH})")
    frames = []
    for path in files:
        try:
            schema_names = pq.read_schema(path).names
            light = [name for name in schema_names if not name.startswith("stats/")]
            frames.append(pq.read_table(path, columns=light).to_pandas())
        except (OSError, pa.ArrowException) as error:
            raise BadInputError(f"{path} is not a readable parquet file ({error})") from None
        missing = [column for column in EPISODE_COLUMNS if column not in frames[-1].columns]
        if missing:
            raise BadInputError(f"{path} lacks column(s) {', '.join(missing)}: not a LeRobot v3 episodes file")
    episodes = pd.concat(frames, ignore_index=True).sort_values("episode_index", kind="stable").reset_index(drop=True)
    where = files[0].parent.parent
    empty = episodes.index[episodes["length"] <= 0]
    if len(empty):
        raise BadInputError(f"{where}: episode {int(episodes['episode_index'][empty[0]])} has length 0")
    if len(episodes) != int(info["total_episodes"]):
        raise BadInputError(
            f"{where}: {len(episodes)} episodes listed but info.json says total_episodes={info['total_episodes']}"
        )
    if int(episodes["length"].sum()) != int(info["total_frames"]):
        raise BadInputError(
            f"{where}: episode lengths add up to {int(episodes['length'].sum())} frames "
            f"but info.json says total_frames={info['total_frames']}"
        )
    if "tasks" in episodes.columns:
        episodes["task"] = [str(list(t)[0]) if len(t) else "" for t in episodes["tasks"]]
    else:
        episodes["task"] = tasks[0] if tasks else ""
    splits = _parse_splits(info.get("splits") or {"train": f"0:{len(episodes)}"}, root)
    episodes["split"] = "train"
    for name, indices in splits.items():
        episodes.loc[episodes["episode_index"].isin(list(indices)), "split"] = name
    return episodes.drop(columns=["tasks"], errors="ignore")


def _parse_splits(raw: dict, root: Path) -> dict[str, range]:
    splits = {}
    for name, text in raw.items():
        try:
            start, stop = (int(part) for part in str(text).split(":"))
        except ValueError:
            raise BadInputError(f"{root / INFO_PATH}: split {name!r} is {text!r}, expected 'start:end'") from None
        splits[name] = range(start, stop)
    return splits


def _read_stats(root: Path, features: dict[str, Feature]) -> dict[str, dict[str, np.ndarray]]:
    path = root / STATS_PATH
    raw = read_json_object(
        path, "per-feature statistics are needed (tokenizers use them)", "the dataset's statistics are damaged"
    )
    stats = {}
    for name in REQUIRED_FEATURES:
        if name not in raw:
            raise BadInputError(f"{path} has no statistics for {name}: recompute them (roboscale data import)")
        entry = {}
        for stat in ("min", "max", "mean", "std"):
            values = np.asarray(raw[name].get(stat, []), dtype=np.float64).reshape(-1)
            if values.size != features[name].size:
                raise BadInputError(
                    f"{path}: {name} {stat} has {values.size} values, the feature has {features[name].size} dimensions"
                )
            entry[stat] = values
        stats[name] = entry
    for name, entry in raw.items():
        if name not in stats and isinstance(entry, dict):
            stats[name] = {stat: np.asarray(values) for stat, values in entry.items()}
    return stats


def _check_data_files(dataset: Dataset) -> None:
    rows_per_file = dataset.episodes.groupby(["data/chunk_index", "data/file_index"])["length"].sum()
    for (chunk, file), expected_rows in rows_per_file.items():
        path = dataset.root / dataset.info["data_path"].format(chunk_index=int(chunk), file_index=int(file))
        if not path.exists():
            raise BadInputError(f"{path} is missing: the episodes metadata points to it")
        try:
            metadata = pq.read_metadata(path)
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as error:
            raise BadInputError(f"{path} is not a readable parquet file ({error})") from None
        for feature in dataset.features.values():
            if feature.name not in schema.names:
                raise BadInputError(f"{path} has no column {feature.name}, which info.json declares")
            problem = _type_problem(schema.field(feature.name).type, feature)
            if problem:
                raise BadInputError(f"{path}: column {feature.name} {problem}")
        if metadata.num_rows != expected_rows:
            raise BadInputError(f"{path} has {metadata.num_rows} rows but its episodes need {expected_rows}")
        _check_first_images(dataset, path)


def _check_first_images(dataset: Dataset, path: Path) -> None:
    """The first image of each image feature in data file ``path`` has the declared size
    and channels (reading one batch of rows, not the file). Every image is checked when
    the frames are read."""
    images = dataset.image_keys
    if not images:
        return
    try:
        batch = next(pq.ParquetFile(path).iter_batches(batch_size=1, columns=images), None)
    except (OSError, pa.ArrowException) as error:
        raise BadInputError(f"{path} is not a readable parquet file ({error})") from None
    if batch is None:
        return
    for name in images:
        cell = batch.column(name)[0].as_py() or {}
        _check_image_cell(cell.get("bytes"), dataset.features[name], path, 0)


def _check_image_cell(data: bytes | None, feature: Feature, path: Path, row: int) -> None:
    """BadInputError naming the feature, file and row when an image is missing, does not
    decode or differs from the declared size or channels."""
    shape = None if data is None else png_shape(data)
    declared = "x".join(map(str, feature.shape))
    if shape is None:
        raise BadInputError(f"{path}: {feature.name} row {row} holds no decodable image (declared {declared})")
    if shape != tuple(feature.shape):
        raise BadInputError(
            f"{path}: {feature.name} row {row} is a {'x'.join(map(str, shape))} image but info.json declares "
            f"{declared} (height x width x channels): images of different sizes or channels in one dataset; "
            "regenerate or re-import it with one size per camera"
        )


def _decode_images(column: pa.ChunkedArray, feature: Feature, path: Path, rows: np.ndarray) -> np.ndarray:
    """(len(column), H, W, C) uint8 frames from a column of encoded images (``rows``:
    the file rows they came from, for error messages)."""
    encoded = column.combine_chunks().field("bytes").to_pylist()
    out = np.empty((len(encoded), *feature.shape), dtype=np.uint8)
    for i, data in enumerate(encoded):
        if data is None or not decode_png_into(data, out[i]):
            _check_image_cell(data, feature, path, int(rows[i]))
            raise BadInputError(f"{path}: {feature.name} row {int(rows[i])} does not decode as an image")
    return out


def _type_problem(arrow_type: pa.DataType, feature: Feature) -> str | None:
    """Why a parquet column does not match its declared feature (None if it does)."""
    if feature.is_image:
        if not pa.types.is_struct(arrow_type) or arrow_type.get_field_index("bytes") < 0:
            return f"is {arrow_type}, but info.json declares an image (struct<bytes: binary, path: string>)"
        return None
    if feature.is_vector:
        if not (
            pa.types.is_list(arrow_type)
            or pa.types.is_fixed_size_list(arrow_type)
            or pa.types.is_large_list(arrow_type)
        ):
            return f"is {arrow_type}, but info.json declares shape {list(feature.shape)}"
        if pa.types.is_fixed_size_list(arrow_type) and arrow_type.list_size != feature.size:
            return f"holds {arrow_type.list_size} values per frame, but info.json declares shape {list(feature.shape)}"
        arrow_type = arrow_type.value_type
    kind = {"float32": "floating", "float64": "floating", "int64": "integer", "bool": "boolean"}.get(feature.dtype)
    checks = {"floating": pa.types.is_floating, "integer": pa.types.is_integer, "boolean": pa.types.is_boolean}
    if kind and not checks[kind](arrow_type):
        return f"is {arrow_type}, but info.json declares {feature.dtype}"
    return None


def _column_to_numpy(column: pa.ChunkedArray, feature: Feature) -> np.ndarray:
    array = column.combine_chunks()
    if feature.is_vector:
        flat = array.flatten().to_numpy(zero_copy_only=False)
        if flat.size != len(array) * feature.size:
            raise BadInputError(f"column {feature.name} has rows of the wrong length (declared {feature.size} values)")
        return flat.reshape(len(array), *feature.shape).astype(feature.numpy_dtype(), copy=False)
    return array.to_numpy(zero_copy_only=False).astype(feature.numpy_dtype(), copy=False)
