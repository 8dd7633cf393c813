"""Training data: a dataset's frames tokenized once, and windows of timesteps cut from them.

All frames are tokenized up front into arrays (slots per frame), so a batch is a
single fancy-indexing gather: window starts x ``context_steps`` frame indices.
Windows never cross an episode: frames past the episode's end are marked invalid
(right padding, which causal attention never lets earlier positions see) and
carry no loss.

Camera frames (image observations) are tokenized once too, by a fitted image
tokenizer (:mod:`roboscale.tokenize.image`): vq codes as int64, patches as float16
(half the memory of float32; a batch converts its windows back to float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from roboscale.data.dataset import Dataset
from roboscale.errors import BadInputError
from roboscale.tokenize import Tokenizer, TokenizerSpec, even_subsample, fit_tokenizer

if TYPE_CHECKING:
    from roboscale.tokenize.image import ImageTokenizer

ENCODE_CHUNK = 1024
"""Frames encoded by the image tokenizer at a time (bounds the float32 patches in memory)."""


@dataclass
class TokenizedData:
    """Every frame of a dataset as model slots, plus where each episode ends."""

    states: np.ndarray
    """(frames, state_tokens, state_group): int64 bins or float32 values."""
    actions: np.ndarray
    tasks: np.ndarray
    """(frames,) task index."""
    episode_end: np.ndarray
    """(frames,) index one past the last frame of the frame's episode."""
    split_starts: dict[str, np.ndarray]
    """Split name -> frames where a window may start."""
    split_frames: dict[str, int]
    """Split name -> frames in the split."""
    round_trip: dict[str, dict[str, float]]
    """Tokenizer encode -> decode error on training frames, per stream (see Tokenizer.round_trip_error)."""
    state_tokenizer: Tokenizer
    action_tokenizer: Tokenizer
    n_tasks: int
    images: np.ndarray | None = None
    """(frames, image_tokens, image_group): int64 vq codes or float16 normalised patches; None without images."""
    image_tokenizer: ImageTokenizer | None = None
    sees_state: bool = True
    """Whether the model sees the state slots (False: observation = image alone)."""
    camera: str = ""
    """The image feature the images come from (``observation.images.<camera>``); "" without images."""

    def scored_splits(self) -> list[str]:
        """Splits a finished run is scored on: every ``validation*`` split and ``heldout_tasks``
        that has windows, in the dataset's order."""
        return [
            name
            for name, starts in self.split_starts.items()
            if (name.startswith("validation") or name == "heldout_tasks") and len(starts)
        ]

    def windows(self, split: str) -> np.ndarray:
        if split not in self.split_starts or len(self.split_starts[split]) == 0:
            raise BadInputError(f"the dataset has no usable {split} windows: it needs a {split} split with episodes")
        return self.split_starts[split]

    def batch(self, starts: np.ndarray, context_steps: int, device: torch.device) -> dict[str, torch.Tensor]:
        """A batch of windows beginning at frame indices ``starts``."""
        index = starts[:, None] + np.arange(context_steps)[None, :]
        valid = index < self.episode_end[starts][:, None]
        index = np.where(valid, index, starts[:, None])  # padding frames: any real frame, masked out
        batch = {
            "states": torch.from_numpy(self.states[index]).to(device),
            "actions": torch.from_numpy(self.actions[index]).to(device),
            "tasks": torch.from_numpy(self.tasks[starts]).to(device),
            "valid": torch.from_numpy(valid).to(device),
            "state_mask": torch.from_numpy(self.state_tokenizer.padding_mask()).to(device),
            "action_mask": torch.from_numpy(self.action_tokenizer.padding_mask()).to(device),
        }
        if not self.sees_state:
            del batch["states"], batch["state_mask"]
        if self.images is not None:
            images = self.images[index]
            images = images.astype(np.float32) if images.dtype == np.float16 else images
            batch["images"] = torch.from_numpy(images).to(device)
            batch["image_mask"] = torch.ones(self.images.shape[1:], dtype=torch.bool, device=device)
        return batch


