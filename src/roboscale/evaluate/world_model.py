"""Open-loop evaluation of a world model: multi-step prediction error on held-out episodes.

From a start frame s of a validation episode (whole episodes the run never
trained on), the model predicts frame s+1 from the real frames before it, then
s+2 from those and its own prediction, and so on: predicted states are fed
back, actions are the recorded ones (open loop). The window for predicting
frame u is exactly the one training scored it in with the most context: frames
max(episode start, u-K+1)..u (K = ``context_steps``), frame u's state slots
decoded one after another (slot 0 at the last slot of frame u-1, slot j at
slot j-1), greedily: argmax for bins, the regression output for continuous
slots. A model trained on changes (``wm_target = "delta"``) predicts each slot's
change, added to the frame before it.

Errors are reported at each horizon h (frame s+h) on the same starts:

- ``mse_normalised``: mean over predictions and state dimensions of
  ((predicted - true) / std)^2, with ``std`` each dimension's standard deviation
  from ``meta/stats.json`` (1 where it is below 1e-8), i.e. in units of the data's
  spread. For a continuous one-token state this is the training loss itself: at
  h = 1 it equals the teacher-forced loss on the same windows.
- ``mse``: the same in data units (squared state units, all dimensions pooled).
- ``persistence_mse_normalised``: the same for the persistence baseline, which
  predicts that nothing moves: frame s+h's state is frame s's (the last real frame),
  in the same normalised units and on the same starts, so
  mean(((s[t] - s[t+h]) / std)^2). A useful world model must beat it.
- ``worse_than_persistence``: ``mse_normalised > persistence_mse_normalised`` (the
  rule, at each horizon). :func:`persistence_warning` turns the horizons where it
  holds into one line, which `roboscale eval` prints and the JSON and the study
  report carry (``persistence_warning``, None when the model wins everywhere).

Bins decode to bin centres, so a binned model's error includes its tokenizer's
quantisation error.

A world model that sees images (``observation`` image or image+state) predicts the
next frame's image slots the same way (image slot 0 at the last slot of the frame
before, slot j at slot j-1, greedy: the argmax code for ``vq``, the regressed
values for ``patch``), feeding its predicted frames back; the state slots of an
image+state model are inputs it does not predict, so the recorded states are fed
(a note in the result says so). Its errors at each horizon:

- token space: ``code_accuracy`` (fraction of predicted codes equal to the codes of
  the real frame) and ``cross_entropy`` (nats per code: the real frame's code under the
  model's distribution, given the codes it decoded before it) for ``vq``;
  ``patch_mse`` (mean squared error of the normalised patch values) for ``patch``;
- pixel space (see :mod:`roboscale.evaluate.images`): the predicted slots decoded by
  the run's image tokenizer against the real frame, ``mse`` (pixel values in [0, 1]),
  ``psnr_db``, ``mse_normalised`` (per channel, in units of its standard deviation,
  so the persistence comparison above carries over) and ``reconstruction_psnr_db``
  (the real frame through the tokenizer and back: the best any model with this
  tokenizer can do). The persistence baseline predicts frame s's own tokens for frame
  s+h (``persistence_psnr_db``, ``persistence_mse_normalised``): decoded by the same
  tokenizer, it carries the same reconstruction loss as the model, so beating it is
  about the dynamics, not the tokenizer (raw frame s would win whenever the tokenizer
  loses more than one step of motion changes).

``frames`` in the result holds the strip the study report shows: the first start's
last real frame and its real and predicted frames at each horizon, as base64 PNG.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, astuple, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from roboscale.data.dataset import Dataset
from roboscale.errors import BadInputError
from roboscale.evaluate.images import Camera, channel_std, pixel_mse, png_base64, psnr_db, run_camera
from roboscale.evaluate.policy import (
    LoadedModel,
    choose_image_slot,
    choose_slot,
    empty_image_slots,
    empty_slots,
    load_model,
    window_inputs,
)
from roboscale.evaluate.runs import open_run_dataset, require_task
from roboscale.files import write_json_atomic
from roboscale.models import next_state_from_target
from roboscale.runfolder import read_run_folder

Progress = Callable[[int, int], None]
"""progress(predicted steps done, predicted steps planned)."""

WINDOW_TOKENS_PER_CHUNK = 65_536
"""At most this many window tokens (starts x sequence length) are decoded together, so that
the key-value cache of a model with hundreds of image tokens per frame stays small."""


@dataclass(frozen=True)
class HorizonError:
    """Prediction error at one horizon (see the module docstring for the units); the image
    fields are None for a state world model (and left out of its JSON)."""

    horizon: int
    """Steps predicted ahead of the last real frame."""
    predictions: int
    mse_normalised: float
    mse: float
    persistence_mse_normalised: float
    psnr_db: float | None = None
    persistence_psnr_db: float | None = None
    reconstruction_psnr_db: float | None = None
    code_accuracy: float | None = None
    cross_entropy: float | None = None
    patch_mse: float | None = None

    @property
    def worse_than_persistence(self) -> bool:
        """The model's error is above predicting no change (see the module docstring)."""
        return self.mse_normalised > self.persistence_mse_normalised

    def to_dict(self) -> dict:
        out = {key: value for key, value in asdict(self).items() if value is not None}
        return {**out, "worse_than_persistence": self.worse_than_persistence}


