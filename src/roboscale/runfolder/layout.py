"""The layout of a training run folder (the ``--out`` of ``roboscale train``).

A run folder::

    config.json                 the TrainConfig, frozen when the run starts
    tokenizers.json             the fitted state and action tokenizers
    image_tokenizer/            the fitted image tokenizer (image observations only)
    record.json                 the run record, rewritten at every evaluation point
    checkpoint/model.safetensors       weights (one model's slice of a stack)
    checkpoint/optimizer.safetensors   AdamW moments and step counts
    checkpoint/state.json       step, data-sampler state, learning curve so far
    eval/                       evaluation results (``roboscale eval``)

Training writes it (:mod:`roboscale.train`), evaluation reads it
(:mod:`roboscale.evaluate`); both take the names from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.json"
TOKENIZERS = "tokenizers.json"
IMAGE_TOKENIZER = "image_tokenizer"
RECORD = "record.json"
CHECKPOINT = "checkpoint"
EVAL = "eval"
MODEL_WEIGHTS = "model.safetensors"
OPTIMIZER_STATE = "optimizer.safetensors"
CHECKPOINT_STATE = "state.json"
CHECKPOINT_FILES = (MODEL_WEIGHTS, OPTIMIZER_STATE, CHECKPOINT_STATE)


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder's files (nothing is read or created); build with :meth:`of`."""

    root: Path
    config: Path
    tokenizers: Path
    record: Path
    checkpoint: Path
    """The checkpoint folder."""
    checkpoint_state: Path
    evaluations: Path
    """The folder of evaluation results."""

    @classmethod
    def of(cls, root: str | Path) -> RunLayout:
        root = Path(root)
        checkpoint = root / CHECKPOINT
        return cls(
            root=root,
            config=root / CONFIG,
            tokenizers=root / TOKENIZERS,
            record=root / RECORD,
            checkpoint=checkpoint,
            checkpoint_state=checkpoint / CHECKPOINT_STATE,
            evaluations=root / EVAL,
        )
