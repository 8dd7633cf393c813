"""A small VQ-VAE (van den Oord et al. 2017) that turns a frame into T discrete codes.

The encoder halves the image ``log2(H / sqrt(T))`` times with 4x4 stride-2 convolutions
(a 3x3 convolution when no halving is needed), mixes once more at the token grid and
projects to ``code_dim``; each of the sqrt(T) x sqrt(T) vectors is replaced by its
nearest codebook entry (K entries), and a mirrored decoder (transposed convolutions)
draws the frame back. Training follows Sonnet's ``VectorQuantizerEMA`` and IRIS:

- straight-through gradients from the decoder to the encoder;
- loss = pixel MSE (pixels in [0, 1]) + ``commitment`` x ||z - sg(q)||^2;
- encoder vectors and codes have unit length (ViT-VQGAN's l2-normalised codes): the
  nearest code is the most similar in direction, and the encoder cannot shrink its
  output until every vector looks alike to the codebook (which happened without it at
  K = 256: all frames decoded to the empty floor);
- the codebook is not trained by gradient but is an exponential moving average of the
  encoder vectors assigned to each code (counts and sums kept in buffers, the code =
  sum / Laplace-smoothed count, normalised), initialised from the first batch's encodings;
- dead-code restarts: after each EMA update, codes whose average count fell below
  ``dead_code_threshold`` vectors per batch take an encoding of the batch, drawn in
  proportion to its squared distance from its code (count and sum reset together), for
  the first ``restart_until`` of the steps.

FLOPs (:func:`training_flops_per_step`) follow ``torch.utils.flop_counter``'s
convention: 2 per multiply-add of every convolution and matrix product (forward, and
backward for inputs and weights that need gradients); element-wise work (activations,
losses, the EMA update, Adam) is not counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VQTrainingSettings:
    """How a VQ-VAE is trained (part of the cache key: change one, train again)."""

    steps: int = 1000
    """Optimizer steps."""
    batch_size: int = 32
    """Frames per step (sampled with replacement from the training frames)."""
    learning_rate: float = 3e-3
    """Adam's peak rate; cosine decay to a tenth of it over ``steps``."""
    width: int = 32
    """Convolution channels of the encoder and decoder."""
    code_dim: int = 32
    """Length of each codebook vector."""
    commitment: float = 0.25
    """Weight of the commitment loss ||z - sg(q)||^2 (VQ-VAE's beta)."""
    ema_decay: float = 0.9
    """Decay of the codebook's moving averages per step."""
    dead_code_threshold: float = 0.5
    """A code whose moving-average count (vectors per batch) falls below this restarts."""
    restart_until: float = 0.8
    """Fraction of the steps during which dead codes restart (then the codebook settles)."""

    def to_dict(self) -> dict:
        return asdict(self)


