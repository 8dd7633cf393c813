"""Camera frames in evaluation: which camera a run sees, its image tokenizer, errors in pixels.

A run whose ``observation`` includes ``image`` (``image`` or ``image+state``) sees the
frames of one camera, ``observation.images.<camera>`` of its dataset: the run's
``camera`` setting, or the dataset's only camera. Closed-loop evaluation renders
that camera at the dataset's image size every step (the view recorded in the
dataset's provenance ``image`` for generated data); the run folder's
``image_tokenizer/`` turns frames into the model's image slots.

Pixel errors treat pixel values as numbers in [0, 1] (uint8 / 255):

- ``pixel_mse``: mean over frames, pixels and channels of (predicted - real)^2;
- ``psnr_db``: 10 log10(1 / pixel_mse), the peak signal-to-noise ratio in dB of the
  pooled error, capped at ``PSNR_CAP_DB`` (identical frames; JSON has no infinity);
- ``normalised_pixel_mse``: the same with each channel's difference divided by that
  channel's standard deviation (``meta/stats.json``, LeRobot's image stats in [0, 1]),
  the image counterpart of a state's normalised error.

Frames travel in evaluation results as base64 PNG (:func:`png_base64`), lossless and
the same bytes for the same pixels.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roboscale.data.dataset import Dataset
from roboscale.errors import BadInputError
from roboscale.runfolder import RunFolder
from roboscale.runfolder.layout import IMAGE_TOKENIZER

IMAGE_PREFIX = "observation.images."
"""Image features are ``observation.images.<camera>`` (LeRobot's convention)."""


@dataclass(frozen=True)
class Camera:
    """The camera view a run sees: its name and the square frame size (pixels)."""

    name: str
    size: int

    @property
    def feature(self) -> str:
        """The dataset feature that holds its frames."""
        return IMAGE_PREFIX + self.name


def run_observation(run: RunFolder) -> str:
    """What the run's model observes: ``state``, ``image`` or ``image+state``."""
    return str(run.config.get("observation") or "state")


def sees_images(run: RunFolder) -> bool:
    return "image" in run_observation(run).split("+")


def dataset_cameras(dataset: Dataset) -> list[str]:
    """Camera names of the dataset's image features, in feature order."""
    return [name[len(IMAGE_PREFIX) :] for name in dataset.features if name.startswith(IMAGE_PREFIX)]


def run_camera(run: RunFolder, dataset: Dataset) -> Camera | None:
    """The camera a run sees in ``dataset`` (None for a state-only run); BadInputError when
    the dataset lacks it."""
    if not sees_images(run):
        return None
    cameras = dataset_cameras(dataset)
    wanted = str(run.config.get("camera") or "")
    if not cameras:
        raise BadInputError(
            f"{dataset.root} has no observation.images.* feature but run {run.path} sees images: pass the dataset "
            "it was trained on with --data"
        )
    if wanted and wanted not in cameras:
        raise BadInputError(
            f"run {run.path} sees camera {wanted} but {dataset.root} has only {', '.join(cameras)}: pass the "
            "dataset it was trained on with --data"
        )
    name = wanted or cameras[0]
    size = int(dataset.features[IMAGE_PREFIX + name].shape[0])
    recorded = dataset.provenance.get("image") or {}
    if recorded.get("camera") == name and int(recorded.get("size", size)) != size:
        raise BadInputError(
            f"{dataset.root}: meta/roboscale.json records {name} frames of {recorded['size']} px but the feature "
            f"holds {size} px: the dataset is damaged; generate it again"
        )
    return Camera(name, size)


def load_image_tokenizer(run: RunFolder):
    """The run's fitted image tokenizer (:class:`roboscale.tokenize.image.ImageTokenizer`), or
    None for a state-only run."""
    if not sees_images(run):
        return None
    folder = Path(run.path) / IMAGE_TOKENIZER
    if not folder.is_dir():
        raise BadInputError(
            f"{run.path} sees images but has no {IMAGE_TOKENIZER}/ folder: the run folder is incomplete; "
            "train the run again"
        )
    from roboscale.tokenize.image import ImageTokenizer

    try:
        return ImageTokenizer.load(folder)
    except BadInputError:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise BadInputError(f"{folder} cannot be read ({error}): train the run again") from None


def channel_std(dataset: Dataset, feature: str) -> np.ndarray:
    """Each channel's standard deviation (C,) of ``feature``'s pixel values in [0, 1], from
    ``meta/stats.json`` (1 where it is below 1e-8, or when the stats lack it)."""
    stats = dataset.stats.get(feature) or {}
    if "std" not in stats:
        return np.ones(3)
    std = np.asarray(stats["std"], dtype=np.float64).reshape(-1)
    return np.where(std > 1e-8, std, 1.0)


def pixel_mse(predicted: np.ndarray, real: np.ndarray, std: np.ndarray | None = None) -> float:
    """Mean squared difference of two frame stacks (n, H, W, C) uint8, pixel values in [0, 1];
    with ``std`` (C,), each channel's difference in units of its standard deviation."""
    if predicted.shape != real.shape:
        raise ValueError(f"frames of shape {predicted.shape} compared with {real.shape}")
    difference = (predicted.astype(np.float64) - real.astype(np.float64)) / 255.0
    if std is not None:
        difference = difference / std
    return float(np.mean(difference**2))


PSNR_CAP_DB = 100.0
"""The PSNR of frames that are identical (or nearly: pixel MSE below 1e-10)."""


def psnr_db(mse: float) -> float:
    """Peak signal-to-noise ratio (dB) of a pixel MSE (values in [0, 1]), at most PSNR_CAP_DB."""
    return PSNR_CAP_DB if mse <= 10 ** (-PSNR_CAP_DB / 10) else 10.0 * math.log10(1.0 / mse)


def png_base64(frame: np.ndarray) -> str:
    """One frame (H, W, C) uint8 as base64 PNG text (lossless; same pixels, same text)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="PNG", optimize=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
