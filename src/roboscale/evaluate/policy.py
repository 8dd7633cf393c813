"""Policies for closed-loop rollouts: a trained behaviour-cloning run, and the scripted expert.

A policy drives a batch of episodes that step in lockstep (see
:mod:`roboscale.evaluate.rollout`): :meth:`Policy.reset` starts the batch,
:meth:`Policy.act` returns one action per still-running episode, with a row of
NaN where the policy's output was not finite (the rollout records that episode
as failed). A policy that sees images gets each episode's current camera frame
too (the rollout renders the run's camera, see :mod:`roboscale.evaluate.images`).

:class:`TransformerPolicy` keeps each episode's history as model slots and builds
exactly the windows training saw (:mod:`roboscale.train.data`): at frame t < K
(K = ``context_steps``) frames 0..t at positions 0..t, later the last K frames,
the current one last. A frame is its image slots (the camera frame through the
run's image tokenizer, for a run that sees images), its state slots, then its
action slots. Action slot j of the current frame is read at the slot
just before it (the last observation slot for j = 0), so an action of several slots is
decoded slot by slot; the model is causal, so the undecoded slots after it can
hold any placeholder (the pad id, or 0). With the key-value cache (the default)
a call feeds the model only the tokens it has not seen: the previous frame's
executed action and the current frame's image and state slots while the window grows, the
whole window again once it slides (every timestep embedding moves), then one
token per further action slot. Without it (``use_cache=False``, the reference)
each slot reruns the whole window.
Discrete slots are decoded greedily (argmax) or sampled (Gumbel-max, with noise
from each episode's own seeded generator, so a sample does not depend on which
other episodes share the batch); continuous slots are the regression output.
The action written into the history is the executed one, encoded again, as in
the training data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from safetensors import SafetensorError

from roboscale.data.envs import TaskEnv, get_family
from roboscale.errors import BadInputError
from roboscale.evaluate.episodes import EvalEpisode
from roboscale.evaluate.images import load_image_tokenizer
from roboscale.models import KVCache, ModelConfig, SequenceModel
from roboscale.runfolder import RunFolder, read_run_folder, tokenizers_from_payload
from roboscale.runfolder.checkpoint import load_checkpoint
from roboscale.runfolder.device import resolve_device
from roboscale.tokenize import Tokenizer

if TYPE_CHECKING:
    from roboscale.tokenize.image import ImageTokenizer


class Policy(Protocol):
    """Acts for a batch of episodes stepping in lockstep."""

    def reset(self, episodes: list[EvalEpisode]) -> None:
        """Start a new batch of episodes (one row each, in this order)."""

    def act(self, observations: np.ndarray, rows: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
        """Actions (len(rows), action dims) for the running episodes ``rows`` (indices into the
        batch) given their observations (len(rows), state dims) and, for a policy with a
        ``camera``, their current frames (len(rows), H, W, 3) uint8; a NaN row where the
        output was not finite."""


class PolicySource(Protocol):
    """Builds a policy; what a worker process receives (so it must pickle)."""

    def build(self) -> Policy: ...


@dataclass
class LoadedModel:
    """A run's model with its weights, and its tokenizers."""

    model: SequenceModel
    state_tokenizer: Tokenizer
    action_tokenizer: Tokenizer
    device: torch.device
    image_tokenizer: ImageTokenizer | None = None
    """Frames -> image slots, for a model that sees images (None otherwise)."""

    @property
    def sees_state(self) -> bool:
        return self.model.config.state_tokens > 0

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """Image slots (n, image tokens, image group) of frames (n, H, W, C) uint8, as training
        saw them: int64 vq codes, or patches rounded to float16 (how the trainer stores them,
        :func:`roboscale.train.data.encode_frames`) and widened to float32."""
        if self.image_tokenizer is None:
            raise ValueError("this model sees no images")
        slots = self.image_tokenizer.encode(frames)
        return slots if self.image_tokenizer.bins else slots.astype(np.float16).astype(np.float32)