@dataclass
class WorldModelEvaluation:
    """An open-loop evaluation of one world-model run."""

    run: str
    checkpoint_step: int
    run_status: str
    split: str
    episodes: int
    """Validation episodes used (those longer than the largest horizon)."""
    starts: list[tuple[int, int]]
    """(episode index, start frame within the episode) of every open-loop prediction."""
    horizons: list[HorizonError]
    seconds: float
    path: str | None = None
    notes: list[str] = field(default_factory=list)
    observation: str = "state"
    """What the model sees: state, image or image+state."""
    image_tokenizer: str | None = None
    """The image tokenizer's spec (e.g. vq:64@16), for a model that sees images."""
    frames: dict | None = None
    """Real and predicted frames of the first start (see the module docstring), or None."""

    def error_at(self, horizon: int) -> HorizonError:
        return next(error for error in self.horizons if error.horizon == horizon)

    @property
    def persistence_warning(self) -> str | None:
        """One line naming the horizons where the model loses to predicting no change, or None."""
        return persistence_warning(self.horizons)

    def to_dict(self) -> dict:
        out = {item.name: getattr(self, item.name) for item in fields(self)}
        out["horizons"] = [error.to_dict() for error in self.horizons]
        out["worse_than_persistence_at"] = [error.horizon for error in self.horizons if error.worse_than_persistence]
        out["persistence_warning"] = self.persistence_warning
        out["starts"] = [list(start) for start in self.starts]
        if self.image_tokenizer is None:  # state world models: the JSON they always had
            for key in ("image_tokenizer", "frames"):
                del out[key]
        return out


def persistence_warning(horizons: list[HorizonError]) -> str | None:
    """ "worse than predicting no change at horizons 1, 5: normalised MSE 2.29 vs 0.0046, ..."
    for the horizons where the model's error is above the persistence baseline's, or None."""
    losing = [error for error in horizons if error.worse_than_persistence]
    if not losing:
        return None
    steps = ", ".join(str(error.horizon) for error in losing)
    numbers = ", ".join(f"{error.mse_normalised:.3g} vs {error.persistence_mse_normalised:.3g}" for error in losing)
    plural = "s" if len(losing) > 1 else ""
    return f"worse than predicting no change at horizon{plural} {steps}: normalised MSE {numbers}"


@dataclass(frozen=True)
class StartFrames:
    """Where open-loop predictions start: one entry per prediction, frame indices."""

    episode_index: np.ndarray
    episode_from: np.ndarray
    """First frame of the episode."""
    start: np.ndarray
    """The last real frame s."""


@dataclass(frozen=True)
class ValidationFrames:
    """The validation split's frames in dataset order (row i: the split's i-th frame)."""

    states: np.ndarray
    """(frames, state dims) in data units."""
    actions: np.ndarray
    tasks: np.ndarray
    images: np.ndarray | None
    """(frames, H, W, C) uint8 of the run's camera, or None for a state world model."""
    row_of: np.ndarray
    """(dataset frames,) the row of each dataset frame, -1 outside the split."""

    def local(self, starts: StartFrames) -> StartFrames:
        """``starts`` (dataset frame indices) as rows of these frames."""
        return StartFrames(starts.episode_index, self.row_of[starts.episode_from], self.row_of[starts.start])


