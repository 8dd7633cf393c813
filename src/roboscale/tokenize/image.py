"""Image tokenizers: camera frames to the slots a sequence model reads and predicts.

A frame is (H, W, C) uint8 with H = W (``image_size``); an image tokenizer turns it into
``tokens`` slots of ``group`` values:

- ``patch:P`` (ViT-style): (H/P)^2 patches of P*P*C values, each pixel scaled to [0, 1]
  and normalised per channel by the training frames' mean and std (slots are float32;
  the model embeds them linearly and regresses them). Decoding is exact up to uint8
  rounding, so the reconstruction error is 0.
- ``vq:K@T``: a small VQ-VAE (:mod:`roboscale.tokenize.vqvae`) trained on the study's
  training frames; T codes per frame (a square number, sqrt(T) x sqrt(T) grid), each one
  of K (slots are int64, one value each). It reports its reconstruction error, codebook
  usage and its own training FLOPs (recorded, not part of a model's compute C).

A trained VQ-VAE is cached under ``<cache>/<key>/`` where the key is the SHA-256 of the
training frames' bytes and shape, the spec, the seed, the training settings and
:data:`CODE_VERSION`: the same frames never train twice. ``<cache>`` is the ``cache_dir``
given, else ``$ROBOSCALE_CACHE/image_tokenizers``, else
``~/.cache/roboscale/image_tokenizers``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from roboscale.errors import BadInputError, check_seed
from roboscale.files import file_mode, read_json_object, write_atomically, write_json_atomic
from roboscale.tokenize.image_spec import ImageTokenizerSpec
from roboscale.tokenize.vqvae import VQVAE, VQTrainingSettings, to_pixels, train_vqvae

CODE_VERSION = 1
"""Bump when a change to the VQ-VAE or its training changes what a fit produces: old
cache entries are then never found again."""
SETTINGS_FILE = "tokenizer.json"
WEIGHTS_FILE = "weights.safetensors"
EVALUATION_FRAMES = 2048
"""At most this many frames (evenly spaced) are used to measure reconstruction."""


def check_frames(frames: np.ndarray, what: str) -> tuple[int, int]:
    """(image_size, channels) of a (n, H, W, C) uint8 stack of square frames, else BadInputError."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4:
        shape = getattr(frames, "shape", None)
        raise BadInputError(f"{what}: need a (n, H, W, C) uint8 array of frames, got {type(frames).__name__} {shape}")
    if len(frames) == 0:
        raise BadInputError(f"{what}: no frames; the dataset needs at least one image frame")
    if frames.shape[1] != frames.shape[2]:
        raise BadInputError(f"{what}: frames are {frames.shape[1]}x{frames.shape[2]}; only square images are supported")
    return frames.shape[1], frames.shape[3]


