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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from roboscale.data.dataset import Dataset
from roboscale.errors import BadInputError
from roboscale.evaluate.policy import LoadedModel, choose_slot, empty_slots, load_model
from roboscale.evaluate.runs import open_run_dataset, require_task
from roboscale.files import write_json_atomic
from roboscale.models import next_state_from_target
from roboscale.runfolder import read_run_folder

Progress = Callable[[int, int], None]
"""progress(predicted steps done, predicted steps planned)."""


@dataclass(frozen=True)
class HorizonError:
    """Prediction error at one horizon (see the module docstring for the units)."""

    horizon: int
    """Steps predicted ahead of the last real frame."""
    predictions: int
    mse_normalised: float
    mse: float
    persistence_mse_normalised: float

    @property
    def worse_than_persistence(self) -> bool:
        """The model's error is above predicting no change (see the module docstring)."""
        return self.mse_normalised > self.persistence_mse_normalised

    def to_dict(self) -> dict:
        return {**asdict(self), "worse_than_persistence": self.worse_than_persistence}


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

    def error_at(self, horizon: int) -> HorizonError:
        return next(error for error in self.horizons if error.horizon == horizon)

    @property
    def persistence_warning(self) -> str | None:
        """One line naming the horizons where the model loses to predicting no change, or None."""
        return persistence_warning(self.horizons)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["horizons"] = [error.to_dict() for error in self.horizons]
        out["worse_than_persistence_at"] = [error.horizon for error in self.horizons if error.worse_than_persistence]
        out["persistence_warning"] = self.persistence_warning
        out["starts"] = [list(start) for start in self.starts]
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
    """Where open-loop predictions start: one entry per prediction, global frame indices."""

    episode_index: np.ndarray
    episode_from: np.ndarray
    """First frame of the episode."""
    start: np.ndarray
    """The last real frame s."""


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
    loaded = load_model(run, device)
    starts = choose_starts(dataset, horizons[-1], episodes, starts_per_episode)
    frames = dataset.frames(["observation.state", "action", "task_index"])
    states = frames["observation.state"].reshape(dataset.total_frames, -1)
    predicted = _predict_in_chunks(loaded, frames, starts, horizons[-1], batch_size, progress)
    std = dataset.stats["observation.state"]["std"]
    scale = np.where(std > 1e-8, std, 1.0)
    evaluation = WorldModelEvaluation(
        run=str(run.path),
        checkpoint_step=run.checkpoint_step,
        run_status=run.status,
        split="validation",
        episodes=len(np.unique(starts.episode_index)),
        starts=[(int(e), int(s - f)) for e, f, s in zip(starts.episode_index, starts.episode_from, starts.start)],
        horizons=[_horizon_error(h, predicted[:, h - 1], states, starts.start, scale) for h in horizons],
        seconds=time.perf_counter() - started,
        notes=[] if run.status == "finished" else [f"the run is {run.status}: its last checkpoint was evaluated"],
    )
    if write:
        evaluation.path = str(run.layout.evaluations / "open_loop.json")
        write_json_atomic(Path(evaluation.path), evaluation.to_dict())
    return evaluation


def choose_starts(dataset: Dataset, horizon: int, episodes: int, per_episode: int) -> StartFrames:
    """Evenly spaced starts in the first ``episodes`` validation episodes long enough to
    predict ``horizon`` steps ahead."""
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
    """Every frame of a dataset as model slots, with its task id."""

    states: np.ndarray
    """(frames, state tokens, group) slots."""
    actions: np.ndarray
    tasks: np.ndarray
    """(frames,) task index."""


