"""The image stream of a :class:`roboscale.models.transformer.SequenceModel`: a camera
frame as ``image_tokens`` slots at the start of each timestep (before the state and
action slots), from an image tokenizer (:mod:`roboscale.tokenize.image`).

Two kinds of image token, told apart by ``image_bins``:

- ``vq:K@T`` codes (``image_bins`` = K, ``image_group`` = 1): each token is one code,
  embedded by a K x d_model table and predicted by a d_model -> K head (cross-entropy,
  nats per token);
- ``patch:P`` patches (``image_bins`` = 0, ``image_group`` = P x P x C normalised pixel
  values): each token is embedded by a linear P*P*C -> d_model projection (its input
  is data: the backward pass forms only its weight gradient) and regressed by a linear
  d_model -> P*P*C head (squared error per normalised pixel value).

A world model predicts the next frame's image tokens (image slot 0 of step t+1 at the
last slot of step t, slot j at slot j-1); state slots, when present beside the image,
are inputs only. Behaviour cloning predicts the actions from the image (and state).
"""

from __future__ import annotations

import torch
from torch import nn

from roboscale.models.layers import SlotHead, StackedEmbedding, StackedLinear


class ImageEmbedding(nn.Module):
    """Embeds image slots, (K, B, steps, image_tokens, image_group) -> (K, B, steps, image_tokens, d_model):
    vq codes (group 1, int64) through a table of ``bins`` rows, patches (float) through a linear map."""

    def __init__(self, n_models: int, group: int, bins: int, d_model: int) -> None:
        super().__init__()
        self.discrete = bins > 0
        if self.discrete:
            if group != 1:
                raise ValueError(f"image_group={group}: a vq image token is one code (group 1)")
            self.table = StackedEmbedding(n_models, bins, d_model)
        else:
            self.project = StackedLinear(n_models, group, d_model)

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            return self.table(slots[..., 0])
        return self.project(slots)


def image_head(n_models: int, group: int, bins: int, d_model: int, output_multiplier: float) -> SlotHead:
    """The head predicting image slots: d_model -> ``bins`` logits per code (no per-dimension
    query: a code is one dimension), or d_model -> ``group`` pixel values per patch."""
    return SlotHead(n_models, group, bins, d_model, output_multiplier, query=False)


def next_frame_inputs(grid: torch.Tensor, image_tokens: int) -> torch.Tensor:
    """The hidden states that predict each next frame's image slots: for steps 1.. of
    ``grid`` (K, B, steps, slots, d_model), image slot 0 at the last slot of the step
    before and slot j at slot j-1 of its own step; shape (K, B, steps-1, image_tokens, d_model)."""
    return torch.cat([grid[:, :, :-1, -1:], grid[:, :, 1:, : image_tokens - 1]], dim=3)


def image_projection_flops(group: int, bins: int, d_model: int, tokens: int) -> float:
    """Forward FLOPs of the image stream's input projection over ``tokens`` image slots:
    2 x group x d_model per patch token, none for vq codes (a table lookup)."""
    return 0.0 if bins > 0 else 2.0 * group * d_model * tokens
