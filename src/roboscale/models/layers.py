"""Stacked building blocks of :class:`roboscale.models.transformer.SequenceModel`.

Every module holds K same-shape models (one per seed): each parameter carries a
leading model axis, inputs are (K, *, features). A stream's slots are embedded by
:class:`SlotEmbedding` and predicted by :class:`SlotHead`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _per_model(parameter: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (K, ..., d) parameter viewed to broadcast against ``like`` (K, *, d)."""
    return parameter.view(parameter.shape[0], *([1] * (like.dim() - parameter.dim())), *parameter.shape[1:])


class StackedLinear(nn.Module):
    """K independent linear maps, (K, *, in_features) -> (K, *, out_features)."""

    def __init__(self, n_models: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(n_models, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(n_models, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], -1, self.in_features)
        weight = self.weight.transpose(1, 2)
        if self.bias is None:
            out = torch.bmm(rows, weight)
        else:
            out = torch.baddbmm(self.bias[:, None, :], rows, weight)
        return out.view(*x.shape[:-1], self.out_features)


class StackedLayerNorm(nn.Module):
    """K LayerNorms over the last dimension, (K, *, d) -> (K, *, d)."""

    def __init__(self, n_models: int, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_models, d_model))
        self.bias = nn.Parameter(torch.zeros(n_models, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalised = F.layer_norm(x, x.shape[-1:])
        return normalised * _per_model(self.weight, x) + _per_model(self.bias, x)


class StackedEmbedding(nn.Module):
    """K lookup tables of ``rows`` vectors: ids (K, *) -> (K, *, d)."""

    def __init__(self, n_models: int, rows: int, d_model: int) -> None:
        super().__init__()
        self.rows = rows
        self.weight = nn.Parameter(torch.zeros(n_models, rows, d_model))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n_models = self.weight.shape[0]
        offsets = torch.arange(n_models, device=ids.device).view(n_models, *([1] * (ids.dim() - 1))) * self.rows
        return F.embedding(ids + offsets, self.weight.view(n_models * self.rows, -1))


class SlotEmbedding(nn.Module):
    """Embeds one stream's slots, (K, B, steps, tokens, group) -> (K, B, steps, tokens, d_model)."""

    def __init__(self, n_models: int, group: int, bins: int, d_model: int) -> None:
        super().__init__()
        self.discrete = bins > 0
        if self.discrete:
            self.padding_id = bins
            self.table = StackedEmbedding(n_models, bins + 1, d_model)  # shared over dimensions; last row: padding
            self.position = nn.Parameter(torch.zeros(n_models, group, d_model))  # which dimension of the slot
        else:
            self.project = StackedLinear(n_models, group, d_model)  # padded dimensions are zeros

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        if self.discrete:
            real = (slots != self.padding_id)[..., None]
            return ((self.table(slots) + _per_model(self.position, real)) * real).sum(dim=-2)
        return self.project(slots)


class SlotHead(nn.Module):
    """Predicts one stream's slots from hidden states: logits (…, group, bins) or values (…, group)."""

    def __init__(
        self,
        n_models: int,
        group: int,
        bins: int,
        d_model: int,
        output_multiplier: float = 1.0,
        query: bool = True,
    ) -> None:
        super().__init__()
        self.n_models = n_models
        self.output_multiplier = output_multiplier
        """Scales the hidden state the head reads (muP: base_width / d_model)."""
        self.discrete = bins > 0
        self.query = None
        """Discrete slots of several dimensions: which dimension is asked for, added to the hidden state
        (``query=False`` leaves it out, for slots of one dimension such as an image token's code)."""
        if self.discrete:
            if query:
                self.query = nn.Parameter(torch.zeros(n_models, group, d_model))
            self.out = StackedLinear(n_models, d_model, bins, bias=False)
        else:
            self.out = StackedLinear(n_models, d_model, group)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Predictions from hidden states (K*B, *, d_model), the models' rows model-major."""
        stacked = hidden.reshape(self.n_models, -1, *hidden.shape[1:])
        return self.predict(stacked).flatten(0, 1)

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        """Predictions from stacked hidden states (K, *, d_model)."""
        if self.discrete:
            hidden = hidden[..., None, :]
            if self.query is not None:
                hidden = hidden + _per_model(self.query, hidden)
        if self.output_multiplier != 1.0:
            hidden = hidden * self.output_multiplier
        return self.out(hidden)

    def loss(
        self, hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, per_window: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per model (K,): the sum of per-dimension losses over ``mask`` and the number of
        dimensions counted; ``hidden`` (K, B, *, d_model), ``target`` and ``mask`` (K, B, *, group).
        ``per_window``: one sum per model and window instead, shape (K, B)."""
        prediction = self.predict(hidden)
        if self.discrete:
            classes = prediction.shape[-1]
            labels = target.clamp_max(classes - 1)  # pad ids sit beyond the classes; masked below
            per_dim = F.cross_entropy(prediction.flatten(0, -2), labels.flatten(), reduction="none")
            per_dim = per_dim.view(target.shape)
        else:
            per_dim = (prediction - target) ** 2
        kept = 2 if per_window else 1
        return (per_dim * mask).flatten(kept).sum(dim=kept), mask.flatten(kept).sum(dim=kept)
