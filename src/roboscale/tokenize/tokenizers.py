"""Tokenizers: vectors (states, actions) to the slots a sequence model reads and predicts.

A tokenizer turns each frame's vector of ``dims`` values into ``tokens`` slots of
``group`` values each (dims split into contiguous groups, the last padded):

- ``uniform:B`` (RT-1/RT-2): each dimension binned into B equal bins over its
  observed range (min..max from ``meta/stats.json``); a slot holds bin indices.
- ``quantile:B``: B bins holding equal shares of the training data per dimension
  (edges from the data itself: ``stats.json`` keeps only five quantiles).
- ``continuous``: values normalised by mean and std; the model embeds each slot
  linearly (one token per observation by default, the analogue of Pearce et al.'s
  BC-CNN) and regresses them.

``tokens`` (tokens per observation) is the knob Pearce et al. (2024) found to move
the compute-optimal allocation: one token per dimension, or dimensions grouped.
Spec strings: ``uniform:256``, ``quantile:64``, ``continuous``, optionally with
``@K`` for K tokens per vector (``uniform:256@4``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from roboscale.errors import BadInputError

KINDS = ("uniform", "quantile", "continuous")


@dataclass(frozen=True)
class TokenizerSpec:
    """A parsed tokenizer spec: kind, bins (discrete kinds) and tokens per vector (None: the kind's default)."""

    kind: str
    bins: int = 0
    tokens: int | None = None

    @classmethod
    def parse(cls, text: str) -> TokenizerSpec:
        raw = text.strip().lower()
        body, _, tokens_text = raw.partition("@")
        kind, _, bins_text = body.partition(":")
        if kind not in KINDS:
            raise BadInputError(
                f"tokenizer {text!r}: unknown kind {kind!r}; use uniform:BINS, quantile:BINS or continuous, "
                "optionally @TOKENS (e.g. uniform:256@4)"
            )
        bins = 0
        if kind != "continuous":
            try:
                bins = int(bins_text or 256)
            except ValueError:
                raise BadInputError(f"tokenizer {text!r}: bins {bins_text!r} is not an integer") from None
            if not 2 <= bins <= 65535:
                raise BadInputError(f"tokenizer {text!r}: bins must be between 2 and 65535")
        elif bins_text:
            raise BadInputError(f"tokenizer {text!r}: continuous takes no bin count")
        tokens = None
        if tokens_text:
            try:
                tokens = int(tokens_text)
            except ValueError:
                raise BadInputError(f"tokenizer {text!r}: tokens {tokens_text!r} is not an integer") from None
            if tokens < 1:
                raise BadInputError(f"tokenizer {text!r}: tokens per vector must be >= 1")
        return cls(kind, bins, tokens)

    def __str__(self) -> str:
        text = self.kind if self.kind == "continuous" else f"{self.kind}:{self.bins}"
        return text if self.tokens is None else f"{text}@{self.tokens}"


@dataclass
class Tokenizer:
    """A fitted tokenizer for one stream of vectors (states or actions).

    ``encode`` maps (frames, dims) values to (frames, tokens, group) slots: int64 bin
    indices (pad value ``bins``) for discrete kinds, float32 normalised values (pad
    0) for continuous. ``decode`` maps slots back to (frames, dims) values.
    """

    kind: str
    dims: int
    tokens: int
    bins: int = 0
    edges: np.ndarray | None = field(default=None, repr=False)
    """Discrete: (dims, bins + 1) bin edges per dimension."""
    mean: np.ndarray | None = field(default=None, repr=False)
    std: np.ndarray | None = field(default=None, repr=False)

    @property
    def discrete(self) -> bool:
        return self.kind != "continuous"

    @property
    def group(self) -> int:
        """Values per slot (the last slot is zero- or pad-filled)."""
        return math.ceil(self.dims / self.tokens)

    @property
    def vocab_size(self) -> int:
        """Distinct slot values per dimension (0 for continuous)."""
        return self.bins

    @property
    def pad_id(self) -> int:
        return self.bins

    def padding_mask(self) -> np.ndarray:
        """(tokens, group) True where a slot position holds a real dimension."""
        return (np.arange(self.tokens * self.group) < self.dims).reshape(self.tokens, self.group)

    def encode(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64).reshape(len(values), self.dims)
        width = self.tokens * self.group
        if self.discrete:
            ids = np.empty(x.shape, dtype=np.int64)
            for d in range(self.dims):
                # Interior edges only: values outside the fitted range land in the end bins.
                ids[:, d] = np.searchsorted(self.edges[d, 1:-1], x[:, d], side="right")
            out = np.full((len(x), width), self.pad_id, dtype=np.int64)
            out[:, : self.dims] = ids
        else:
            out = np.zeros((len(x), width), dtype=np.float32)
            out[:, : self.dims] = (x - self.mean) / self.std
        return out.reshape(len(x), self.tokens, self.group)

    def decode(self, slots: np.ndarray) -> np.ndarray:
        flat = np.asarray(slots).reshape(len(slots), self.tokens * self.group)[:, : self.dims]
        if self.discrete:
            ids = np.clip(flat.astype(np.int64), 0, self.bins - 1)
            centres = 0.5 * (self.edges[:, :-1] + self.edges[:, 1:])  # (dims, bins)
            return centres[np.arange(self.dims)[None, :], ids]
        return flat.astype(np.float64) * self.std + self.mean

    def round_trip_error(self, values: np.ndarray) -> dict[str, float]:
        """How much encode -> decode loses: the largest absolute error, and the RMS and largest
        error relative to each (non-constant) dimension's standard deviation."""
        x = np.asarray(values, dtype=np.float64).reshape(len(values), self.dims)
        error = self.decode(self.encode(x)) - x
        spread = x.std(axis=0)
        varying = spread > 1e-9  # constant dimensions carry no information to lose
        relative = np.abs(error[:, varying]) / spread[varying] if varying.any() else np.zeros((len(x), 1))
        return {
            "max_abs": float(np.abs(error).max()),
            "rms_relative": float(np.sqrt(np.mean(relative**2))),
            "max_relative": float(relative.max()),
        }

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "dims": self.dims, "tokens": self.tokens, "bins": self.bins}
        for name in ("edges", "mean", "std"):
            value = getattr(self, name)
            out[name] = None if value is None else value.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Tokenizer:
        arrays = {name: None if data.get(name) is None else np.asarray(data[name]) for name in ("edges", "mean", "std")}
        return cls(
            kind=data["kind"], dims=int(data["dims"]), tokens=int(data["tokens"]), bins=int(data["bins"]), **arrays
        )


