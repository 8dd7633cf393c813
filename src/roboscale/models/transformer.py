"""One decoder-only transformer for world models (``wm``) and behaviour cloning (``bc``).

A sequence holds ``context_steps`` timesteps; each timestep is ``image_tokens``
image slots (a camera frame, only when the model sees images: see
:mod:`roboscale.models.image_stream`), ``state_tokens`` state slots (none for a
model that sees the image alone), then ``action_tokens`` action slots (see
:mod:`roboscale.tokenize`). A slot carries ``group`` values: bin indices, embedded
by summing a shared bin table (RT-style, one table for all dimensions), or
normalised floats, embedded linearly. Learned embeddings mark the slot, the
timestep and the task. The model predicts every slot from the slots before it;
the task picks which predictions are trained:

- ``bc``: the action slots of every timestep (given states, past actions, task);
- ``wm``: the state slots of every timestep after the first (the next observation);
  with images, the image slots of every timestep after the first (state slots are
  then inputs only).

Discrete slots are predicted with a shared ``d_model -> bins`` head (one
categorical per dimension, told apart by a per-position query added to the hidden
state); continuous slots are regressed. The loss is the mean cross-entropy (nats)
or mean squared error per predicted dimension.

One module holds ``n_models`` (K) same-shape models, one per seed, trained as a
single computation: every parameter carries a leading model axis, inputs are the K
models' batches concatenated model-major (rows ``k*B .. (k+1)*B-1`` belong to model
k), matrix multiplies are batched over models (``bmm``) and everything without
parameters (attention, losses) runs over the concatenated batch. The models never
mix: model k's loss, gradients and predictions depend only on its own parameters
and rows. With K = 1 this is the ordinary single model; at the small widths a CPU
study needs, K models cost little more time than one (Python and framework
overhead, not arithmetic, sets the time there).

Two parametrisations (``ModelConfig.parametrization``) share every shape:
``standard`` (GPT-2 style initialisation, one learning rate, attention logits
scaled 1/sqrt(d_head)) and ``mup``, the maximal-update parametrisation (Yang et
al. 2021), whose best learning rate found at ``base_width`` carries over to other
widths. With m = d_model / base_width, muP changes exactly four things:

- hidden matrices (the blocks' qkv, attention output and MLP matrices, wide on both
  sides) start at standard's std / sqrt(m), i.e. std proportional to 1/sqrt(fan_in);
- their AdamW learning rate is lr / m, with weight decay x m so that the per-step
  decay lr x weight_decay stays standard's (see ``roboscale.train.step.make_optimizer``);
- the heads read hidden states x 1/m (the output multiplier; logits shrink as 1/m
  at fixed weights; readout weights keep standard's init and learning rate);
- attention logits are scaled 1/d_head instead of 1/sqrt(d_head).

Embeddings, the per-position head query, LayerNorms and biases (one width-sized
dimension: "vector-like") keep standard's initialisation and learning rate. At
m = 1 the first three are the identity, so a muP model at its base width is the
standard model (same seed, same bytes) except for attention logits that are
1/sqrt(d_head) as large (:func:`attention_scale`).

Decoding (evaluation) feeds a window token by token through a :class:`KVCache`: the
keys and values of every layer for the tokens seen so far, one length per row.
:meth:`SequenceModel.extend` embeds the next tokens of each row at the positions
the cache says they are at (slot and timestep from the row's length), writes their
keys and values, and attends over the row's cached tokens; prefilling a window and
then extending it one token at a time gives the hidden states of one full forward
pass (to float rounding). A window that slides (drops its oldest frame) changes
every timestep embedding, so it has to be prefilled again.

The model reports its own cost (per model, never for the stack): :meth:`SequenceModel.num_params` splits the
parameters into embedding, transformer and head groups that add up to the total,
and :meth:`SequenceModel.flops_per_token` counts training FLOPs per sequence
position under an explicit convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from roboscale.models.image_stream import (
    ImageEmbedding,
    image_head,
    image_projection_flops,
    next_frame_inputs,
)
from roboscale.models.layers import (  # kept importable from here
    SlotEmbedding,
    SlotHead,
    StackedEmbedding,
    StackedLayerNorm,
    StackedLinear,
)
from roboscale.models.settings import (
    LADDER_WIDTHS,
    PARAMETRIZATIONS,
    TASKS,
    WM_TARGETS,
    check_parametrization,
    check_width,
    ladder_shape,
)

# LADDER_WIDTHS ... ladder_shape: torch-free, defined in roboscale.models.settings, kept importable from here.
__all__ = [
    "LADDER_WIDTHS",
    "PARAMETRIZATIONS",
    "TASKS",
    "WM_TARGETS",
    "KVCache",
    "ModelConfig",
    "SequenceModel",
    "check_parametrization",
    "check_width",
    "ladder_shape",
    "next_state_from_target",
    "wm_target_slots",
]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a :class:`SequenceModel`; everything else is derived."""

    n_layer: int
    d_model: int
    n_head: int
    context_steps: int
    """Timesteps per sequence."""
    state_tokens: int
    state_group: int
    """State values per slot."""
    state_bins: int
    """Bins per state dimension; 0 = continuous."""
    action_tokens: int
    action_group: int
    action_bins: int
    n_tasks: int
    mlp_ratio: int = 4
    parametrization: str = "standard"
    """standard or mup (see the module docstring)."""
    base_width: int = 32
    """muP's reference width: at d_model = base_width muP's init and learning rates are standard's."""
    wm_target: str = "absolute"
    """What the wm task predicts of each next state slot: absolute or delta (see :func:`wm_target_slots`)."""
    image_tokens: int = 0
    """Image slots per timestep (tokens per frame); 0: the model sees no images."""
    image_group: int = 0
    """Values per image slot: 1 for vq codes, P x P x C for patches."""
    image_bins: int = 0
    """Codebook size K of vq image tokens; 0 = continuous patches."""

    def __post_init__(self) -> None:
        check_width(self.d_model, self.n_layer, self.n_head)
        check_parametrization(self.parametrization, self.base_width)
        for name in ("n_layer", "d_model", "n_head", "context_steps", "action_tokens", "n_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")
        for name in ("state_tokens", "image_tokens", "image_group", "image_bins"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 0")
        if self.observation_tokens < 1:
            raise ValueError("state_tokens=0 and image_tokens=0: a model must observe a state or an image")
        if self.image_tokens and (self.image_group < 1 or (self.image_bins and self.image_group != 1)):
            raise ValueError(f"image_group={self.image_group}: 1 for vq codes, P*P*C for patches")
        if self.image_tokens and self.wm_target != "absolute":
            raise ValueError(f"wm_target={self.wm_target}: a world model on images predicts absolute image tokens")

    @property
    def observation_tokens(self) -> int:
        """Slots per timestep before the actions: image, then state."""
        return self.image_tokens + self.state_tokens

    @property
    def slots_per_step(self) -> int:
        return self.image_tokens + self.state_tokens + self.action_tokens

    @property
    def sequence_length(self) -> int:
        """Tokens (slots) per sequence."""
        return self.context_steps * self.slots_per_step

    @property
    def width_multiplier(self) -> float:
        """muP's m = d_model / base_width; 1 under the standard parametrisation."""
        return self.d_model / self.base_width if self.parametrization == "mup" else 1.0

    def to_dict(self) -> dict:
        """Every field, but the parametrisation's only when it is not the default and the
        image stream's only when there is one (records of standard state models stay as they were)."""
        out = asdict(self)
        if self.parametrization == "standard" and self.base_width == 32:
            del out["parametrization"], out["base_width"]
        if self.image_tokens == 0:
            del out["image_tokens"], out["image_group"], out["image_bins"]
        return out


def attention_scale(head_width: int, mup: bool) -> float | None:
    """The factor on attention logits q.k: 1/d_head under muP (q and k become correlated
    as they train, so that q.k grows like d_head), None under the standard
    parametrisation (scaled_dot_product_attention's own 1/sqrt(d_head))."""
    return 1.0 / head_width if mup else None


@dataclass
class KVCache:
    """Keys and values of the tokens each row of a batch has been fed (see :meth:`SequenceModel.extend`).

    Rows are model-major like the model's inputs (K*B); row r holds its first
    ``lengths[r]`` tokens of a window (flat position = timestep x slots_per_step + slot).
    Keys and values are kept for every layer in one tensor each,
    (n_layer, K*B, sequence_length, n_head, d_head); positions at or after a row's
    length hold stale values that attention masks out and later tokens overwrite.
    """

    keys: torch.Tensor
    values: torch.Tensor
    lengths: torch.Tensor
    """(K*B,) int64: tokens held per row; the next token goes at this position."""
    tasks: torch.Tensor
    """(K*B,) task ids of the rows."""

    def rewind(self, lengths: torch.Tensor) -> None:
        """Forget every token at or after ``lengths`` (K*B,) (at most the current lengths):
        exact, since a cached token depends only on the tokens before it."""
        if bool((lengths > self.lengths).any()) or bool((lengths < 0).any()):
            raise ValueError("rewind: a new length must lie between 0 and the row's current length")
        self.lengths = lengths.clone()

    def select(self, rows: torch.Tensor) -> KVCache:
        """A cache of only ``rows`` (indices into this one's rows), e.g. the episodes still running."""
        return KVCache(self.keys[:, rows], self.values[:, rows], self.lengths[rows], self.tasks[rows])


@dataclass
class CachedLayer:
    """One layer's view of a :class:`KVCache` while T new tokens per row pass through it."""

    keys: torch.Tensor
    """(K*B, capacity, n_head, d_head), written in place."""
    values: torch.Tensor
    positions: torch.Tensor
    """(K*B, T): where the new tokens go."""
    mask: torch.Tensor | None
    """(K*B, 1, T, keys) bool: new token i of row r sees key j <= positions[r, i]; None when
    every row starts empty (plain causal attention over the T new tokens)."""
    keys_seen: int
    """Keys attended to: up to the furthest new position."""
    read: torch.Tensor | None = None
    """(K*B,): carry only new token read[r] of each row past attention (its keys and values
    are all the other new tokens leave behind); ``mask`` then has one query row."""

    def store(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new tokens' keys and values (K*B, T, n_head, d_head) at their positions;
        returns all keys and values up to the furthest position, (K*B, n_head, keys, d_head)."""
        rows = torch.arange(len(self.positions), device=self.positions.device)[:, None]
        self.keys[rows, self.positions] = keys
        self.values[rows, self.positions] = values
        seen = self.keys_seen
        return self.keys[:, :seen].transpose(1, 2), self.values[:, :seen].transpose(1, 2)


class Block(nn.Module):
    """Pre-LN transformer block: causal self-attention and an MLP, each residual; (K, B, T, d)."""

    def __init__(self, n_models: int, d_model: int, n_head: int, mlp_ratio: int, mup: bool = False) -> None:
        super().__init__()
        self.n_head = n_head
        self.attention_scale = attention_scale(d_model // n_head, mup)
        """Multiplies the attention logits q.k; None: 1/sqrt(d_head) (see :func:`attention_scale`)."""
        self.ln_attention = StackedLayerNorm(n_models, d_model)
        self.qkv = StackedLinear(n_models, d_model, 3 * d_model, bias=False)
        self.attention_out = StackedLinear(n_models, d_model, d_model, bias=False)
        self.ln_mlp = StackedLayerNorm(n_models, d_model)
        self.mlp_in = StackedLinear(n_models, d_model, mlp_ratio * d_model, bias=False)
        self.mlp_out = StackedLinear(n_models, mlp_ratio * d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, cached: CachedLayer | None = None) -> torch.Tensor:
        """``x`` (K, B, T, d): a whole sequence (causal attention), or with ``cached`` the
        next T tokens of each row, attending to the row's cached tokens and themselves."""
        n_models, batch, length, width = x.shape
        q, k, v = self.qkv(self.ln_attention(x)).split(width, dim=-1)
        # Attention has no parameters: the K models' sequences are one batch of K*B.
        heads = [t.reshape(n_models * batch, length, self.n_head, -1) for t in (q, k, v)]
        if cached is None:
            q, k, v = (t.transpose(1, 2) for t in heads)
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.attention_scale)
        else:
            k, v = cached.store(heads[1], heads[2])
            q = heads[0]
            if cached.read is not None:
                rows = torch.arange(len(q), device=q.device)
                q = q[rows, cached.read][:, None]
                x = x.view(len(q), length, width)[rows, cached.read].view(n_models, batch, 1, width)
                length = 1
            q = q.transpose(1, 2)
            causal = cached.mask is None
            attended = F.scaled_dot_product_attention(
                q, k, v, attn_mask=cached.mask, is_causal=causal, scale=self.attention_scale
            )
        x = x + self.attention_out(attended.transpose(1, 2).reshape(n_models, batch, length, width))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.ln_mlp(x))))


