"""Camera frames in evaluation: pixel errors by hand, the PSNR of perfect predictions, image world
models open loop (shapes, determinism, the cache against recomputing), image BC rollouts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tests.evaluate.conftest import IMAGE_SIZE

from roboscale.data import open_dataset
from roboscale.data.envs import get_family
from roboscale.evaluate import evaluate_policy, evaluate_world_model
from roboscale.evaluate.episodes import EvalEpisode
from roboscale.evaluate.images import pixel_mse, psnr_db, run_camera
from roboscale.evaluate.policy import TransformerPolicy, load_model
from roboscale.evaluate.world_model import (
    RealFrames,
    choose_starts,
    encode_frames,
    image_horizon_error,
    predict_open_loop,
    validation_frames,
)
from roboscale.runfolder import read_run_folder


def test_pixel_errors_match_a_hand_computation():
    real = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    predicted = real.copy()
    predicted[..., 0] = 51  # 0.2 in [0, 1] on one channel of three
    assert pixel_mse(predicted, real) == pytest.approx(0.04 / 3)
    assert psnr_db(pixel_mse(predicted, real)) == pytest.approx(10 * math.log10(3 / 0.04))
    std = np.array([0.5, 1.0, 1.0])  # the red channel's difference counts in units of 0.5
    assert pixel_mse(predicted, real, std) == pytest.approx(0.16 / 3)
    assert psnr_db(0.0) == 100.0 and psnr_db(0.01) == pytest.approx(20.0)


@pytest.fixture(scope="module")
def loaded_world_model(image_world_model):
    return load_model(read_run_folder(image_world_model), "cpu")


@pytest.fixture(scope="module")
def world_model_frames(image_world_model, loaded_world_model):
    run = read_run_folder(image_world_model)
    dataset = open_dataset(run.config["data"])
    frames = validation_frames(dataset, run_camera(run, dataset))
    starts = frames.local(choose_starts(dataset, 5, 6, 2))
    return frames, encode_frames(loaded_world_model, frames), starts


def test_true_next_frame_tokens_score_the_tokenizer_reconstruction_psnr(loaded_world_model, world_model_frames):
    """A world model that predicted exactly the real frames' codes scores the tokenizer's own
    reconstruction PSNR on those frames (the ceiling), with every code right."""
    frames, encoded, starts = world_model_frames
    tokenizer = loaded_world_model.image_tokenizer
    real = RealFrames(frames.images, encoded.images, starts.start, horizon=1)
    true_slots = encoded.images[real.target]
    error = image_horizon_error(real, true_slots, tokenizer.decode(true_slots), None, tokenizer, np.ones(3))
    assert error.code_accuracy == 1.0 and error.psnr_db == error.reconstruction_psnr_db
    measured = tokenizer.measure(frames.images[real.target])  # the tokenizer's own report, same frames
    assert len(real.target) <= measured["evaluated_frames"]
    assert error.psnr_db == pytest.approx(measured["psnr_db"], rel=1e-9)
    assert error.mse == pytest.approx(measured["recon_mse"], rel=1e-9)


def test_cached_decoding_gives_the_recomputed_frames(loaded_world_model, world_model_frames):
    _, encoded, starts = world_model_frames
    cached = predict_open_loop(loaded_world_model, encoded, starts, 3)
    recomputed = predict_open_loop(loaded_world_model, encoded, starts, 3, use_cache=False)
    tokens = loaded_world_model.image_tokenizer.tokens
    assert cached.slots.shape == (len(starts.start), 3, tokens, 1) and cached.slots.dtype == np.int64
    assert np.array_equal(cached.slots, recomputed.slots)
    np.testing.assert_allclose(cached.cross_entropy, recomputed.cross_entropy, rtol=1e-4)
    assert cached.cross_entropy.shape == (len(starts.start), 3, tokens) and np.all(cached.cross_entropy > 0)


def test_open_loop_on_images_is_deterministic_with_every_error(image_world_model):
    evaluation = evaluate_world_model(image_world_model, horizons=(20, 1, 5), episodes=4, starts_per_episode=2)
    assert [error.horizon for error in evaluation.horizons] == [1, 5, 20]
    assert len(evaluation.starts) == 8 and {error.predictions for error in evaluation.horizons} == {8}
    for error in evaluation.horizons:
        assert 0 <= error.code_accuracy <= 1 and error.cross_entropy > 0 and error.patch_mse is None
        assert 0 < error.psnr_db < 100 and 0 < error.reconstruction_psnr_db < 100
        assert error.mse == pytest.approx(10 ** (-error.psnr_db / 10))
    saved = json.loads((image_world_model / "eval" / "open_loop.json").read_text())
    assert saved["observation"] == "image" and saved["image_tokenizer"] == "vq:32@16"
    strip = saved["frames"]
    assert strip["horizons"] == [1, 5, 20] and strip["size"] == IMAGE_SIZE
    assert len(strip["real"]) == len(strip["predicted"]) == 3
    assert saved["horizons"][0]["code_accuracy"] == evaluation.horizons[0].code_accuracy
    again = evaluate_world_model(image_world_model, horizons=(1, 5, 20), episodes=4, starts_per_episode=2, write=False)
    assert again.horizons == evaluation.horizons and again.frames == evaluation.frames


def test_an_image_policy_rolls_out_on_pointmass_with_its_camera(image_policy):
    evaluation = evaluate_policy(image_policy, episodes=4, envs=2, max_steps=12)
    assert evaluation.observation == "image"
    assert evaluation.camera == {"camera": "top", "size": IMAGE_SIZE, "backend": "numpy"}
    assert evaluation.mean.episodes == 4 and 0.0 <= evaluation.mean.success_rate <= 1.0
    assert evaluation.mean.failures == 0 and all(1 <= r.length <= 12 for r in evaluation.episodes)
    assert evaluation.timing.render_seconds > 0
    again = evaluate_policy(image_policy, episodes=4, envs=2, max_steps=12, write=False)
    assert [r.to_dict() for r in again.episodes] == [r.to_dict() for r in evaluation.episodes]


def test_the_image_policy_acts_the_same_with_and_without_the_cache(image_policy):
    """Past the window (4 steps): the cache is refilled as the window slides, and every action
    equals the one of rerunning the whole window."""
    loaded = load_model(read_run_folder(image_policy), "cpu")
    env = get_family("pointmass").make("reach")
    env.enable_camera("top", IMAGE_SIZE)
    policies = [TransformerPolicy(loaded, use_cache=flag) for flag in (True, False)]
    for policy in policies:
        policy.reset([EvalEpisode("reach", 0, 0, config_seed=4321, sample_seed=0)])
    observation = env.reset(4321)
    for step in range(9):
        frame = env.render_frame()[None]
        assert frame.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 3) and frame.dtype == np.uint8
        cached, recomputed = (policy.act(observation[None], np.array([0]), frame)[0] for policy in policies)
        np.testing.assert_allclose(cached, recomputed, atol=1e-5, err_msg=f"step {step}")
        observation, *_ = env.step(cached)
    with torch.no_grad(), pytest.raises(ValueError, match="sees images"):
        policies[0].act(observation[None], np.array([0]))


def test_a_patch_world_model_that_also_sees_the_state(image_state_world_model):
    """Patches are regressed (patch MSE, no codes); the recorded states are fed, and the result says so;
    the cache decodes what rerunning the window decodes."""
    evaluation = evaluate_world_model(image_state_world_model, horizons=(1, 5), episodes=3, starts_per_episode=2)
    assert evaluation.observation == "image+state" and evaluation.image_tokenizer == "patch:8"
    assert any("recorded states of predicted frames are fed" in note for note in evaluation.notes)
    for error in evaluation.horizons:
        assert error.code_accuracy is None and error.cross_entropy is None and error.patch_mse > 0
        assert error.reconstruction_psnr_db == 100.0  # patches are exact: the cap
    loaded = load_model(read_run_folder(image_state_world_model), "cpu")
    run = read_run_folder(image_state_world_model)
    dataset = open_dataset(run.config["data"])
    frames = validation_frames(dataset, run_camera(run, dataset))
    starts = frames.local(choose_starts(dataset, 3, 3, 2))
    encoded = encode_frames(loaded, frames)
    assert encoded.states is not None and encoded.images.dtype == np.float32
    cached = predict_open_loop(loaded, encoded, starts, 3)
    recomputed = predict_open_loop(loaded, encoded, starts, 3, use_cache=False)
    assert cached.slots.shape == (len(starts.start), 3, 16, 8 * 8 * 3) and cached.cross_entropy is None
    np.testing.assert_allclose(cached.slots, recomputed.slots, atol=1e-4)


def test_the_image_policy_sees_exactly_the_windows_training_saw(image_policy):
    """Each action equals the model's output on the trainer's own window (train.data) of the frames
    rendered during the rollout and the actions executed, the window sliding after 4 steps."""
    from roboscale.train.data import TokenizedData, encode_frames

    loaded = load_model(read_run_folder(image_policy), "cpu")
    env = get_family("pointmass").make("reach")
    env.enable_camera("top", IMAGE_SIZE)
    policy = TransformerPolicy(loaded)
    policy.reset([EvalEpisode("reach", 0, 0, config_seed=777, sample_seed=0)])
    observation, frames, actions = env.reset(777), [], []
    steps, window = 9, loaded.model.config.context_steps
    for _ in range(steps):
        frames.append(env.render_frame())
        actions.append(policy.act(observation[None], np.array([0]), frames[-1][None])[0])
        observation, *_ = env.step(actions[-1])
    data = TokenizedData(
        states=np.zeros((steps, 1, 1), dtype=np.float32),  # the model sees no state
        actions=loaded.action_tokenizer.encode(np.array(actions)),
        tasks=np.zeros(steps, dtype=np.int64),
        episode_end=np.full(steps, steps),
        split_starts={},
        split_frames={},
        round_trip={},
        state_tokenizer=loaded.state_tokenizer,
        action_tokenizer=loaded.action_tokenizer,
        n_tasks=1,
        images=encode_frames(loaded.image_tokenizer, np.array(frames)),
        image_tokenizer=loaded.image_tokenizer,
        sees_state=False,
    )
    config = loaded.model.config
    assert config.state_tokens == 0 and config.image_tokens == 16
    with torch.no_grad():
        for t in range(steps):
            start = max(0, t - window + 1)
            batch = data.batch(np.array([start]), window, torch.device("cpu"))
            hidden = loaded.model(None, batch["actions"], batch["tasks"], images=batch["images"])
            grid = hidden.view(window, config.slots_per_step, -1)
            output = loaded.model.action_head(grid[t - start, config.observation_tokens - 1])
            np.testing.assert_allclose(output.numpy(), data.actions[t][0], atol=1e-5, err_msg=f"step {t}")


def test_an_image_run_without_its_image_tokenizer_is_refused_in_one_line(image_policy, tmp_path):
    import shutil

    from roboscale.errors import BadInputError

    broken = tmp_path / "no-tokenizer"
    shutil.copytree(image_policy, broken, ignore=shutil.ignore_patterns("eval", "image_tokenizer"))
    with pytest.raises(BadInputError, match=r"image_tokenizer") as refused:
        evaluate_policy(broken, episodes=1, max_steps=2, write=False)
    assert "\n" not in str(refused.value) and "train the run again" in str(refused.value)