def halvings(image_size: int, tokens: int) -> int:
    """How many stride-2 convolutions take an ``image_size`` frame to sqrt(tokens) per side."""
    return int(math.log2(image_size // math.isqrt(tokens)))


class VQVAE(nn.Module):
    """Encoder, codebook (K x code_dim buffers) and decoder for (n, C, H, W) frames in [0, 1]."""

    def __init__(self, channels: int, image_size: int, tokens: int, codes: int, settings: VQTrainingSettings):
        super().__init__()
        self.side = math.isqrt(tokens)
        self.codes, self.code_dim = codes, settings.code_dim
        steps, width = halvings(image_size, tokens), settings.width
        self.encoder = nn.Sequential(*_encoder_layers(channels, width, steps), nn.Conv2d(width, self.code_dim, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(self.code_dim, width, 3, padding=1), nn.ReLU(), *_decoder_layers(channels, width, steps)
        )
        self.register_buffer("codebook", torch.zeros(codes, self.code_dim))
        self.register_buffer("ema_count", torch.ones(codes))
        self.register_buffer("ema_sum", torch.zeros(codes, self.code_dim))

    def encode_vectors(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) pixels in [0, 1] -> (n * T, code_dim) unit-length encoder vectors (row-major grid)."""
        z = self.encoder(pixels - 0.5)
        return F.normalize(z.permute(0, 2, 3, 1).reshape(-1, self.code_dim), dim=1)

    def nearest_codes(self, vectors: torch.Tensor) -> torch.Tensor:
        """(m, code_dim) -> (m,) int64 index of the nearest codebook entry (squared distance)."""
        distances = (
            vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ self.codebook.t() + self.codebook.pow(2).sum(1)[None]
        )
        return distances.argmin(1)

    def decode_vectors(self, vectors: torch.Tensor) -> torch.Tensor:
        """(n * T, code_dim) -> (n, C, H, W) pixels (unclamped, [0, 1] scale)."""
        grid = vectors.reshape(-1, self.side, self.side, self.code_dim).permute(0, 3, 1, 2)
        return self.decoder(grid) + 0.5

    def codes_of(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) -> (n, T) int64 codes."""
        return self.nearest_codes(self.encode_vectors(pixels)).reshape(len(pixels), -1)

    def pixels_of(self, codes: torch.Tensor) -> torch.Tensor:
        """(n, T) int64 codes -> (n, C, H, W) pixels clamped to [0, 1]."""
        return self.decode_vectors(self.codebook[codes.reshape(-1)]).clamp(0, 1)


def _encoder_layers(channels: int, width: int, steps: int) -> list[nn.Module]:
    if steps == 0:
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
    else:
        layers = []
        for step in range(steps):
            layers += [nn.Conv2d(channels if step == 0 else width, width, 4, stride=2, padding=1), nn.ReLU()]
    return layers + [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]


def _decoder_layers(channels: int, width: int, steps: int) -> list[nn.Module]:
    if steps == 0:
        return [nn.Conv2d(width, channels, 3, padding=1)]
    layers: list[nn.Module] = []
    for step in range(steps):
        last = step == steps - 1
        layers.append(nn.ConvTranspose2d(width, channels if last else width, 4, stride=2, padding=1))
        if not last:
            layers.append(nn.ReLU())
    return layers


def _convolution_flops(model: VQVAE, image_size: int) -> tuple[int, int]:
    """(forward FLOPs of every convolution for one frame, forward FLOPs of the first one)."""
    size, total, first = image_size, 0, None
    for layer in [*model.encoder, *model.decoder]:
        if not isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            continue
        weights = layer.weight.numel()
        if isinstance(layer, nn.ConvTranspose2d):
            flops = 2 * weights * size * size  # one kernel per input position
            size *= layer.stride[0]
        else:
            size //= layer.stride[0]
            flops = 2 * weights * size * size  # one kernel per output position
        total += flops
        first = flops if first is None else first
    return total, first


def training_flops_per_step(model: VQVAE, image_size: int, batch_size: int) -> int:
    """FLOPs of one training step (flop_counter's convention, see the module docstring).

    Convolutions: forward, then backward for weights and inputs (3x forward), except
    that the frames themselves need no gradient (the first layer: 2x). The codebook
    search is one (n T, code_dim) x (code_dim, K) product, forward only.
    """
    convolutions, first = _convolution_flops(model, image_size)
    per_frame = 3 * convolutions - first
    search = 2 * model.side**2 * model.code_dim * model.codes
    return batch_size * (per_frame + search)


def train_vqvae(
    frames: np.ndarray,
    tokens: int,
    codes: int,
    settings: VQTrainingSettings,
    seed: int,
    progress: Callable[[int, int, dict], None] | None = None,
) -> tuple[VQVAE, dict]:
    """Train a VQ-VAE on (n, H, W, C) uint8 ``frames``; return it (in eval mode) and
    ``{"train_seconds", "train_flops", "train_steps", "final_loss"}``.

    Deterministic for a seed: one torch thread, a private generator for batches and
    restarts, the global RNG forked (left as it was) around initialisation.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same sums in the same order on every machine
    started = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = VQVAE(frames.shape[3], frames.shape[1], tokens, codes, settings)
        final_loss = _optimise(model, torch.from_numpy(np.ascontiguousarray(frames)), settings, seed, progress)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    info = {
        "train_seconds": time.perf_counter() - started,
        "train_flops": settings.steps * training_flops_per_step(model, frames.shape[1], settings.batch_size),
        "train_steps": settings.steps,
        "final_loss": final_loss,
    }
    return model, info


def _optimise(
    model: VQVAE,
    frames: torch.Tensor,
    settings: VQTrainingSettings,
    seed: int,
    progress: Callable[[int, int, dict], None] | None,
) -> float:
    """Run the training loop on uint8 (n, H, W, C) ``frames``; return the last step's loss."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.1 + 0.45 * (1 + math.cos(math.pi * step / settings.steps))
    )
    loss = torch.zeros(())
    for step in range(settings.steps):
        rows = torch.randint(len(frames), (settings.batch_size,), generator=generator)
        loss = training_step(model, to_pixels(frames[rows]), settings, generator, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if progress is not None:
            progress(step + 1, settings.steps, {"loss": float(loss.detach())})
    return float(loss.detach())


def to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (n, H, W, C) -> float32 (n, C, H, W) in [0, 1]."""
    return frames.permute(0, 3, 1, 2).float() / 255.0


def training_step(
    model: VQVAE, pixels: torch.Tensor, settings: VQTrainingSettings, generator: torch.Generator, step: int
) -> torch.Tensor:
    """The loss of one batch (to backpropagate); updates the codebook's moving averages
    (and restarts dead codes) as a side effect."""
    vectors = model.encode_vectors(pixels)
    if step == 0:  # data-dependent start: codes are encodings of the first batch
        everything = torch.ones(model.codes, dtype=torch.bool)
        _restart(model, everything, vectors.detach(), torch.ones(len(vectors)), generator)
    indices = model.nearest_codes(vectors.detach())
    quantised = model.codebook[indices]
    straight_through = vectors + (quantised - vectors).detach()
    reconstruction = F.mse_loss(model.decode_vectors(straight_through), pixels)
    commitment = F.mse_loss(vectors, quantised)
    with torch.no_grad():
        _update_codebook(model, vectors.detach(), indices, settings.ema_decay)
        if step < settings.restart_until * settings.steps:
            misfit = (vectors - quantised).pow(2).sum(1)
            _restart(model, model.ema_count < settings.dead_code_threshold, vectors.detach(), misfit, generator)
    return reconstruction + settings.commitment * commitment


def _update_codebook(model: VQVAE, vectors: torch.Tensor, indices: torch.Tensor, decay: float) -> None:
    counts = torch.bincount(indices, minlength=model.codes).to(vectors.dtype)
    sums = torch.zeros_like(model.ema_sum).index_add_(0, indices, vectors)
    model.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
    model.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
    total = model.ema_count.sum()
    smoothed = (model.ema_count + 1e-5) / (total + model.codes * 1e-5) * total  # Laplace smoothing
    model.codebook.copy_(F.normalize(model.ema_sum / smoothed[:, None], dim=1))


def _restart(
    model: VQVAE, dead: torch.Tensor, vectors: torch.Tensor, misfit: torch.Tensor, generator: torch.Generator
) -> None:
    """Give each ``dead`` code an encoding of the batch, drawn with probability in proportion
    to ``misfit`` (its squared distance to its code, as k-means++ seeds: on frames that are
    mostly floor, uniform draws would mostly restart codes as more floor), with count 1 and
    a matching sum."""
    count = int(dead.sum())
    if count == 0:
        return
    weights = misfit if float(misfit.sum()) > 0 else torch.ones_like(misfit)
    picks = vectors[torch.multinomial(weights, count, replacement=True, generator=generator)]
    model.codebook[dead] = picks
    model.ema_sum[dead] = picks
    model.ema_count[dead] = 1.0