def evaluate_world_model(
    run_dir: str | Path,
    *,
    horizons: tuple[int, ...] = (1, 5, 20),
    episodes: int = 50,
    starts_per_episode: int = 4,
    batch_size: int = 256,
    data: str | Path | None = None,
    device: str = "auto",
    write: bool = True,
    progress: Progress | None = None,
) -> WorldModelEvaluation:
    """Open-loop prediction error of a world-model run at ``horizons`` (steps), on up to
    ``episodes`` validation episodes with ``starts_per_episode`` evenly spaced starts each.
    Deterministic (greedy decoding, fixed starts). Written to ``RUN/eval/open_loop.json``."""
    horizons = tuple(sorted({int(h) for h in horizons}))
    if not horizons or horizons[0] < 1 or episodes < 1 or starts_per_episode < 1 or batch_size < 1:
        raise BadInputError("horizons, episodes, starts per episode and batch size must all be >= 1")
    started = time.perf_counter()
    run = read_run_folder(run_dir)
    require_task(run, "wm")
    dataset = open_run_dataset(run, data)
    camera = run_camera(run, dataset)
    loaded = load_model(run, device)
    frames = validation_frames(dataset, camera)
    starts = frames.local(choose_starts(dataset, horizons[-1], episodes, starts_per_episode))
    encoded = encode_frames(loaded, frames)
    predicted = _predict_in_chunks(loaded, encoded, starts, horizons[-1], batch_size, progress)
    observation = str(run.config.get("observation") or "state")
    evaluation = WorldModelEvaluation(
        run=str(run.path),
        checkpoint_step=run.checkpoint_step,
        run_status=run.status,
        split="validation",
        episodes=len(np.unique(starts.episode_index)),
        starts=[(int(e), int(s - f)) for e, f, s in zip(starts.episode_index, starts.episode_from, starts.start)],
        horizons=[],
        seconds=0.0,
        notes=[] if run.status == "finished" else [f"the run is {run.status}: its last checkpoint was evaluated"],
        observation=observation,
    )
    if camera is None:
        std = dataset.stats["observation.state"]["std"]
        evaluation.horizons = _state_errors(loaded, frames, starts, predicted, np.where(std > 1e-8, std, 1.0), horizons)
    else:
        std = channel_std(dataset, camera.feature)
        _score_frames(evaluation, loaded, frames, encoded, starts, predicted, std, horizons)
        if loaded.sees_state:
            evaluation.notes.append(
                "image+state: the model predicts image tokens only, so the recorded states of predicted frames are fed"
            )
    evaluation.seconds = time.perf_counter() - started
    if write:
        evaluation.path = str(run.layout.evaluations / "open_loop.json")
        write_json_atomic(Path(evaluation.path), evaluation.to_dict())
    return evaluation


def validation_frames(dataset: Dataset, camera: Camera | None) -> ValidationFrames:
    """The validation split's states, actions, tasks and (with a camera) frames."""
    if "validation" not in dataset.splits:
        raise BadInputError(f"{dataset.root} has no validation split: regenerate it with --validation-fraction above 0")
    columns = ["observation.state", "action", "task_index"] + ([camera.feature] if camera else [])
    values = dataset.frames(columns, split="validation")
    inside = np.zeros(dataset.total_frames, dtype=bool)
    rows = dataset.episodes[dataset.episodes["split"] == "validation"]
    for start, stop in zip(rows["dataset_from_index"], rows["dataset_to_index"]):
        inside[start:stop] = True
    count = int(inside.sum())
    return ValidationFrames(
        states=values["observation.state"].reshape(count, -1),
        actions=values["action"].reshape(count, -1),
        tasks=values["task_index"].astype(np.int64),
        images=values[camera.feature] if camera else None,
        row_of=np.where(inside, np.cumsum(inside) - 1, -1),
    )


def choose_starts(dataset: Dataset, horizon: int, episodes: int, per_episode: int) -> StartFrames:
    """Evenly spaced starts (dataset frame indices) in the first ``episodes`` validation
    episodes long enough to predict ``horizon`` steps ahead."""
    if "validation" not in dataset.splits:
        raise BadInputError(f"{dataset.root} has no validation split: regenerate it with --validation-fraction above 0")
    rows = dataset.episodes[dataset.episodes["split"] == "validation"].sort_values("episode_index")
    rows = rows[rows["length"] > horizon].head(episodes)
    if rows.empty:
        raise BadInputError(
            f"no validation episode of {dataset.root} has more than {horizon} frames: lower the largest horizon"
        )
    index, first, start = [], [], []
    for episode, frame_from, length in zip(rows["episode_index"], rows["dataset_from_index"], rows["length"]):
        offsets = np.unique(np.round(np.linspace(0, length - 1 - horizon, per_episode)).astype(np.int64))
        index += [int(episode)] * len(offsets)
        first += [int(frame_from)] * len(offsets)
        start += (int(frame_from) + offsets).tolist()
    return StartFrames(np.array(index), np.array(first), np.array(start))


