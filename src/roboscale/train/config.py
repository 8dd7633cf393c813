"""What a training run is: one frozen configuration, validated before any work starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from roboscale.errors import BadInputError, check_seed
from roboscale.files import available_cpus
from roboscale.models import TASKS, WM_TARGETS, check_parametrization, check_width, ladder_shape
from roboscale.tokenize import TokenizerSpec

LENGTH_OPTIONS = ("steps", "tokens", "flops", "tokens_per_param")
FLOPS_CONVENTIONS = ("exact", "total", "non_embedding")
OBSERVATIONS = ("state", "image", "image+state")
IMAGE_TOKENIZER_KINDS = ("patch", "vq")
"""Kinds of image tokenizer spec (roboscale.tokenize.image), told apart from a state spec without importing it."""
OMITTED_AT_DEFAULT = {
    "wm_target": "absolute",
    "parametrization": "standard",
    "base_width": 32,
    "tokenizer_data": "",
    "observation": "state",
    "image_tokenizer": "",
    "camera": "",
}
"""Settings added after run ids existed: left out of :meth:`TrainConfig.to_dict` (so out of
run ids, config.json and stack keys) at their default, so earlier runs keep their ids."""


@dataclass(frozen=True)
class TrainConfig:
    """A training run; exactly one of ``steps``, ``tokens``, ``flops``,
    ``tokens_per_param`` sets its length."""

    data: str
    """Dataset folder (LeRobot v3, e.g. from roboscale data generate)."""
    task: str = "bc"
    """bc: predict actions; wm: predict the next observation."""
    tokenizer: str = "uniform:256"
    """State tokenizer: uniform:BINS, quantile:BINS or continuous; @K for K tokens per observation."""
    action_tokenizer: str | None = None
    """Action tokenizer spec (default: the state tokenizer's kind and bins, one token per dimension)."""
    d_model: int = 64
    """Width: dimensions of the residual stream (divisible into the heads)."""
    n_layer: int | None = None
    """Depth in transformer blocks (default: the ladder rule, one layer per 32 dimensions of width)."""
    n_head: int | None = None
    """Attention heads (default: the ladder rule, 32-dimensional heads)."""
    context_steps: int = 8
    """Timesteps per training sequence."""
    wm_target: str = "absolute"
    """What a world model predicts of each next state: absolute, or delta (its change from the step before)."""
    batch_size: int = 64
    """Sequences per optimiser step."""
    steps: int | None = None
    """Run length in optimiser steps (1000 when no run length is given on the command line)."""
    tokens: float | None = None
    """Run length in training tokens (sequence positions) to process."""
    flops: float | None = None
    """Run length as a budget of training FLOPs (counted as --flops-convention says), e.g. 1e12."""
    tokens_per_param: float | None = None
    """Run length in tokens per parameter: tokens = this ratio x parameters (e.g. 20, Chinchilla's)."""
    lr: float | None = None
    """Peak AdamW learning rate (default: 3e-3 x (64 / d_model)^0.5, at most 1e-2)."""
    warmup_fraction: float = 0.05
    """Fraction of the run's steps spent warming the learning rate up linearly from 0, in [0, 1)."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at this fraction of the peak, at the last step."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay coefficient (weight matrices only; 0 turns it off)."""
    grad_clip: float = 1.0
    """Largest global L2 norm of the gradient; a larger gradient is scaled down to it."""
    seed: int = 0
    """Seed of initialisation and data order, from 0 to 2^63 - 1."""
    eval_points: int = 16
    """Log-spaced validation evaluations along the run (plus the final one)."""
    eval_windows: int = 1024
    """Validation windows per evaluation (a fixed, evenly spread set; see bench/noise_budget.py)."""
    # 1024: on the demo's data (120 validation episodes) the part of the loss's standard error
    # that differs between runs is then at its floor, 0.2-0.3x the seed noise; more windows per
    # episode do not lower it, more validation episodes do (bench/noise_budget.py).
    flops_convention: str = "exact"
    """How FLOPs are counted for the budget: exact, total (6N) or non_embedding (6N)."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    threads: int | None = None
    """CPU threads (default: all this process may use)."""
    checkpoint_seconds: float = 60.0
    """Seconds between checkpoints at most (saved at evaluation points, and always at the end)."""
    parametrization: str = "standard"
    """standard, or mup (maximal-update parametrisation: the best learning rate transfers across widths)."""
    base_width: int = 32
    """muP's reference width (d_model at which muP's init and learning rates are standard's)."""
    tokenizer_data: str = ""
    """Dataset to fit the tokenizers on instead of --data: runs on other data levels then compare."""
    observation: str = "state"
    """What the model sees each step: state, image (camera frames as image tokens), or image+state."""
    image_tokenizer: str = ""
    """Image tokenizer for image observations: patch:P (P x P patches) or vq:K@T (K codes, T tokens per frame)."""
    camera: str = ""
    """Camera whose frames the model sees (default: the dataset's only camera)."""

    def validate(self) -> None:
        """Raise BadInputError for a config that cannot run, before any work."""
        if self.task not in TASKS:
            raise BadInputError(f"task {self.task!r}: choose bc or wm")
        self._check_state_tokenizer()
        self.action_spec()
        if self.wm_target not in WM_TARGETS:
            raise BadInputError(f"wm_target {self.wm_target!r}: choose {' or '.join(WM_TARGETS)}")
        self._check_observation()
        given = [name for name in LENGTH_OPTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            names = ", ".join(f"--{n.replace('_', '-')}" for n in LENGTH_OPTIONS)
            raise BadInputError(f"give exactly one run length of {names} (got {len(given) or 'none'})")
        value = getattr(self, given[0])
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise BadInputError(f"--{given[0].replace('_', '-')} {value}: must be a positive number")
        for name in ("context_steps", "batch_size", "eval_points", "eval_windows"):
            if getattr(self, name) < 1:
                raise BadInputError(f"{name}={getattr(self, name)}: must be >= 1")
        check_width(self.d_model, self.n_layer, self.n_head)
        check_parametrization(self.parametrization, self.base_width)
        check_seed(self.seed)
        if self.lr is not None and not self.lr > 0:
            raise BadInputError(f"lr={self.lr}: must be > 0")
        if not 0 <= self.warmup_fraction < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise BadInputError("warmup_fraction must be in [0, 1) and min_lr_ratio in [0, 1]")
        if self.flops_convention not in FLOPS_CONVENTIONS:
            raise BadInputError(f"flops_convention {self.flops_convention!r}: choose {', '.join(FLOPS_CONVENTIONS)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise BadInputError(f"device {self.device!r}: choose auto, cpu or cuda")
        if self.threads is not None and self.threads < 1:
            raise BadInputError(f"threads={self.threads}: must be >= 1")

    def _check_state_tokenizer(self) -> None:
        try:
            self.state_spec()
        except BadInputError:
            if self.tokenizer.partition(":")[0] in IMAGE_TOKENIZER_KINDS:
                raise BadInputError(
                    f"--tokenizer {self.tokenizer} is an image tokenizer: give it as --image-tokenizer "
                    f"with --observation image (--tokenizer is the state's, e.g. uniform:256)"
                ) from None
            raise

    def _check_observation(self) -> None:
        """The observation, image tokenizer and camera settings agree (the dataset is checked
        when it is opened: :func:`roboscale.train.trainer.prepare_data`)."""
        if self.observation not in OBSERVATIONS:
            raise BadInputError(f"observation {self.observation!r}: choose {', '.join(OBSERVATIONS)}")
        if not self.sees_images:
            for name in ("image_tokenizer", "camera"):
                if getattr(self, name):
                    raise BadInputError(
                        f"--{name.replace('_', '-')} {getattr(self, name)} is for image observations: "
                        f"give --observation image or image+state, or drop it"
                    )
            return
        if not self.image_tokenizer:
            raise BadInputError(f"--observation {self.observation} needs --image-tokenizer, e.g. vq:64@16 or patch:8")
        self.image_spec()
        if self.wm_target != "absolute":
            raise BadInputError(
                f"--wm-target {self.wm_target}: a world model on images predicts the next frame's tokens; "
                "use --wm-target absolute"
            )

    @property
    def sees_images(self) -> bool:
        """Whether the model sees camera frames (observation image or image+state)."""
        return self.observation in ("image", "image+state")

    @property
    def sees_state(self) -> bool:
        """Whether the model sees the state vector (observation state or image+state)."""
        return self.observation in ("state", "image+state")

    def image_spec(self):
        """The parsed image tokenizer (a roboscale.tokenize.image.ImageTokenizerSpec), None without images."""
        return _image_tokenizers().ImageTokenizerSpec.parse(self.image_tokenizer) if self.sees_images else None

    def state_spec(self) -> TokenizerSpec:
        return TokenizerSpec.parse(self.tokenizer)

    def action_spec(self) -> TokenizerSpec | None:
        return None if self.action_tokenizer is None else TokenizerSpec.parse(self.action_tokenizer)

    def shape(self) -> tuple[int, int]:
        """(n_layer, n_head), the ladder rule filling in what was not given."""
        rule_layers, rule_heads = ladder_shape(self.d_model)
        return (self.n_layer or rule_layers, self.n_head or rule_heads)

    def peak_lr(self) -> float:
        """The peak learning rate (muP: of the base width; hidden matrices get it x base_width / d_model)."""
        if self.lr is not None:
            return self.lr
        return default_lr(self.base_width if self.parametrization == "mup" else self.d_model)

    def thread_count(self) -> int:
        return self.threads if self.threads is not None else available_cpus()

    def to_dict(self) -> dict:
        """Every setting, but those added after run ids existed only when they differ from
        their defaults, so that a default config keeps its run id (a hash of this dict)."""
        out = asdict(self)
        for name, default in OMITTED_AT_DEFAULT.items():
            if out[name] == default:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInputError(f"unknown training settings {', '.join(unknown)}")
        return cls(**data)


def _image_tokenizers():
    """roboscale.tokenize.image, imported when first needed (it may load torch)."""
    from roboscale.tokenize import image

    return image


def default_lr(d_model: int) -> float:
    """Peak AdamW learning rate for a width: 3e-3 at d_model 64, scaled as
    (64 / d_model)^0.5 (between muP's 1/width for hidden matrices and a constant),
    capped at 1e-2. Chosen from a sweep on pointmass and Meta-World behaviour
    cloning (see bench/lr_sweep.py)."""
    return min(1e-2, 3e-3 * (64.0 / d_model) ** 0.5)


def config_diff(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two config dicts."""
    keys = sorted(set(old) | set(new))
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


def stack_key(config: TrainConfig) -> tuple:
    """What runs trained together must share: every setting but the seed (same shape,
    data, budget and schedule). Two configs stack exactly when their keys are equal;
    the key is hashable, to group runs by it."""
    return tuple(sorted((name, value) for name, value in config.to_dict().items() if name != "seed"))


def run_name(config: TrainConfig) -> str:
    """A predictable folder name from the settings that define a run."""
    n_layer, _ = config.shape()
    length = next(
        f"{name.replace('_', '')}{getattr(config, name):g}"
        for name in LENGTH_OPTIONS
        if getattr(config, name) is not None
    )
    tokenizer = config.tokenizer.replace(":", "").replace("@", "x")
    if config.sees_images:  # the image tokenizer names the run; the state's only when it is seen
        image = config.image_tokenizer.replace(":", "").replace("@", "x")
        tokenizer = image if config.observation == "image" else f"{image}+{tokenizer}"
    return f"{config.task}-{tokenizer}-d{config.d_model}L{n_layer}-{length}-s{config.seed}"