QUANTILE_SAMPLE = 200_000
"""Frames (at most) that quantile bin edges are fitted on."""


def even_subsample(values: np.ndarray, count: int = QUANTILE_SAMPLE) -> np.ndarray:
    """A fixed, evenly spaced subsample of at most ``count`` rows (deterministic, no RNG)."""
    if len(values) <= count:
        return values
    return values[np.linspace(0, len(values) - 1, count).astype(np.int64)]


def action_spec_for(state_spec: TokenizerSpec, action_spec: TokenizerSpec | None) -> TokenizerSpec:
    """Actions use the state tokenizer's kind and bins unless told otherwise (one
    token per action dimension, or one token for continuous actions)."""
    if action_spec is not None:
        return action_spec
    return TokenizerSpec(state_spec.kind, state_spec.bins, None)


def fit_tokenizer(spec: TokenizerSpec, stats: dict[str, np.ndarray], samples: np.ndarray | None = None) -> Tokenizer:
    """Fit ``spec`` for a stream with per-dimension ``stats`` (min, max, mean, std
    from ``meta/stats.json``); quantile binning also needs training ``samples``
    (frames, dims), of which at most :data:`QUANTILE_SAMPLE` evenly spaced ones are used."""
    minimum = np.asarray(stats["min"], dtype=np.float64).reshape(-1)
    maximum = np.asarray(stats["max"], dtype=np.float64).reshape(-1)
    dims = minimum.size
    default_tokens = 1 if spec.kind == "continuous" else dims
    tokens = spec.tokens if spec.tokens is not None else default_tokens
    if tokens > dims:
        raise BadInputError(f"tokenizer {spec}: {tokens} tokens for a {dims}-dimensional vector; use at most {dims}")
    if spec.kind == "continuous":
        mean = np.asarray(stats["mean"], dtype=np.float64).reshape(-1)
        std = np.asarray(stats["std"], dtype=np.float64).reshape(-1)
        return Tokenizer("continuous", dims, tokens, mean=mean, std=np.where(std > 1e-8, std, 1.0))
    if spec.kind == "uniform":
        # A constant dimension gets a tiny span, so its one value decodes (almost) exactly.
        span = np.maximum(maximum - minimum, 1e-6)
        fractions = np.linspace(0.0, 1.0, spec.bins + 1)
        edges = minimum[:, None] + span[:, None] * fractions[None, :]
    else:
        if samples is None or len(samples) == 0:
            raise BadInputError(f"tokenizer {spec}: quantile binning needs training samples")
        samples = even_subsample(samples)
        x = np.asarray(samples, dtype=np.float64).reshape(len(samples), dims)
        edges = np.quantile(x, np.linspace(0.0, 1.0, spec.bins + 1), axis=0).T
        edges[:, 0], edges[:, -1] = minimum, maximum
        # Ties (discrete-valued dimensions) leave empty bins; keep edges non-decreasing.
        edges = np.maximum.accumulate(edges, axis=1)
    return Tokenizer(spec.kind, dims, tokens, bins=spec.bins, edges=edges)
