"""The LeRobotDataset v3.0 folder layout, written and read with pyarrow alone.

A dataset folder::

    meta/info.json                         codebase version, fps, features, path templates, totals, splits
    meta/stats.json                        per-feature min/max/mean/std/count and quantiles
    meta/tasks.parquet                     task strings (the index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, file, frame range, stats
    meta/roboscale.json                    how the data was made (knobs, seeds, versions)
    data/chunk-000/file-000.parquet        frames: observation.state, images, action, next.*, indices

Vector features are ``fixed_size_list`` columns, shape-(1,) features plain scalar
columns, exactly as LeRobot 0.4 writes them (see the sample under shared/anchors).
Image features (``dtype: "image"``, shape [H, W, C]) hold one PNG per frame in a
``struct<bytes: binary, path: string>`` column, which HF `datasets` (and so LeRobot)
reads as an ``Image`` feature.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
PROVENANCE_PATH = "meta/roboscale.json"
CHUNKS_SIZE = 1000
"""Files per chunk folder (LeRobot's default)."""

STAT_NAMES = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}

_ARROW_TYPES = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}
IMAGE_DTYPE = "image"
IMAGE_PREFIX = "observation.images."
"""Image features are named ``observation.images.<camera>`` (LeRobot's convention)."""
IMAGE_NAMES = ("height", "width", "channels")
IMAGE_ARROW_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
"""How HF `datasets` stores an ``Image`` feature: encoded bytes and a file name."""


@dataclass(frozen=True)
class Feature:
    """One per-frame column: its dtype, shape and (optional) per-dimension names."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def is_image(self) -> bool:
        """One encoded image (PNG) per frame, decoded to (H, W, C) uint8."""
        return self.dtype == IMAGE_DTYPE

    @property
    def is_vector(self) -> bool:
        """Stored as a fixed-size list (shape other than (1,); images are not vectors)."""
        return self.shape != (1,) and not self.is_image

    def arrow_type(self) -> pa.DataType:
        if self.is_image:
            return IMAGE_ARROW_TYPE
        scalar = _ARROW_TYPES[self.dtype]
        return pa.list_(scalar, self.size) if self.is_vector else scalar

    def numpy_dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.is_image else np.dtype(self.dtype)

    def to_info(self) -> dict:
        return {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "names": None if self.names is None else list(self.names),
        }

    def to_hf(self) -> dict:
        """The feature as HF `datasets` describes it in the parquet's schema metadata."""
        if self.is_image:
            return {"_type": "Image"}
        value = {"dtype": self.dtype, "_type": "Value"}
        return {"feature": value, "length": self.size, "_type": "List"} if self.is_vector else value

    @classmethod
    def from_info(cls, name: str, spec: dict) -> Feature:
        names = spec.get("names")
        if isinstance(names, dict):  # LeRobot also allows {"motors": [...]}
            names = next(iter(names.values()), None)
        return cls(name, spec["dtype"], tuple(int(s) for s in spec["shape"]), None if names is None else tuple(names))


def image_feature(camera: str, size: int, channels: int = 3) -> Feature:
    """The image feature of one camera: square ``size`` x ``size`` frames (pixels) with
    ``channels`` channels (3 = RGB), named ``observation.images.<camera>``."""
    return Feature(IMAGE_PREFIX + camera, IMAGE_DTYPE, (size, size, channels), IMAGE_NAMES)


def camera_of(feature_name: str) -> str:
    """``observation.images.top`` -> ``top`` (the name itself when it has no image prefix)."""
    return feature_name.removeprefix(IMAGE_PREFIX)


def frame_features(
    state_names: tuple[str, ...],
    action_names: tuple[str, ...],
    with_expert_action: bool = True,
    cameras: dict[str, int] | None = None,
) -> tuple[Feature, ...]:
    """The per-frame features of a roboscale dataset, in column order. ``cameras``:
    camera name -> image size in pixels, one RGB image feature each, after the state."""
    features = [Feature("observation.state", "float32", (len(state_names),), state_names)]
    features += [image_feature(camera, size) for camera, size in (cameras or {}).items()]
    features.append(Feature("action", "float32", (len(action_names),), action_names))
    if with_expert_action:
        features.append(Feature("expert.action", "float32", (len(action_names),), action_names))
    features += [
        Feature("next.reward", "float32", (1,)),
        Feature("next.done", "bool", (1,)),
        Feature("next.success", "bool", (1,)),
        Feature("timestamp", "float32", (1,)),
        Feature("frame_index", "int64", (1,)),
        Feature("episode_index", "int64", (1,)),
        Feature("index", "int64", (1,)),
        Feature("task_index", "int64", (1,)),
    ]
    return tuple(features)


def arrow_schema(features: tuple[Feature, ...]) -> pa.Schema:
    """Frame schema with the HF `datasets` metadata LeRobot writes alongside."""
    hf = {"info": {"features": {f.name: f.to_hf() for f in features}}}
    return pa.schema(
        [pa.field(f.name, f.arrow_type()) for f in features],
        metadata={b"huggingface": json.dumps(hf, separators=(",", ":")).encode()},
    )


def data_file(root: Path, chunk_index: int, file_index: int) -> Path:
    return root / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)


def episodes_file(root: Path, chunk_index: int = 0, file_index: int = 0) -> Path:
    return root / EPISODES_PATH.format(chunk_index=chunk_index, file_index=file_index)


def write_json(path: Path, payload: dict) -> None:
    """Deterministic JSON (sorted keys where order carries no meaning is the caller's choice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=4, ensure_ascii=False) + "\n")


# -- image frames as PNG ------------------------------------------------------------------

PNG_COMPRESS_LEVEL = 1
"""zlib level of the PNGs: 1 is LeRobot's default; on 64x64 renders it encodes as fast as
level 0 and makes files ~40x smaller, while levels 3-6 shrink them <30% more, slower."""
_CHANNELS_OF_MODE = {"L": 1, "RGB": 3, "RGBA": 4}
_MODE_OF_CHANNELS = {channels: mode for mode, channels in _CHANNELS_OF_MODE.items()}


def encode_png(frame: np.ndarray) -> bytes:
    """One (H, W, C) uint8 frame as PNG bytes, C in {1, 3, 4}. Same frame, same bytes
    (fixed compression level, no timestamps or other ancillary chunks)."""
    from PIL import Image

    mode = _MODE_OF_CHANNELS[frame.shape[-1]]
    buffer = io.BytesIO()
    Image.fromarray(frame[..., 0] if mode == "L" else frame, mode=mode).save(
        buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL
    )
    return buffer.getvalue()


def png_shape(data: bytes) -> tuple[int, int, int] | None:
    """(H, W, C) of an encoded image (None when it is not a readable image or its colour
    mode is not L, RGB or RGBA); reads the header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    channels = _CHANNELS_OF_MODE.get(image.mode)
    return None if channels is None else (image.height, image.width, channels)


def decode_png_into(data: bytes, out: np.ndarray) -> bool:
    """Decode one encoded image into ``out`` ((H, W, C) uint8, preallocated); False (out
    untouched) when the image's size or channels differ from out's shape or it does not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        if _CHANNELS_OF_MODE.get(image.mode) != out.shape[2] or image.size != (out.shape[1], out.shape[0]):
            return False
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        return False
    out[...] = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(out.shape)
    return True
