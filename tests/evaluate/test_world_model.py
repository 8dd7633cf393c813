"""Open-loop world-model error: the identity at horizon 1, growth with the horizon."""

import numpy as np
import pytest
import torch

from roboscale.data import open_dataset
from roboscale.evaluate import evaluate_world_model
from roboscale.evaluate.policy import load_model
from roboscale.runfolder import read_run_folder
from roboscale.tokenize import TokenizerSpec
from roboscale.train.data import tokenize_dataset

PROGRESS: list[tuple[int, int]] = []


@pytest.fixture(scope="module")
def evaluation(world_model):
    return evaluate_world_model(
        world_model,
        horizons=(20, 1, 5),
        episodes=12,
        starts_per_episode=3,
        batch_size=16,
        progress=lambda done, total: PROGRESS.append((done, total)),
    )


def test_errors_grow_with_the_horizon_on_the_same_starts(evaluation, world_model):
    assert [error.horizon for error in evaluation.horizons] == [1, 5, 20]
    assert evaluation.episodes == 12 and len(evaluation.starts) == 36
    assert {error.predictions for error in evaluation.horizons} == {36}
    errors = [error.mse_normalised for error in evaluation.horizons]
    assert 0 < errors[0] < errors[1] < errors[2]
    # Five steps ahead the model knows far more than "nothing moves" (the agent is under way).
    assert errors[1] < evaluation.error_at(5).persistence_mse_normalised / 2
    assert (world_model / "eval" / "open_loop.json").exists()
    assert PROGRESS[-1] == (36 * 20, 36 * 20) and len(PROGRESS) == 3 * 20  # per step of 3 chunks of <= 16 starts
    done = [steps for steps, _ in PROGRESS]
    assert done == sorted(set(done))  # strictly increasing
    again = evaluate_world_model(world_model, horizons=(1, 5, 20), episodes=12, starts_per_episode=3, write=False)
    assert again.horizons == evaluation.horizons  # deterministic


def test_the_one_step_error_is_the_teacher_forced_loss(evaluation, world_model, long_dataset):
    """With one continuous state slot, normalised MSE at horizon 1 is the training loss on the
    windows that score frame s+1 with the most context (frames max(start, s+2-K)..s+1)."""
    loaded = load_model(read_run_folder(world_model), "cpu")
    dataset = open_dataset(long_dataset)
    spec = TokenizerSpec("continuous")
    data = tokenize_dataset(
        dataset, spec, spec, "wm", state_tokenizer=loaded.state_tokenizer, action_tokenizer=loaded.action_tokenizer
    )
    episode_from = dict(zip(dataset.episodes["episode_index"], dataset.episodes["dataset_from_index"]))
    window = loaded.model.config.context_steps
    target = np.array([episode_from[e] + s + 1 for e, s in evaluation.starts])
    first = np.maximum([episode_from[e] for e, _ in evaluation.starts], target - window + 1)
    batch = data.batch(first, window, torch.device("cpu"))
    batch["valid"] = torch.from_numpy(np.arange(window)[None, :] == (target - first)[:, None])  # score s+1 only
    with torch.no_grad():
        total, count = loaded.model.loss_terms(batch, "wm")
    teacher_forced = float(total.sum() / count.sum())
    assert float(count.sum()) == len(evaluation.starts) * 8  # one frame, 8 state dimensions each
    assert evaluation.error_at(1).mse_normalised == pytest.approx(teacher_forced, rel=1e-5)


def test_starts_leave_room_for_the_largest_horizon(evaluation, long_dataset):
    episodes = open_dataset(long_dataset).episodes
    lengths = dict(zip(episodes["episode_index"], episodes["length"]))
    assert all(0 <= start <= lengths[episode] - 1 - 20 for episode, start in evaluation.starts)
    assert {start for _, start in evaluation.starts} == {0, 10, 19}  # evenly spaced in 40-frame episodes


def test_a_trained_model_is_flagged_only_where_it_loses_to_persistence(evaluation):
    """200 steps: far better than "nothing moves" 1 and 5 steps ahead (the agent is under way), but
    20 steps ahead most agents have stopped at their goal, and feeding back its own predictions
    this model ends up slightly worse than the baseline there."""
    errors = {error.horizon: error for error in evaluation.horizons}
    assert errors[1].mse_normalised < errors[1].persistence_mse_normalised
    assert errors[5].mse_normalised < errors[5].persistence_mse_normalised / 2
    assert errors[20].mse_normalised > errors[20].persistence_mse_normalised
    assert [h for h, error in errors.items() if error.worse_than_persistence] == [20]
    assert evaluation.to_dict()["worse_than_persistence_at"] == [20]
    assert evaluation.persistence_warning == (
        "worse than predicting no change at horizon 20: normalised MSE "
        f"{errors[20].mse_normalised:.3g} vs {errors[20].persistence_mse_normalised:.3g}"
    )


def test_a_barely_trained_model_is_flagged_as_worse_than_persistence(untrained_world_model):
    """One optimiser step: its predictions are next to random, far above the small change of one step."""
    evaluation = evaluate_world_model(untrained_world_model, horizons=(1, 5), episodes=4, write=False)
    one_step = evaluation.error_at(1)
    assert one_step.mse_normalised > 5 * one_step.persistence_mse_normalised
    assert one_step.worse_than_persistence
    assert evaluation.persistence_warning.startswith("worse than predicting no change at horizon")
    assert f"{one_step.mse_normalised:.3g} vs {one_step.persistence_mse_normalised:.3g}" in (
        evaluation.persistence_warning
    )


def test_cached_decoding_predicts_what_rerunning_the_window_predicts(world_model):
    from roboscale.evaluate.images import run_camera
    from roboscale.evaluate.world_model import choose_starts, encode_frames, predict_open_loop, validation_frames

    run = read_run_folder(world_model)
    loaded, dataset = load_model(run, "cpu"), open_dataset(run.config["data"])
    frames = validation_frames(dataset, run_camera(run, dataset))
    starts = frames.local(choose_starts(dataset, 6, 4, 2))
    encoded = encode_frames(loaded, frames)
    cached = predict_open_loop(loaded, encoded, starts, 6)
    recomputed = predict_open_loop(loaded, encoded, starts, 6, use_cache=False)
    assert cached.slots.shape == (8, 6, 1, 8) and cached.cross_entropy is None
    np.testing.assert_allclose(cached.slots, recomputed.slots, atol=1e-5)
