"""A run's camera frames: which camera, checked against the image tokenizer before any
work, the tokenizer fitted on the training split's frames, and its copy in the run folder.

The image tokenizer is fitted once per dataset and spec (:func:`roboscale.tokenize.image.fit_image_tokenizer`
caches it by content hash) with a fixed seed, so every seed of a run, and every run of a
study on the same data, sees the same tokens. Its training FLOPs are recorded
(``record["image_tokenizer"]``), not added to the run's compute C.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.progress import TextColumn

from roboscale.data.dataset import Dataset
from roboscale.errors import BadInputError
from roboscale.tokenize import even_subsample
from roboscale.train.config import TrainConfig

if TYPE_CHECKING:
    from roboscale.tokenize.image import ImageTokenizer

IMAGE_PREFIX = "observation.images."
TOKENIZER_SEED = 0
"""Seed of the image tokenizer's training: fixed, not the run's, so the K seeds of a stack share the tokens."""
HELDOUT_FRAMES = 2_000
"""Validation frames (evenly spread) on which the tokenizer's reconstruction is reported."""


def camera_key(config: TrainConfig, dataset: Dataset) -> str:
    """The image feature (``observation.images.<camera>``) a run with images sees; BadInputError
    when the dataset has none, lacks the camera asked for, or has several and none was chosen."""
    keys = [name for name in dataset.features if name.startswith(IMAGE_PREFIX)]
    cameras = [name[len(IMAGE_PREFIX) :] for name in keys]
    if not keys:
        raise BadInputError(
            f"{config.data} has no observation.images.* feature; generate with --camera or use observation=state"
        )
    if config.camera:
        if config.camera not in cameras:
            raise BadInputError(f"--camera {config.camera}: {config.data} has camera(s) {', '.join(cameras)}")
        return IMAGE_PREFIX + config.camera
    if len(keys) > 1:
        raise BadInputError(f"{config.data} has cameras {', '.join(cameras)}: choose one with --camera")
    return keys[0]


def check_image_shape(config: TrainConfig, dataset: Dataset, key: str) -> None:
    """Refuse an image tokenizer that cannot cut this dataset's frames into tokens (a patch
    that does not divide the image, more vq tokens than pixels)."""
    spec = config.image_spec()
    height, width = dataset.features[key].shape[:2]
    if spec.kind == "patch" and (height % spec.patch or width % spec.patch):
        raise BadInputError(
            f"--image-tokenizer {config.image_tokenizer}: patch {spec.patch} does not divide the "
            f"{height}x{width} images of {key}; use a patch size that divides {height}"
        )
    if spec.kind == "vq" and spec.tokens > height * width:
        raise BadInputError(
            f"--image-tokenizer {config.image_tokenizer}: {spec.tokens} tokens per frame is more than the "
            f"{height}x{width} pixels of {key}; use fewer tokens"
        )


def check_tokenizer_data_images(config: TrainConfig, dataset: Dataset, fitted_on: Dataset, key: str) -> None:
    """The ``tokenizer_data`` dataset holds the same camera at the same shape as the training data."""
    if key not in fitted_on.features:
        raise BadInputError(
            f"--tokenizer-data {config.tokenizer_data} has no {key} feature: fit the image tokenizer on data "
            "with the same camera"
        )
    ours, theirs = dataset.features[key].shape, fitted_on.features[key].shape
    if ours != theirs:
        raise BadInputError(
            f"--tokenizer-data {config.tokenizer_data} has {key} of shape {list(theirs)}, the training data "
            f"{config.data} {list(ours)}: fit the image tokenizer on frames of the same size"
        )


def fit_run_image_tokenizer(config: TrainConfig, key: str, train_frames: np.ndarray, heldout: np.ndarray):
    """The image tokenizer of ``config.image_tokenizer`` fitted on ``train_frames`` (n, H, W, C)
    uint8 (cached by content), reporting its reconstruction on ``heldout`` frames."""
    from roboscale.tokenize.image import fit_image_tokenizer

    if len(train_frames) == 0:
        raise BadInputError(f"{config.data}: no training frames of {key} to fit the image tokenizer on")
    heldout = even_subsample(heldout, HELDOUT_FRAMES) if len(heldout) else None
    from roboscale.cli.output import LateProgress, bar_columns  # a bar on stderr, only when it trains

    label = f"image tokenizer {config.image_spec()} on {len(train_frames):,} frames"
    with LateProgress(bar_columns(label, TextColumn("step {task.completed}/{task.total}"))) as bar:
        return fit_image_tokenizer(
            config.image_spec(),
            train_frames,
            seed=TOKENIZER_SEED,
            heldout_frames=heldout,
            progress=lambda step, total, _metrics: bar.update(completed=step, total=total),
        )


def save_image_tokenizer(tokenizer: ImageTokenizer, folder: Path) -> None:
    """Save ``tokenizer`` as ``folder`` whole: written beside it, then renamed into place."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    tokenizer.save(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def load_image_tokenizer(folder: Path) -> ImageTokenizer:
    """The image tokenizer a run saved in ``folder``; BadInputError when it is missing."""
    from roboscale.tokenize.image import ImageTokenizer

    if not folder.is_dir():
        raise BadInputError(f"{folder} is missing: the run folder is incomplete; train the run again")
    return ImageTokenizer.load(folder)