HIDDEN_MATRICES = ("qkv.weight", "attention_out.weight", "mlp_in.weight", "mlp_out.weight")


def is_hidden_matrix(name: str) -> bool:
    """Whether parameter ``name`` of a :class:`SequenceModel` maps width to width (a
    block's qkv, attention output or MLP matrix); everything else has at most one
    width-sized dimension (embeddings, head query and readout, norms, biases)."""
    return name.startswith("blocks.") and name.endswith(HIDDEN_MATRICES)


class SequenceModel(nn.Module):
    """The world-model / behaviour-cloning transformer (see the module docstring):
    one model per entry of ``seeds``, each initialised from its own seed."""

    def __init__(self, config: ModelConfig, seeds: Sequence[int] = (0,)) -> None:
        super().__init__()
        if len(seeds) < 1:
            raise ValueError("seeds: give at least one (one model per seed)")
        self.config = config
        self.n_models = k = len(seeds)
        c = config
        readout = 1.0 / c.width_multiplier
        # Streams that are absent have no modules: a state-only model has exactly the
        # parameters (and, for a seed, the bytes) it had before images existed.
        self.image_embedding = self.image_head = None
        if c.image_tokens:
            self.image_embedding = ImageEmbedding(k, c.image_group, c.image_bins, c.d_model)
            self.image_head = image_head(k, c.image_group, c.image_bins, c.d_model, readout)
        self.state_embedding = SlotEmbedding(k, c.state_group, c.state_bins, c.d_model) if c.state_tokens else None
        self.action_embedding = SlotEmbedding(k, c.action_group, c.action_bins, c.d_model)
        self.slot_embedding = nn.Parameter(torch.zeros(k, c.slots_per_step, c.d_model))
        self.time_embedding = nn.Parameter(torch.zeros(k, c.context_steps, c.d_model))
        self.task_embedding = StackedEmbedding(k, c.n_tasks, c.d_model)
        mup = c.parametrization == "mup"
        self.blocks = nn.ModuleList(Block(k, c.d_model, c.n_head, c.mlp_ratio, mup) for _ in range(c.n_layer))
        self.ln_final = StackedLayerNorm(k, c.d_model)
        self.state_head = SlotHead(k, c.state_group, c.state_bins, c.d_model, readout) if c.state_tokens else None
        self.action_head = SlotHead(k, c.action_group, c.action_bins, c.d_model, readout)
        self._init_weights(list(seeds))

    def _init_weights(self, seeds: list[int]) -> None:
        # GPT-2 style: weights and embeddings N(0, 0.02), the projections back into the
        # residual stream scaled down with depth; biases zero, LayerNorms at identity.
        # muP divides the hidden matrices' std by sqrt(m) (std ~ 1/sqrt(fan_in)).
        # Model k draws from its own generator, parameter by parameter in name order,
        # so it is the same model whichever stack it is trained in.
        device = next(self.parameters()).device
        if device.type == "meta":  # shapes only (cost accounting): nothing to initialise
            return
        hidden_std = 0.02 / math.sqrt(self.config.width_multiplier)
        residual_std = hidden_std / math.sqrt(2 * self.config.n_layer)
        named = sorted(self.named_parameters())
        with torch.no_grad():
            for k, seed in enumerate(seeds):
                generator = torch.Generator(device=device).manual_seed(seed)
                for name, parameter in named:
                    if name.endswith("bias"):
                        parameter[k].zero_()
                    elif "ln_" in name:
                        parameter[k].fill_(1.0)
                    else:
                        residual = name.endswith(("attention_out.weight", "mlp_out.weight"))
                        std = residual_std if residual else hidden_std if is_hidden_matrix(name) else 0.02
                        parameter[k].normal_(mean=0.0, std=std, generator=generator)
            for embedding in (self.state_embedding, self.action_embedding):
                if embedding is not None and embedding.discrete:
                    embedding.table.weight[:, embedding.padding_id].zero_()

    def hidden_matrices(self) -> list[str]:
        """Names of the hidden matrices (wide on both sides), the parameters muP's
        width multiplier scales (init std / sqrt(m), learning rate / m)."""
        return [name for name, _ in self.named_parameters() if is_hidden_matrix(name)]

    # -- forward ------------------------------------------------------------------
    def _stacked(self, tensor: torch.Tensor) -> torch.Tensor:
        """(K*B, ...) model-major rows -> (K, B, ...)."""
        return tensor.view(self.n_models, -1, *tensor.shape[1:])

    def _streams(
        self, states: torch.Tensor | None, actions: torch.Tensor, images: torch.Tensor | None
    ) -> list[tuple[nn.Module, torch.Tensor, int]]:
        """The streams of a timestep in slot order (image, state, action), those the model
        has: (embedding, slots (K*B, steps, tokens, group), tokens per step)."""
        c = self.config
        streams = []
        if c.image_tokens:
            if images is None:
                raise ValueError("this model sees images: pass images= (K*B, steps, image_tokens, image_group)")
            streams.append((self.image_embedding, images, c.image_tokens))
        if c.state_tokens:
            streams.append((self.state_embedding, states, c.state_tokens))
        streams.append((self.action_embedding, actions, c.action_tokens))
        return streams

    def hidden(
        self,
        states: torch.Tensor | None,
        actions: torch.Tensor,
        tasks: torch.Tensor,
        images: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Stacked hidden states (K, B, sequence_length, d_model) for slots ``states``
        (K*B, steps, state_tokens, state_group), ``actions`` likewise, task ids (K*B,) and,
        for a model that sees images, ``images`` (K*B, steps, image_tokens, image_group)
        (``states`` is then None when the model sees no state)."""
        streams = self._streams(states, actions, images)
        slots = torch.cat([embedding(self._stacked(values)) for embedding, values, _ in streams], dim=3)
        steps = slots.shape[2]
        x = (
            slots
            + self.slot_embedding[:, None, None]
            + self.time_embedding[:, None, :steps, None]
            + self.task_embedding(self._stacked(tasks))[:, :, None, None]
        )
        x = x.flatten(2, 3)
        for block in self.blocks:
            x = block(x)
        return self.ln_final(x)

    def forward(
        self,
        states: torch.Tensor | None,
        actions: torch.Tensor,
        tasks: torch.Tensor,
        images: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states (K*B, sequence_length, d_model), rows model-major, for slots
        ``states`` (K*B, steps, state_tokens, state_group), ``actions`` likewise,
        task ids (K*B,) and ``images`` as in :meth:`hidden`."""
        return self.hidden(states, actions, tasks, images).flatten(0, 1)

    # -- decoding with a key-value cache -----------------------------------------------
    def start_cache(self, tasks: torch.Tensor) -> KVCache:
        """An empty :class:`KVCache` for rows with task ids ``tasks`` (K*B,), model-major,
        room for one whole window per row."""
        c, rows = self.config, len(tasks)
        shape = (c.n_layer, rows, c.sequence_length, c.n_head, c.d_model // c.n_head)
        like = self.slot_embedding
        empty = torch.zeros(shape, dtype=like.dtype, device=like.device)
        lengths = torch.zeros(rows, dtype=torch.int64, device=like.device)
        return KVCache(empty, empty.clone(), lengths, tasks)

    def extend(
        self,
        cache: KVCache,
        states: torch.Tensor | None,
        actions: torch.Tensor,
        tokens: int,
        read: torch.Tensor | None = None,
        images: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Feed each row's next ``tokens`` tokens and return their final hidden states
        (K*B, tokens, d_model), equal to those of :meth:`forward` on the whole window.

        ``states`` (K*B, steps, state_tokens, state_group), ``actions`` likewise and
        ``images`` (for a model that sees images) hold each row's window as in :meth:`forward`; the tokens fed are those at flat
        positions ``cache.lengths .. + tokens`` (which must lie inside ``steps``), each
        embedded at its own slot and timestep. The cache's lengths advance by ``tokens``.
        ``read`` (K*B,): return only the hidden state of new token ``read[r]`` of each row,
        (K*B, 1, d_model), and spare the last layer's attention output and MLP for the rest.
        """
        c = self.config
        positions = cache.lengths[:, None] + torch.arange(tokens, device=cache.lengths.device)
        furthest = int(positions.max()) + 1 if tokens else 0
        steps = actions.shape[1]
        if tokens < 1 or furthest > steps * c.slots_per_step:
            raise ValueError(
                f"extend by {tokens} tokens: must be >= 1 and end inside the window given"
                f" ({steps} steps of {c.slots_per_step} slots; furthest position {furthest})"
            )
        # From an empty cache, plain causal attention (SDPA then skips the masked half).
        mask = _sees(positions, furthest) if bool(cache.lengths.any()) else None
        x = self._embed_at(positions, self._streams(states, actions, images), cache.tasks)
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            view = CachedLayer(cache.keys[layer], cache.values[layer], positions, mask, furthest)
            if layer == last and read is not None:
                read_at = positions[torch.arange(len(positions), device=positions.device), read]
                view.mask, view.read = _sees(read_at[:, None], furthest), read
            x = block(x, view)
        cache.lengths = cache.lengths + tokens
        return self.ln_final(x).flatten(0, 1)

    def _embed_at(
        self, positions: torch.Tensor, streams: list[tuple[nn.Module, torch.Tensor, int]], tasks: torch.Tensor
    ) -> torch.Tensor:
        """Input embeddings (K, B, T, d_model) of the tokens at flat ``positions`` (K*B, T) of
        the windows of ``streams`` (see :meth:`_streams`), summed in :meth:`hidden`'s order."""
        c = self.config
        step, slot = positions // c.slots_per_step, positions % c.slots_per_step
        rows = torch.arange(len(positions), device=positions.device)[:, None]
        # Every token is embedded as each stream's and the one of its own stream kept,
        # last stream first (a state-only model: state where slot < state_tokens, else action).
        content, first = None, c.slots_per_step
        for embedding, values, tokens in reversed(streams):
            first -= tokens
            embedded = embedding(self._stacked(values[rows, step, (slot - first).clamp(0, tokens - 1)]))
            inside = self._stacked(slot < first + tokens)[..., None]
            content = embedded if content is None else torch.where(inside, embedded, content)
        model = torch.arange(self.n_models, device=positions.device)[:, None, None]
        return (
            content
            + self.slot_embedding[model, self._stacked(slot)]
            + self.time_embedding[model, self._stacked(step)]
            + self.task_embedding(self._stacked(tasks))[:, :, None]
        )

    def loss(self, batch: dict[str, torch.Tensor], task: str) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean loss per predicted dimension for ``task`` (bc or wm), one per model (K,),
        and plain metrics (averaged over the models)."""
        total, count = self.loss_terms(batch, task)
        loss = total / count.clamp_min(1.0)
        return loss, {"loss": float(loss.detach().mean()), "predicted_dims": float(count.mean())}

    def loss_terms(
        self, batch: dict[str, torch.Tensor], task: str, per_window: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per model (K,): the sum of per-dimension losses over its rows of the batch, and
        how many dimensions were predicted; ``per_window``: per model and row (K, B).

        ``batch``: ``states``/``actions`` slots (K*B, steps, tokens, group), ``tasks``
        (K*B,), ``valid`` (K*B, steps) frames inside the episode, and
        ``state_mask``/``action_mask`` (tokens, group) real (unpadded) dimensions; a model
        that sees images also ``images`` (K*B, steps, image_tokens, image_group) and
        ``image_mask`` (image_tokens, image_group), and ``states`` may be None when it sees no state.
        """
        hidden = self.hidden(batch.get("states"), batch["actions"], batch["tasks"], batch.get("images"))
        c = self.config
        grid = hidden.view(*hidden.shape[:2], -1, c.slots_per_step, c.d_model)  # (K, B, steps, slots, d)
        valid = self._stacked(batch["valid"])
        if task == "bc":
            # Action slot j of step t is predicted at the slot just before it.
            before = grid[:, :, :, c.observation_tokens - 1 : c.slots_per_step - 1]
            target, head, pad, frames = self._stacked(batch["actions"]), self.action_head, batch["action_mask"], valid
        elif task == "wm" and c.image_tokens:
            # The next frame's image slots; state slots beside them are inputs only.
            before, target = next_frame_inputs(grid, c.image_tokens), self._stacked(batch["images"])[:, :, 1:]
            head, pad, frames = self.image_head, batch["image_mask"], valid[:, :, 1:]
        elif task == "wm":
            # State slot 0 of step t+1 is predicted at the last slot of step t, slot j at slot j-1.
            before = next_frame_inputs(grid, c.state_tokens)
            target = wm_target_slots(self._stacked(batch["states"]), c.wm_target, c.state_bins)
            head, pad, frames = self.state_head, batch["state_mask"], valid[:, :, 1:]
            if c.wm_target == "delta":  # a change needs the step before it
                frames = frames & valid[:, :, :-1]
        else:
            raise ValueError(f"task {task!r}: choose one of {TASKS}")
        mask = frames[..., None, None] & pad
        return head.loss(before, target, mask.to(before.dtype), per_window)

    # -- cost ---------------------------------------------------------------------
    def num_params(self) -> dict[str, int]:
        """Parameters of one model by group: ``embedding`` (slot, time, task and input
        embeddings), ``transformer`` (blocks and final norm), ``head`` (output
        layers), and ``total``, which they add up to."""
        groups = {
            "embedding": [self.image_embedding, self.state_embedding, self.action_embedding, self.task_embedding],
            "transformer": [self.blocks, self.ln_final],
            "head": [self.image_head, self.state_head, self.action_head],
        }
        k = self.n_models
        counts = {
            name: sum(p.numel() for m in modules if m is not None for p in m.parameters()) // k
            for name, modules in groups.items()
        }
        counts["embedding"] += (self.slot_embedding.numel() + self.time_embedding.numel()) // k
        counts["total"] = sum(p.numel() for p in self.parameters()) // k
        assert counts["embedding"] + counts["transformer"] + counts["head"] == counts["total"], counts
        counts["non_embedding"] = counts["total"] - counts["embedding"]
        return counts

    def trained_head(self, task: str) -> SlotHead:
        """The head ``task`` trains: actions for bc; for wm the image head when the model
        sees images, else the state head."""
        if task == "bc":
            return self.action_head
        return self.image_head if self.config.image_tokens else self.state_head

    def predicted_dims_per_sequence(self, task: str) -> int:
        """Dimensions the head predicts in one full sequence (padding included)."""
        c = self.config
        if task == "bc":
            return c.context_steps * c.action_tokens * c.action_group
        if c.image_tokens:
            return (c.context_steps - 1) * c.image_tokens * c.image_group
        return (c.context_steps - 1) * c.state_tokens * c.state_group

    def flops_per_token(self, task: str, params: str = "exact", attention: bool = True) -> float:
        """Training FLOPs (forward + backward = 3 x forward) per sequence position of one model.

        ``params`` chooses which parameter count N the "6N" rule uses, the choice
        Porian et al. (2024) showed moves fitted exponents:

        - ``"exact"``: every matrix multiply as executed: the blocks' matrices per
          position, the heads only where they predict (``2 * d_model * bins`` per
          predicted dimension), continuous input projections per slot (forward and
          weight gradient only; image patches too); no FLOPs for embedding lookups
          (state bins, vq image codes). Equal to what
          ``torch.utils.flop_counter`` measures for a training step;
        - ``"total"``: 6 x all parameters (Hoffmann et al.);
        - ``"non_embedding"``: 6 x parameters outside the embedding group (Kaplan et al.).

        ``attention`` adds the attention scores and weighted sum, ``4 x T x d_model``
        per layer per position forward (full T x T, the usual count even for
        causal attention), i.e. ``12 x n_layer x T x d_model`` for training.
        """
        c = self.config
        counts = self.num_params()
        if params == "total":
            per_token = 6.0 * counts["total"]
        elif params == "non_embedding":
            per_token = 6.0 * counts["non_embedding"]
        elif params == "exact":
            matrices = c.n_layer * (4 + 2 * c.mlp_ratio) * c.d_model**2  # qkv, out, mlp in/out
            forward = 2.0 * matrices * c.sequence_length
            head = self.trained_head(task)
            outputs = head.out.out_features if head.discrete else 1
            forward += 2.0 * c.d_model * outputs * self.predicted_dims_per_sequence(task)
            # Input projections of continuous slots: their input is data, so the
            # backward pass only forms the weight gradient (2x forward, not 3x).
            image_tokens = c.image_tokens * c.context_steps
            projections = image_projection_flops(c.image_group, c.image_bins, c.d_model, image_tokens)
            for embedding, tokens, group in (
                (self.state_embedding, c.state_tokens, c.state_group),
                (self.action_embedding, c.action_tokens, c.action_group),
            ):
                if embedding is not None and not embedding.discrete:
                    projections += 2.0 * group * c.d_model * tokens * c.context_steps
            per_token = (3.0 * forward + 2.0 * projections) / c.sequence_length
        else:
            raise ValueError(f"params={params!r}: choose exact, total or non_embedding")
        if attention:
            per_token += 12.0 * c.n_layer * c.sequence_length * c.d_model
        return per_token


def _sees(positions: torch.Tensor, keys: int) -> torch.Tensor:
    """Causal attention mask (rows, 1, T, keys) for queries at ``positions`` (rows, T):
    each sees the keys at and before its own position."""
    return (torch.arange(keys, device=positions.device) <= positions[:, :, None])[:, None]


def wm_target_slots(states: torch.Tensor, wm_target: str, bins: int) -> torch.Tensor:
    """What a world model is trained to predict for steps 1.. of ``states`` (…, steps, tokens,
    group): ``absolute``, the slots themselves; ``delta``, their change from the step before,
    ``(bin[t+1] - bin[t]) mod bins`` for bins (a bijection given bin[t], so its cross-entropy
    in nats equals the absolute one's for the same predicted distribution, and the head keeps
    its ``bins`` classes) or ``s[t+1] - s[t]`` for continuous (normalised) values. Padded
    dimensions give values that the loss masks out."""
    if wm_target == "absolute":
        return states[..., 1:, :, :]
    if wm_target == "delta":
        change = states[..., 1:, :, :] - states[..., :-1, :, :]
        return torch.remainder(change, bins) if bins > 0 else change
    raise ValueError(f"wm_target {wm_target!r}: choose one of {WM_TARGETS}")


def next_state_from_target(previous: torch.Tensor, predicted: torch.Tensor, wm_target: str, bins: int) -> torch.Tensor:
    """The next state slot values from the previous step's ``previous`` and a prediction of
    :func:`wm_target_slots`'s kind (the inverse of that map)."""
    if wm_target == "absolute":
        return predicted
    if wm_target == "delta":
        return torch.remainder(previous + predicted, bins) if bins > 0 else previous + predicted
    raise ValueError(f"wm_target {wm_target!r}: choose one of {WM_TARGETS}")