def load_model(run: RunFolder, device: str = "auto") -> LoadedModel:
    """Build the run's model from record.json and load its checkpoint, in eval mode."""
    state_tokenizer, action_tokenizer = tokenizers_from_payload(run.tokenizers)
    try:
        model_config = ModelConfig(**run.record["model"])
    except (TypeError, ValueError) as error:
        raise BadInputError(f"{run.path}/record.json: the model shape is unusable ({error})") from None
    image_tokenizer = load_image_tokenizer(run)
    _check_model_matches_tokenizers(run, model_config, state_tokenizer, action_tokenizer, image_tokenizer)
    target = resolve_device(device)
    model = SequenceModel(model_config).to(target)
    try:
        load_checkpoint(run.checkpoint, model, None)
    except (RuntimeError, ValueError) as error:  # other parameter shapes, or other parameters
        first_line = str(error).strip().splitlines()[-1].strip()
        raise BadInputError(
            f"{run.checkpoint}/model.safetensors does not fit the model of record.json ({first_line}): "
            "the checkpoint comes from another run; train the run again"
        ) from None
    except (SafetensorError, OSError) as error:
        raise BadInputError(f"{run.checkpoint}/model.safetensors cannot be read ({error}): train again") from None
    model.eval()
    return LoadedModel(model, state_tokenizer, action_tokenizer, target, image_tokenizer)


def _check_model_matches_tokenizers(
    run: RunFolder, config: ModelConfig, state: Tokenizer, action: Tokenizer, image: ImageTokenizer | None
) -> None:
    expected = {
        "action_tokens": action.tokens,
        "action_group": action.group,
        "action_bins": action.bins,
        "d_model": run.config["d_model"],
        "context_steps": run.config["context_steps"],
        "image_tokens": 0 if image is None else image.tokens,
    }
    if config.state_tokens:  # a model that sees the image alone has no state slots
        expected.update(state_tokens=state.tokens, state_group=state.group, state_bins=state.bins)
    if image is not None:
        expected.update(image_group=image.group, image_bins=image.bins)
    wrong = [
        f"{key} {getattr(config, key)} vs {value}" for key, value in expected.items() if getattr(config, key) != value
    ]
    if wrong:
        raise BadInputError(
            f"{run.path}: the model in record.json does not match tokenizers.json and config.json "
            f"({'; '.join(wrong)}): the folder mixes files of two runs; train the run again"
        )


def empty_slots(tokenizer: Tokenizer, shape: tuple[int, ...]) -> np.ndarray:
    """Placeholder slots of ``shape`` + (tokens, group): the pad id (discrete) or 0 (continuous)."""
    full = (*shape, tokenizer.tokens, tokenizer.group)
    if tokenizer.discrete:
        return np.full(full, tokenizer.pad_id, dtype=np.int64)
    return np.zeros(full, dtype=np.float32)