def tokenize_dataset(
    dataset: Dataset,
    state_spec: TokenizerSpec,
    action_spec: TokenizerSpec,
    task: str,
    *,
    state_tokenizer: Tokenizer | None = None,
    action_tokenizer: Tokenizer | None = None,
    image_tokenizer: ImageTokenizer | None = None,
    camera_frames: np.ndarray | None = None,
    camera: str = "",
    sees_state: bool = True,
) -> TokenizedData:
    """Fit tokenizers (unless given, e.g. from a checkpoint) and tokenize all frames.
    With images: ``camera_frames`` (frames, H, W, C) uint8, every frame of the dataset,
    encoded by the fitted ``image_tokenizer``."""
    frames = dataset.frames(["observation.state", "action", "task_index", "episode_index"])
    states = frames["observation.state"].reshape(dataset.total_frames, -1)
    actions = frames["action"].reshape(dataset.total_frames, -1)
    train_frames = split_mask(dataset, "train")
    if state_tokenizer is None or action_tokenizer is None:
        fitted = _fit_pair(dataset, states[train_frames], actions[train_frames], state_spec, action_spec)
        state_tokenizer = fitted[0] if state_tokenizer is None else state_tokenizer
        action_tokenizer = fitted[1] if action_tokenizer is None else action_tokenizer
    episode_end = np.empty(dataset.total_frames, dtype=np.int64)
    for start, stop in zip(dataset.episodes["dataset_from_index"], dataset.episodes["dataset_to_index"]):
        episode_end[start:stop] = stop
    # A world model needs a next frame inside the window; behaviour cloning any frame.
    minimum_remaining = 2 if task == "wm" else 1
    usable = (episode_end - np.arange(dataset.total_frames)) >= minimum_remaining
    masks = {name: split_mask(dataset, name) for name in dataset.splits}
    return TokenizedData(
        states=state_tokenizer.encode(states),
        actions=action_tokenizer.encode(actions),
        tasks=frames["task_index"].astype(np.int64),
        episode_end=episode_end,
        split_starts={name: np.flatnonzero(mask & usable) for name, mask in masks.items()},
        split_frames={name: int(mask.sum()) for name, mask in masks.items()},
        round_trip={
            "state": state_tokenizer.round_trip_error(even_subsample(states[train_frames], 20_000)),
            "action": action_tokenizer.round_trip_error(even_subsample(actions[train_frames], 20_000)),
        },
        state_tokenizer=state_tokenizer,
        action_tokenizer=action_tokenizer,
        n_tasks=max(len(dataset.tasks), 1),
        images=None if camera_frames is None else encode_frames(image_tokenizer, camera_frames),
        image_tokenizer=image_tokenizer,
        sees_state=sees_state,
        camera=camera,
    )


def encode_frames(tokenizer: ImageTokenizer, frames: np.ndarray) -> np.ndarray:
    """Image tokens of ``frames`` (n, H, W, C) uint8, (n, tokens, group): int64 vq codes, or
    patches stored as float16 (encoded :data:`ENCODE_CHUNK` frames at a time)."""
    chunks = []
    for start in range(0, len(frames), ENCODE_CHUNK):
        encoded = tokenizer.encode(frames[start : start + ENCODE_CHUNK])
        chunks.append(encoded if tokenizer.bins else encoded.astype(np.float16))
    if not chunks:
        return np.zeros((0, tokenizer.tokens, tokenizer.group), np.int64 if tokenizer.bins else np.float16)
    return np.concatenate(chunks)


def fit_tokenizers(
    dataset: Dataset, state_spec: TokenizerSpec, action_spec: TokenizerSpec
) -> tuple[Tokenizer, Tokenizer]:
    """The state and action tokenizers fitted to ``dataset``'s statistics and training frames,
    exactly as :func:`tokenize_dataset` fits them on its own dataset (for ``tokenizer_data``:
    one tokenizer shared by every data level of a study)."""
    frames = dataset.frames(["observation.state", "action"], split="train")
    states = frames["observation.state"].reshape(len(frames["observation.state"]), -1)
    actions = frames["action"].reshape(len(frames["action"]), -1)
    return _fit_pair(dataset, states, actions, state_spec, action_spec)


def _fit_pair(
    dataset: Dataset, states: np.ndarray, actions: np.ndarray, state_spec: TokenizerSpec, action_spec: TokenizerSpec
) -> tuple[Tokenizer, Tokenizer]:
    """Tokenizers from the dataset's statistics and the given training states and actions, (frames, dims)."""
    return (
        fit_tokenizer(state_spec, dataset.stats["observation.state"], states),
        fit_tokenizer(action_spec, dataset.stats["action"], actions),
    )


def split_mask(dataset: Dataset, split: str) -> np.ndarray:
    """(frames,) bool: the frames of ``split``'s episodes (none when the dataset has no such split)."""
    mask = np.zeros(dataset.total_frames, dtype=bool)
    if split not in dataset.splits:
        return mask
    rows = dataset.episodes[dataset.episodes["episode_index"].isin(list(dataset.splits[split]))]
    for start, stop in zip(rows["dataset_from_index"], rows["dataset_to_index"]):
        mask[start:stop] = True
    return mask