def _predict_in_chunks(loaded, frames: dict, starts: StartFrames, horizon, batch_size, progress) -> np.ndarray:
    """Predicted states (predictions, horizon, state dims) in data units."""
    encoded = EncodedFrames(
        states=loaded.state_tokenizer.encode(frames["observation.state"]),
        actions=loaded.action_tokenizer.encode(frames["action"]),
        tasks=frames["task_index"].astype(np.int64),
    )
    total = len(starts.start)
    chunks = []
    for i in range(0, total, batch_size):
        part = StartFrames(*(values[i : i + batch_size] for values in astuple(starts)))
        step_done = None if progress is None else partial(_report, progress, i, len(part.start), total, horizon)
        slots = predict_open_loop(loaded, encoded, part, horizon, step_done)
        flat = slots.reshape(-1, *slots.shape[2:])
        chunks.append(loaded.state_tokenizer.decode(flat).reshape(len(slots), horizon, -1))
    return np.concatenate(chunks)


def _report(progress: Progress, first: int, size: int, total: int, horizon: int, step: int) -> None:
    """Progress in predicted steps: the ``size`` starts from ``first`` on are at ``step``."""
    progress(first * horizon + size * step, total * horizon)


@torch.inference_mode()
def predict_open_loop(
    loaded: LoadedModel,
    frames: EncodedFrames,
    starts: StartFrames,
    horizon: int,
    step_done: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Predicted state slots (predictions, horizon, tokens, group) of frames s+1..s+horizon for
    each start s, from the real frames up to s and the real actions; ``step_done(k)`` after
    step k."""
    predicted = empty_slots(loaded.state_tokenizer, (len(starts.start), horizon))
    for step in range(1, horizon + 1):
        states, actions, position = _window(loaded, frames, starts, step, predicted)
        tasks = torch.from_numpy(frames.tasks[starts.start]).to(loaded.device)
        predicted[:, step - 1] = _decode_state(loaded, states, actions, tasks, position)
        if step_done is not None:
            step_done(step)
    return predicted


def _window(loaded, frames: EncodedFrames, starts: StartFrames, step: int, predicted: np.ndarray):
    """The windows that predict frame u = s+step: frames max(episode start, u-K+1)..u, real up to
    s and predicted after it, real actions before u; and u's position in its window."""
    start = starts.start
    target = start + step
    first = np.maximum(starts.episode_from, target - loaded.model.config.context_steps + 1)
    position = target - first
    index = np.minimum(first[:, None] + np.arange(position.max() + 1)[None, :], target[:, None])
    rows = np.arange(len(start))[:, None]
    fed_back = predicted[rows, np.clip(index - start[:, None] - 1, 0, None)]
    states = np.where((index > start[:, None])[..., None, None], fed_back, frames.states[index])
    unknown = (index == target[:, None])[..., None, None]  # the target's actions and the padding after it
    actions = np.where(unknown, empty_slots(loaded.action_tokenizer, ()), frames.actions[index])
    device = loaded.device
    return (
        torch.from_numpy(np.ascontiguousarray(states)).to(device),
        torch.from_numpy(np.ascontiguousarray(actions)).to(device),
        torch.from_numpy(position).to(device),
    )


def _decode_state(loaded, states: torch.Tensor, actions: torch.Tensor, tasks: torch.Tensor, position) -> np.ndarray:
    """Greedily decode the state slots at ``position`` of each window, one slot after another:
    the frames before ``position`` prefilled into a key-value cache, then one token per slot."""
    model, tokenizer = loaded.model, loaded.state_tokenizer
    rows = torch.arange(states.shape[0], device=states.device)
    cache = model.start_cache(tasks)
    known = position * model.config.slots_per_step  # each row's tokens before its frame `position`
    # Slot 0 is read at the last slot of the frame before, slot j at slot j-1.
    before = model.extend(cache, states, actions, int(known.max()), read=known - 1)[:, 0]
    cache.rewind(known)  # shorter windows drop what the longest one needed
    for slot in range(tokenizer.tokens):
        if slot > 0:
            before = model.extend(cache, states, actions, 1)[:, 0]
        values, _ = choose_slot(model.state_head(before), tokenizer, slot, None)
        previous = states[rows, position - 1, slot]  # a prediction's position is never its window's first
        states[rows, position, slot] = next_state_from_target(previous, values, model.config.wm_target, tokenizer.bins)
    return states[rows, position].cpu().numpy()


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