@dataclass
class ImageTokenizer:
    """A fitted image tokenizer (see the module docstring); build with :func:`fit_image_tokenizer`."""

    spec: ImageTokenizerSpec
    image_size: int
    channels: int
    mean: np.ndarray | None = field(default=None, repr=False)
    """patch: (C,) per-channel mean of the training pixels in [0, 1]."""
    std: np.ndarray | None = field(default=None, repr=False)
    """patch: (C,) per-channel std (at least 1/255)."""
    model: VQVAE | None = field(default=None, repr=False)
    training: dict = field(default_factory=dict)
    """vq: seed, settings, train_seconds, train_flops, train_steps, final_loss."""
    cache_key: str = ""
    quality: dict = field(default_factory=dict)
    """Reconstruction measured at fit time (:meth:`measure`) and on which frames."""
    from_cache: bool = False
    """Whether the fit loaded this tokenizer from the cache instead of training it."""

    @property
    def tokens(self) -> int:
        """Tokens (slots) per frame."""
        return self.spec.tokens_per_frame(self.image_size)

    @property
    def group(self) -> int:
        """Values per token: P*P*C for patch, 1 for vq."""
        return self.spec.patch**2 * self.channels if self.spec.kind == "patch" else 1

    @property
    def bins(self) -> int:
        """Distinct values per slot: K for vq, 0 for patch (continuous)."""
        return self.spec.codes

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """(n, H, W, C) uint8 -> (n, tokens, group): float32 normalised patches, or int64 codes."""
        self._check_like(frames)
        if self.spec.kind == "patch":
            scaled = (frames.astype(np.float64) / 255.0 - self.mean) / self.std
            return _to_patches(scaled, self.spec.patch).astype(np.float32)
        return self._codes_of(frames)[:, :, None]

    def decode(self, slots: np.ndarray) -> np.ndarray:
        """(n, tokens, group) slots (as :meth:`encode` gives) -> (n, H, W, C) uint8 frames."""
        slots = np.asarray(slots)
        if slots.ndim != 3 or slots.shape[1:] != (self.tokens, self.group):
            raise BadInputError(
                f"image tokenizer {self.spec}: slots of shape {slots.shape}, expected (n, {self.tokens}, {self.group})"
            )
        if self.spec.kind == "patch":
            values = _from_patches(slots.astype(np.float64), self.spec.patch, self.image_size, self.channels)
            return _to_uint8(values * self.std + self.mean)
        codes = slots[:, :, 0].astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= self.bins):
            raise BadInputError(f"image tokenizer {self.spec}: codes must lie in [0, {self.bins})")
        pixels = _in_batches(torch.from_numpy(codes), self.model.pixels_of)
        return _to_uint8(pixels.permute(0, 2, 3, 1).numpy())

    def measure(self, frames: np.ndarray) -> dict:
        """Reconstruction of ``frames`` (at most :data:`EVALUATION_FRAMES`, evenly spaced):
        ``recon_mse`` (pixels in [0, 1]), ``psnr_db`` (None when exact), and for vq
        ``codebook_usage`` (fraction of the K codes used) and ``perplexity`` (exp of the
        entropy of the code histogram; K when all codes are equally used)."""
        sample = frames[np.unique(np.linspace(0, len(frames) - 1, min(len(frames), EVALUATION_FRAMES)).astype(int))]
        slots = self.encode(sample)
        error = (self.decode(slots).astype(np.float64) - sample) / 255.0
        mse = float(np.mean(error**2))
        result = {
            "recon_mse": mse,
            "psnr_db": None if mse == 0 else float(-10 * np.log10(mse)),
            "codebook_usage": None,
            "perplexity": None,
            "evaluated_frames": len(sample),
        }
        if self.spec.kind == "vq":
            shares = np.bincount(slots.ravel(), minlength=self.bins) / slots.size
            used = shares[shares > 0]
            result["codebook_usage"] = float(len(used) / self.bins)
            result["perplexity"] = float(np.exp(-np.sum(used * np.log(used))))
        return result

    def report(self) -> dict:
        """What a run record keeps about its image tokenizer (JSON-ready)."""
        return {
            "spec": str(self.spec),
            "tokens_per_frame": self.tokens,
            "values_per_token": self.group,
            "bins": self.bins,
            **self.quality,
            "train_flops": int(self.training.get("train_flops", 0)),
            "train_seconds": float(self.training.get("train_seconds", 0.0)),
            "train_steps": int(self.training.get("train_steps", 0)),
            "cache_key": self.cache_key,
            "from_cache": self.from_cache,
        }

    def save(self, folder: Path) -> None:
        """Write ``tokenizer.json`` (and for vq ``weights.safetensors``) into ``folder``, each atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.model is not None:
            weights = {name: tensor.contiguous() for name, tensor in self.model.state_dict().items()}
            write_atomically(folder / WEIGHTS_FILE, lambda path: save_file(weights, path))
        write_json_atomic(folder / SETTINGS_FILE, self._settings())

    def _settings(self) -> dict:
        return {
            "spec": str(self.spec),
            "image_size": self.image_size,
            "channels": self.channels,
            "code_version": CODE_VERSION,
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
            "training": self.training,
            "cache_key": self.cache_key,
            "quality": self.quality,
        }

    @classmethod
    def load(cls, folder: Path) -> ImageTokenizer:
        """The tokenizer :meth:`save` wrote into ``folder``."""
        folder = Path(folder)
        fix = "fit the image tokenizer again (delete the folder)"
        saved = read_json_object(folder / SETTINGS_FILE, fix, fix)
        try:
            spec = ImageTokenizerSpec.parse(saved["spec"])
            tokenizer = cls(
                spec,
                int(saved["image_size"]),
                int(saved["channels"]),
                mean=None if saved["mean"] is None else np.asarray(saved["mean"], dtype=np.float64),
                std=None if saved["std"] is None else np.asarray(saved["std"], dtype=np.float64),
                training=dict(saved["training"]),
                cache_key=str(saved["cache_key"]),
                quality=dict(saved["quality"]),
            )
            if spec.kind == "vq":
                settings = VQTrainingSettings(**saved["training"]["settings"])
                tokenizer.model = VQVAE(tokenizer.channels, tokenizer.image_size, spec.tokens, spec.codes, settings)
                tokenizer.model.load_state_dict(load_file(folder / WEIGHTS_FILE))
                tokenizer.model.eval()
        except (KeyError, TypeError, ValueError, RuntimeError, OSError, SafetensorError) as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise BadInputError(f"{folder}: not a readable image tokenizer ({first_line}); {fix}") from None
        return tokenizer

    def _check_like(self, frames: np.ndarray) -> None:
        size, channels = check_frames(frames, f"image tokenizer {self.spec}")
        if (size, channels) != (self.image_size, self.channels):
            raise BadInputError(
                f"image tokenizer {self.spec}: frames are {size}x{size}x{channels}, but it was fitted on "
                f"{self.image_size}x{self.image_size}x{self.channels}; fit it on these frames"
            )

    def _codes_of(self, frames: np.ndarray) -> np.ndarray:
        frames = torch.from_numpy(np.ascontiguousarray(frames))
        return _in_batches(frames, lambda batch: self.model.codes_of(to_pixels(batch))).numpy()


def _to_patches(values: np.ndarray, patch: int) -> np.ndarray:
    """(n, H, W, C) -> (n, (H/P)^2, P*P*C): patches in row-major grid order, (P, P, C) inside."""
    n, size, _, channels = values.shape
    grid = size // patch
    blocks = values.reshape(n, grid, patch, grid, patch, channels).transpose(0, 1, 3, 2, 4, 5)
    return blocks.reshape(n, grid * grid, patch * patch * channels)


def _from_patches(slots: np.ndarray, patch: int, size: int, channels: int) -> np.ndarray:
    grid = size // patch
    blocks = slots.reshape(len(slots), grid, grid, patch, patch, channels).transpose(0, 1, 3, 2, 4, 5)
    return blocks.reshape(len(slots), size, size, channels)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


def _in_batches(inputs: torch.Tensor, apply: Callable[[torch.Tensor], torch.Tensor], size: int = 512) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([apply(inputs[start : start + size]) for start in range(0, len(inputs), size)])


def default_cache_dir() -> Path:
    """Where fitted VQ tokenizers are kept when no ``cache_dir`` is given."""
    root = os.environ.get("ROBOSCALE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "roboscale") / "image_tokenizers"


def cache_key(spec: ImageTokenizerSpec, frames: np.ndarray, seed: int, settings: VQTrainingSettings) -> str:
    """SHA-256 (hex) of everything a fit depends on: frames' bytes and shape, spec, seed,
    training settings and :data:`CODE_VERSION`."""
    digest = hashlib.sha256()
    header = {
        "code_version": CODE_VERSION,
        "spec": str(spec),
        "seed": seed,
        "shape": list(frames.shape),
        "dtype": str(frames.dtype),
        "settings": settings.to_dict(),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update(memoryview(np.ascontiguousarray(frames)).cast("B"))
    return digest.hexdigest()


def fit_image_tokenizer(
    spec: ImageTokenizerSpec | str,
    train_frames: np.ndarray,
    *,
    seed: int = 0,
    cache_dir: Path | None = None,
    heldout_frames: np.ndarray | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    settings: VQTrainingSettings | None = None,
) -> ImageTokenizer:
    """Fit ``spec`` on (n, H, W, C) uint8 ``train_frames``.

    patch: per-channel mean and std. vq: train a VQ-VAE with ``settings`` (default
    :class:`VQTrainingSettings`), or load it from the cache when these frames, spec, seed
    and settings were fitted before (see the module docstring). Reconstruction is measured
    on ``heldout_frames`` when given, else on the training frames (``quality["evaluated_on"]``
    says which). ``progress(step, total, {"loss"})`` is called per VQ training step.
    """
    spec = spec if isinstance(spec, ImageTokenizerSpec) else ImageTokenizerSpec.parse(spec)
    seed = check_seed(seed, "seed")
    image_size, channels = check_frames(train_frames, f"image tokenizer {spec}: training frames")
    spec.check_image(image_size)
    if heldout_frames is not None and check_frames(heldout_frames, "held-out frames") != (image_size, channels):
        raise BadInputError(
            f"image tokenizer {spec}: held-out frames are {heldout_frames.shape[1:]}, training frames "
            f"{train_frames.shape[1:]}; give frames of one size"
        )
    settings = settings or VQTrainingSettings()
    if spec.kind == "patch":
        tokenizer = _fit_patches(spec, train_frames)
    else:
        tokenizer = _fit_or_load_vq(spec, train_frames, seed, settings, cache_dir, progress)
    evaluated = train_frames if heldout_frames is None else heldout_frames
    tokenizer.quality = {
        **tokenizer.measure(evaluated),
        "evaluated_on": "train" if heldout_frames is None else "heldout",
    }
    return tokenizer


def _fit_patches(spec: ImageTokenizerSpec, frames: np.ndarray) -> ImageTokenizer:
    values = np.arange(256) / 255.0
    mean, std = np.empty(frames.shape[3]), np.empty(frames.shape[3])
    for channel in range(frames.shape[3]):
        # exact moments from the histogram of the 256 pixel values (no float copy of the frames)
        shares = np.bincount(frames[..., channel].ravel(), minlength=256) / frames[..., channel].size
        mean[channel] = shares @ values
        std[channel] = np.sqrt(shares @ (values - mean[channel]) ** 2)
    std = np.maximum(std, 1 / 255)  # a constant channel still round-trips
    return ImageTokenizer(spec, frames.shape[1], frames.shape[3], mean=mean, std=std)


def _fit_or_load_vq(
    spec: ImageTokenizerSpec,
    frames: np.ndarray,
    seed: int,
    settings: VQTrainingSettings,
    cache_dir: Path | None,
    progress: Callable[[int, int, dict], None] | None,
) -> ImageTokenizer:
    key = cache_key(spec, frames, seed, settings)
    folder = Path(cache_dir or default_cache_dir()) / key
    if (folder / SETTINGS_FILE).exists():
        try:
            cached = ImageTokenizer.load(folder)
            cached.from_cache = True
            return cached
        except BadInputError:
            shutil.rmtree(folder, ignore_errors=True)  # a damaged entry: train again
    model, info = train_vqvae(frames, spec.tokens, spec.codes, settings, seed, progress)
    training = {"seed": seed, "settings": settings.to_dict(), "train_frames": len(frames), **info}
    tokenizer = ImageTokenizer(spec, frames.shape[1], frames.shape[3], model=model, training=training, cache_key=key)
    _store(tokenizer, folder)
    return tokenizer


def _store(tokenizer: ImageTokenizer, folder: Path) -> None:
    """Save into a temporary folder beside ``folder``, then rename it into place (a
    concurrent fit that got there first wins; its result is the same)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        os.chmod(staging, file_mode() | (file_mode() & 0o444) >> 2)  # as mkdir would (mkdtemp gives 0700)
        tokenizer.save(staging)
        os.rename(staging, folder)
    except OSError:
        if not (folder / SETTINGS_FILE).exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