@dataclass(frozen=True)
class EncodedFrames:
    """Frames as model slots, with their task ids."""

    states: np.ndarray | None
    """(frames, state tokens, group) slots; None for a model that sees no state."""
    actions: np.ndarray
    tasks: np.ndarray
    """(frames,) task index."""
    images: np.ndarray | None = None
    """(frames, image tokens, image group) slots of a model that sees images."""


def encode_frames(loaded: LoadedModel, frames: ValidationFrames) -> EncodedFrames:
    return EncodedFrames(
        states=loaded.state_tokenizer.encode(frames.states) if loaded.sees_state else None,
        actions=loaded.action_tokenizer.encode(frames.actions),
        tasks=frames.tasks,
        images=None if loaded.image_tokenizer is None else loaded.encode_frames(frames.images),
    )


@dataclass(frozen=True)
class OpenLoopPrediction:
    """Predicted slots of the stream a world model predicts (image slots for a model that
    sees images, else state slots), for frames s+1..s+horizon of each start."""

    slots: np.ndarray
    """(predictions, horizon, tokens, group)."""
    cross_entropy: np.ndarray | None = None
    """(predictions, horizon, tokens): nats of the real code under the model, for vq images."""


def _predict_in_chunks(
    loaded: LoadedModel, encoded: EncodedFrames, starts: StartFrames, horizon: int, batch_size: int, progress
) -> OpenLoopPrediction:
    """:func:`predict_open_loop` over chunks of starts (see WINDOW_TOKENS_PER_CHUNK)."""
    chunk = max(1, min(batch_size, WINDOW_TOKENS_PER_CHUNK // loaded.model.config.sequence_length))
    total = len(starts.start)
    parts = []
    for i in range(0, total, chunk):
        part = StartFrames(*(values[i : i + chunk] for values in astuple(starts)))
        step_done = None if progress is None else partial(_report, progress, i, len(part.start), total, horizon)
        parts.append(predict_open_loop(loaded, encoded, part, horizon, step_done))
    cross_entropy = None if parts[0].cross_entropy is None else np.concatenate([p.cross_entropy for p in parts])
    return OpenLoopPrediction(np.concatenate([p.slots for p in parts]), cross_entropy)


def _report(progress: Progress, first: int, size: int, total: int, horizon: int, step: int) -> None:
    """Progress in predicted steps: the ``size`` starts from ``first`` on are at ``step``."""
    progress(first * horizon + size * step, total * horizon)


def predicts_images(loaded: LoadedModel) -> bool:
    """A world model that sees images predicts image slots (its state slots are inputs)."""
    return loaded.image_tokenizer is not None


@torch.inference_mode()
def predict_open_loop(
    loaded: LoadedModel,
    frames: EncodedFrames,
    starts: StartFrames,
    horizon: int,
    step_done: Callable[[int], None] | None = None,
    use_cache: bool = True,
) -> OpenLoopPrediction:
    """The predicted slots of frames s+1..s+horizon for each start s (indices into ``frames``),
    from the real frames up to s and the real actions; ``step_done(k)`` after step k.
    ``use_cache=False`` reruns the whole window for every slot (the reference)."""
    images = predicts_images(loaded)
    shape = (len(starts.start), horizon)
    predicted = (
        empty_image_slots(loaded.image_tokenizer, shape) if images else empty_slots(loaded.state_tokenizer, shape)
    )
    cross_entropy = (
        np.zeros((*shape, predicted.shape[2]), dtype=np.float64) if images and frames.images.dtype == np.int64 else None
    )
    tasks = torch.from_numpy(frames.tasks[starts.start]).to(loaded.device)
    for step in range(1, horizon + 1):
        windows, position = _window(loaded, frames, starts, step, predicted)
        truth = frames.images[starts.start + step] if cross_entropy is not None else None
        values, losses = _decode_frame(loaded, window_inputs(windows, loaded.device), tasks, position, truth, use_cache)
        predicted[:, step - 1] = values
        if cross_entropy is not None:
            cross_entropy[:, step - 1] = losses
        if step_done is not None:
            step_done(step)
    return OpenLoopPrediction(predicted, cross_entropy)


def _window(loaded, frames: EncodedFrames, starts: StartFrames, step: int, predicted: np.ndarray):
    """The windows that predict frame u = s+step: frames max(episode start, u-K+1)..u, the
    predicted stream real up to s and predicted after it, other observations real, real
    actions before u; and u's position in its window."""
    start = starts.start
    target = start + step
    first = np.maximum(starts.episode_from, target - loaded.model.config.context_steps + 1)
    position = target - first
    index = np.minimum(first[:, None] + np.arange(position.max() + 1)[None, :], target[:, None])
    rows = np.arange(len(start))[:, None]
    after_start = (index > start[:, None])[..., None, None]
    fed_back = predicted[rows, np.clip(index - start[:, None] - 1, 0, None)]
    predicted_stream = "images" if predicts_images(loaded) else "states"
    windows = {}
    for name in ("states", "images"):
        real = getattr(frames, name)
        if real is None:
            windows[name] = None
        elif name == predicted_stream:
            windows[name] = np.where(after_start, fed_back, real[index])
        else:  # image+state: the recorded states (the model does not predict them)
            windows[name] = real[index]
    unknown = (index == target[:, None])[..., None, None]  # the target's actions and the padding after it
    windows["actions"] = np.where(unknown, empty_slots(loaded.action_tokenizer, ()), frames.actions[index])
    return windows, position


def _decode_frame(
    loaded: LoadedModel, inputs: dict, tasks: torch.Tensor, position: np.ndarray, truth, use_cache: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Greedily decode the predicted stream's slots at ``position`` of each window, one slot
    after another (written into ``inputs``); returns them (windows, tokens, group) and, given
    the real codes ``truth`` (windows, tokens, 1), each code's cross-entropy (windows, tokens)."""
    model, config = loaded.model, loaded.model.config
    images = predicts_images(loaded)
    slots = inputs["images" if images else "states"]
    head = model.image_head if images else model.state_head
    first_slot = 0 if images else config.image_tokens  # where the stream starts in a timestep
    tokens = slots.shape[2]
    at = torch.from_numpy(position).to(slots.device)
    rows = torch.arange(len(position), device=slots.device)
    reads = position * config.slots_per_step + first_slot - 1  # slot 0 is read at the slot before it
    outputs = _cached_outputs if use_cache else _recomputed_outputs
    losses = []
    for slot, output in enumerate(outputs(model, head, inputs, tasks, reads, tokens)):
        if images:
            values = choose_image_slot(output)
        else:
            chosen, _ = choose_slot(output, loaded.state_tokenizer, slot, None)
            previous = slots[rows, at - 1, slot]  # a prediction's position is never its window's first
            values = next_state_from_target(previous, chosen, config.wm_target, loaded.state_tokenizer.bins)
        slots[rows, at, slot] = values
        if truth is not None:
            labels = torch.from_numpy(truth[:, slot, 0]).to(output.device)
            losses.append(F.cross_entropy(output[:, 0].float(), labels, reduction="none").cpu().numpy())
    return slots[rows, at].cpu().numpy(), np.stack(losses, axis=1) if losses else None


def _cached_outputs(model, head, inputs: dict, tasks, reads: np.ndarray, tokens: int) -> Iterator[torch.Tensor]:
    """The head's output for each slot of the decoded frame: the window before it prefilled
    into a key-value cache, then one token per slot (the caller writes each chosen slot)."""
    cache = model.start_cache(tasks)
    known = torch.from_numpy(reads + 1).to(tasks.device)  # each row's tokens before the decoded frame's slot 0
    before = model.extend(cache, tokens=int(known.max()), read=known - 1, **inputs)[:, 0]
    cache.rewind(known)  # shorter windows drop what the longest one needed
    for slot in range(tokens):
        if slot > 0:
            before = model.extend(cache, tokens=1, **inputs)[:, 0]
        yield head(before)


def _recomputed_outputs(model, head, inputs: dict, tasks, reads: np.ndarray, tokens: int) -> Iterator[torch.Tensor]:
    """As :func:`_cached_outputs`, one forward pass over the whole window per slot."""
    rows = torch.arange(len(reads), device=tasks.device)
    reads = torch.from_numpy(reads).to(tasks.device)
    for slot in range(tokens):
        hidden = model(tasks=tasks, **inputs)
        yield head(hidden.view(len(reads), -1, hidden.shape[-1])[rows, reads + slot])


def _state_errors(loaded, frames: ValidationFrames, starts, predicted, scale, horizons) -> list[HorizonError]:
    """The errors of predicted state slots at ``horizons``, in data units (see the module docstring)."""
    slots = predicted.slots
    states = loaded.state_tokenizer.decode(slots.reshape(-1, *slots.shape[2:])).reshape(len(slots), slots.shape[1], -1)
    return [_horizon_error(h, states[:, h - 1], frames.states, starts.start, scale) for h in horizons]


def _horizon_error(horizon: int, predicted: np.ndarray, states: np.ndarray, start: np.ndarray, scale) -> HorizonError:
    true = states[start + horizon].astype(np.float64)
    return HorizonError(
        horizon=horizon,
        predictions=len(start),
        mse_normalised=float(np.mean(((predicted - true) / scale) ** 2)),
        mse=float(np.mean((predicted - true) ** 2)),
        persistence_mse_normalised=persistence_mse_normalised(states, start, horizon, scale),
    )


def persistence_mse_normalised(states: np.ndarray, start: np.ndarray, horizon: int, scale: np.ndarray) -> float:
    """The persistence baseline's error at ``horizon`` steps: predict s[t + horizon] = s[t] for
    each start t; mean over starts and dimensions of ((s[t] - s[t + horizon]) / scale)^2, in
    units of each dimension's spread (``scale``: its standard deviation). ``states``: (frames, dims)."""
    true = states[start + horizon].astype(np.float64)
    return float(np.mean(((states[start].astype(np.float64) - true) / scale) ** 2))


# -- world models on images ------------------------------------------------------------


def _score_frames(evaluation, loaded, frames: ValidationFrames, encoded, starts, predicted, std, horizons) -> None:
    """Fill ``evaluation`` with the image errors at ``horizons`` and the frame strip."""
    tokenizer = loaded.image_tokenizer
    evaluation.image_tokenizer = str(tokenizer.spec)
    strip: dict[str, list[str]] = {"real": [], "predicted": []}
    first = starts.start[0]
    for horizon in horizons:
        slots = predicted.slots[:, horizon - 1]
        decoded = tokenizer.decode(slots)
        cross_entropy = None if predicted.cross_entropy is None else predicted.cross_entropy[:, horizon - 1]
        real = RealFrames(frames.images, encoded.images, starts.start, horizon)
        evaluation.horizons.append(image_horizon_error(real, slots, decoded, cross_entropy, tokenizer, std))
        strip["real"].append(png_base64(frames.images[first + horizon]))
        strip["predicted"].append(png_base64(decoded[0]))
    episode, offset = evaluation.starts[0]
    evaluation.frames = {
        "episode": episode,
        "start": offset,
        "horizons": list(horizons),
        "size": int(frames.images.shape[1]),
        "last_real": png_base64(frames.images[first]),
        **strip,
    }


@dataclass(frozen=True)
class RealFrames:
    """What predictions at one horizon are scored against."""

    images: np.ndarray
    """(frames, H, W, C) uint8."""
    slots: np.ndarray
    """(frames, tokens, group): ``images`` through the image tokenizer."""
    start: np.ndarray
    """The last real frame s of each prediction."""
    horizon: int

    @property
    def target(self) -> np.ndarray:
        return self.start + self.horizon


def image_horizon_error(
    real: RealFrames,
    slots: np.ndarray,
    decoded: np.ndarray,
    cross_entropy: np.ndarray | None,
    tokenizer,
    std: np.ndarray,
) -> HorizonError:
    """Errors of predicted image ``slots`` (predictions, tokens, group), ``decoded`` to frames,
    against the real frames s+h (see the module docstring); ``std`` (C,) each channel's
    standard deviation in [0, 1] units."""
    true_frames, true_slots = real.images[real.target], real.slots[real.target]
    mse = pixel_mse(decoded, true_frames)
    persistence = tokenizer.decode(real.slots[real.start])  # frame s's tokens (see the module docstring)
    token_errors = (
        {"code_accuracy": float(np.mean(slots == true_slots))}
        if tokenizer.bins
        else {"patch_mse": float(np.mean((slots.astype(np.float64) - true_slots) ** 2))}
    )
    if cross_entropy is not None:
        token_errors["cross_entropy"] = float(np.mean(cross_entropy))
    return HorizonError(
        horizon=real.horizon,
        predictions=len(real.start),
        mse_normalised=pixel_mse(decoded, true_frames, std),
        mse=mse,
        persistence_mse_normalised=pixel_mse(persistence, true_frames, std),
        psnr_db=psnr_db(mse),
        persistence_psnr_db=psnr_db(pixel_mse(persistence, true_frames)),
        reconstruction_psnr_db=psnr_db(pixel_mse(tokenizer.decode(true_slots), true_frames)),
        **token_errors,
    )