def empty_image_slots(tokenizer: ImageTokenizer | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Placeholder image slots of ``shape`` + (tokens, group): code 0 (vq) or 0.0 (patches);
    None for a model without images. (Image slots have no padding: a frame fills them all.)"""
    if tokenizer is None:
        return None
    full = (*shape, tokenizer.tokens, tokenizer.group)
    return np.zeros(full, dtype=np.int64 if tokenizer.bins else np.float32)


def choose_image_slot(output: torch.Tensor) -> torch.Tensor:
    """An image slot from the image head's output: the argmax code (batch, 1) of logits
    (batch, 1, K), or the regressed patch values (batch, P*P*C) as they are."""
    return output.argmax(dim=-1) if output.dim() == 3 else output.to(torch.float32)


def window_inputs(windows: dict[str, np.ndarray | None], device: torch.device) -> dict[str, torch.Tensor | None]:
    """Windows of slots by stream (``states``, ``actions``, ``images``) as the keyword
    arguments of :meth:`SequenceModel.forward` and :meth:`SequenceModel.extend`; no
    ``images`` for a model without them."""
    inputs = {
        name: None if values is None else torch.from_numpy(np.ascontiguousarray(values)).to(device)
        for name, values in windows.items()
    }
    if inputs.get("images") is None:
        inputs.pop("images", None)
    return inputs


def choose_slot(
    output: torch.Tensor, tokenizer: Tokenizer, slot: int, noise: np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot values from a head's output (batch, group, bins) or (batch, group), and which
    rows were finite. ``noise`` (batch, group, bins): Gumbel noise to sample instead of argmax."""
    finite = torch.isfinite(output).flatten(1).all(dim=1)
    if tokenizer.discrete:
        logits = output if noise is None else output + torch.from_numpy(noise).to(output)
        values = logits.argmax(dim=-1)
    else:
        values = output.to(torch.float32)
    real = torch.from_numpy(tokenizer.padding_mask()[slot]).to(values.device)
    pad = torch.full_like(values, tokenizer.pad_id if tokenizer.discrete else 0)
    return torch.where(real, values, pad), finite


class TransformerPolicy:
    """A behaviour-cloning run as a :class:`Policy` (see the module docstring)."""

    def __init__(self, loaded: LoadedModel, sample: bool = False, use_cache: bool = True) -> None:
        self.loaded = loaded
        self.sample = sample
        self.use_cache = use_cache
        self.context_steps = loaded.model.config.context_steps
        self.reset([])

    def reset(self, episodes: list[EvalEpisode]) -> None:
        n, window, loaded = len(episodes), self.context_steps, self.loaded
        self.states = empty_slots(loaded.state_tokenizer, (n, window)) if loaded.sees_state else None
        self.images = empty_image_slots(loaded.image_tokenizer, (n, window))
        self.actions = empty_slots(loaded.action_tokenizer, (n, window))
        self.tasks = np.array([episode.task_index for episode in episodes], dtype=np.int64)
        self.generators = [np.random.default_rng(episode.sample_seed) for episode in episodes]
        self.frames = 0
        self.cache: KVCache | None = None
        """Keys and values of the tokens of the current window the model has seen."""
        self.cache_rows = np.arange(n)
        """The batch rows the cache holds, in its row order."""

    @torch.inference_mode()
    def act(self, observations: np.ndarray, rows: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
        position = self._append(observations, rows, frames)
        device = self.loaded.device
        window = self._window(rows, position + 1)
        tasks = torch.from_numpy(self.tasks[rows]).to(device)
        finite = torch.ones(len(rows), dtype=torch.bool, device=device)
        tokenizer = self.loaded.action_tokenizer
        decode = self._cached_slots if self.use_cache else self._recomputed_slots
        for slot, output in enumerate(decode(window, tasks, rows, position)):
            values, slot_finite = choose_slot(output, tokenizer, slot, self._noise(rows, output))
            window["actions"][:, position, slot] = values
            finite &= slot_finite
        executed = tokenizer.decode(window["actions"][:, position].cpu().numpy())
        self.actions[rows, position] = tokenizer.encode(executed)
        executed[~finite.cpu().numpy()] = np.nan
        self.frames += 1
        return executed

    def _window(self, rows: np.ndarray, steps: int) -> dict[str, torch.Tensor | None]:
        """The model's inputs for ``rows``: their first ``steps`` frames of history, as the
        keyword arguments of :meth:`SequenceModel.extend` (``actions`` is written as slots
        are chosen)."""
        histories = {"states": self.states, "actions": self.actions, "images": self.images}
        return window_inputs(
            {name: None if h is None else h[rows, :steps] for name, h in histories.items()}, self.loaded.device
        )

    def _recomputed_slots(self, window, tasks, rows: np.ndarray, position: int) -> Iterator[torch.Tensor]:
        """The action head's output for each action slot of frame ``position``, one forward
        pass over the whole window per slot (the caller writes each chosen slot into the window)."""
        model = self.loaded.model
        before_first = model.config.observation_tokens - 1
        for slot in range(self.loaded.action_tokenizer.tokens):
            hidden = model(tasks=tasks, **window)
            hidden = hidden.view(len(rows), position + 1, model.config.slots_per_step, -1)
            yield model.action_head(hidden[:, position, before_first + slot])

    def _cached_slots(self, window, tasks, rows: np.ndarray, position: int) -> Iterator[torch.Tensor]:
        """As :meth:`_recomputed_slots`, feeding the model only the tokens its cache lacks."""
        model, config = self.loaded.model, self.loaded.model.config
        known = self._cache_for(rows, position, tasks)
        observed = position * config.slots_per_step + config.observation_tokens  # through frame position's observation
        new_tokens = observed - known
        last = torch.full((len(rows),), new_tokens - 1, device=tasks.device)
        hidden = model.extend(self.cache, tokens=new_tokens, read=last, **window)[:, 0]
        for slot in range(self.loaded.action_tokenizer.tokens):
            if slot > 0:  # feed the slot just chosen, read the next one
                hidden = model.extend(self.cache, tokens=1, **window)[:, -1]
            yield model.action_head(hidden)
        # The chosen slots stay cached, but the history keeps the executed action encoded
        # again, which can differ (continuous round trip): the next call feeds it afresh.
        self.cache.rewind(torch.full_like(self.cache.lengths, observed))

    def _cache_for(self, rows: np.ndarray, position: int, tasks: torch.Tensor) -> int:
        """Make ``self.cache`` hold ``rows`` and return how many tokens of their window it
        already holds: none at the first frame or after the window slid."""
        if self.frames == 0 or self.frames >= self.context_steps or self.cache is None:
            self.cache, self.cache_rows = self.loaded.model.start_cache(tasks), rows.copy()
            return 0
        if not np.array_equal(rows, self.cache_rows):  # finished episodes left the batch
            keep = np.searchsorted(self.cache_rows, rows)
            self.cache = self.cache.select(torch.from_numpy(keep).to(self.cache.lengths.device))
            self.cache_rows = rows.copy()
        return int(self.cache.lengths[0]) if len(rows) else 0

    def _append(self, observations: np.ndarray, rows: np.ndarray, frames: np.ndarray | None) -> int:
        """Put the current observation (state and frame) into the window; returns its position."""
        if self.images is not None and frames is None:
            raise ValueError("this policy sees images: pass each running episode's current frame")
        if self.frames >= self.context_steps:  # slide: drop the oldest frame
            for history in (self.states, self.images, self.actions):
                if history is not None:
                    history[:, :-1] = history[:, 1:]
            self.actions[:, -1] = empty_slots(self.loaded.action_tokenizer, ())
        position = min(self.frames, self.context_steps - 1)
        if self.states is not None:
            self.states[rows, position] = self.loaded.state_tokenizer.encode(observations)
        if self.images is not None:
            self.images[rows, position] = self.loaded.encode_frames(frames)
        return position

    def _noise(self, rows: np.ndarray, output: torch.Tensor) -> np.ndarray | None:
        if not (self.sample and self.loaded.action_tokenizer.discrete):
            return None
        shape = tuple(output.shape[1:])
        return np.stack([self.generators[row].gumbel(size=shape) for row in rows]).astype(np.float32)


@dataclass(frozen=True)
class RunPolicySource:
    """Loads a behaviour-cloning run as a :class:`TransformerPolicy` (in any process)."""

    run_dir: str
    device: str = "auto"
    sample: bool = False
    use_cache: bool = True
    """Decode with the key-value cache (False: rerun the window per slot, the reference)."""

    def build(self) -> TransformerPolicy:
        loaded = load_model(read_run_folder(self.run_dir), self.device)
        return TransformerPolicy(loaded, self.sample, self.use_cache)


class ExpertPolicy:
    """The simulator's scripted expert as a :class:`Policy` (a reference, and for benchmarks)."""

    def __init__(self, env: str) -> None:
        self.family = get_family(env)
        self.experts: dict[str, TaskEnv] = {}
        self.tasks: list[str] = []

    def reset(self, episodes: list[EvalEpisode]) -> None:
        self.tasks = [episode.task for episode in episodes]
        for task in set(self.tasks) - set(self.experts):
            self.experts[task] = self.family.make(task)

    def act(self, observations: np.ndarray, rows: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
        """The expert acts on the state (``frames`` are not needed)."""
        return np.stack(
            [self.experts[self.tasks[row]].expert_action(obs) for obs, row in zip(observations, rows)]
        ).astype(np.float64)


@dataclass(frozen=True)
class ExpertPolicySource:
    env: str

    def build(self) -> ExpertPolicy:
        return ExpertPolicy(self.env)
