"""Training on camera frames: the image tokenizer fitted on the training split and kept in
the run folder, image world models and policies that learn, resume, and bad input refused
before any work.

Until roboscale.tokenize.image lands (helper `tok`), a small stand-in with its interface
(patch: per-channel normalised patches; vq: each cell's mean brightness in K levels) is
installed in its place.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from roboscale.data import open_dataset
from roboscale.data.layout import frame_features
from roboscale.data.writer import DatasetWriter, Episode
from roboscale.errors import BadInputError
from roboscale.train import TrainConfig, train

SIZE = 16


@pytest.fixture
def image_tokenizers(monkeypatch):
    """The real :mod:`roboscale.tokenize.image`, its fits counted (``fitted``: the frames of each
    fit, cached or not) and its VQ-VAEs trained briefly (50 steps) to keep the tests fast."""
    from roboscale.tokenize import image
    from roboscale.tokenize.vqvae import VQTrainingSettings

    fitted: list[int] = []
    real_fit = image.fit_image_tokenizer

    def counted_fit(spec, train_frames, **options):
        fitted.append(len(train_frames))
        options.setdefault("settings", VQTrainingSettings(steps=50, batch_size=16, width=16))
        return real_fit(spec, train_frames, **options)

    monkeypatch.setattr(image, "fit_image_tokenizer", counted_fit)
    monkeypatch.setattr(image, "fitted", fitted, raising=False)
    return image


def dot_episode(rng, frames: int) -> Episode:
    """A dot moving by its action across a 16x16 frame; the state is its position."""
    position = rng.uniform(2, SIZE - 3, size=2)  # (row, column)
    states, actions, images = [], [], []
    for _ in range(frames):
        action = np.clip((SIZE / 2 - position[:1]) / 6 + rng.normal(0, 0.1, size=1), -1, 1)  # back to the middle
        frame = np.zeros((SIZE, SIZE, 3), np.uint8)
        row, column = position.astype(int)
        frame[row - 1 : row + 2, column - 1 : column + 2] = (255, 128, 0)
        states.append(position.copy())
        actions.append(action)
        images.append(frame)
        position = np.clip(position + np.array([action[0], 0.5]), 2, SIZE - 3)
    return Episode(
        task="move",
        states=np.array(states, np.float32),
        actions=np.array(actions, np.float32),
        rewards=np.zeros(frames, np.float32),
        successes=np.zeros(frames, bool),
        expert_actions=np.array(actions, np.float32),
        images={"top": np.stack(images)},
    )


@pytest.fixture(scope="module")
def dot_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images") / "dots"
    rng = np.random.default_rng(0)
    features = frame_features(("x", "y"), ("a",), cameras={"top": SIZE})
    with DatasetWriter(root, features=features, tasks=["move"], fps=10, robot_type="dot", provenance={}) as writer:
        for index in range(24):
            writer.add(dot_episode(rng, 12), "train" if index < 18 else "validation")
    return root


def image_config(dataset, **changes) -> TrainConfig:
    base = {
        "data": str(dataset),
        "task": "wm",
        "tokenizer": "uniform:16",
        "observation": "image",
        "image_tokenizer": "vq:8@4",
        "d_model": 16,
        "context_steps": 4,
        "steps": 30,
        "batch_size": 8,
        "threads": 1,
        "checkpoint_seconds": 0.0,
        "eval_points": 3,
        "eval_windows": 32,
    }
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.parametrize(
    "observation, spec, task, slots",
    [("image", "vq:8@4", "wm", 4 + 1), ("image+state", "patch:4", "bc", 16 + 2 + 1)],
)
def test_image_runs_fit_the_tokenizer_on_training_frames_and_keep_it(
    image_tokenizers, dot_dataset, tmp_path, observation, spec, task, slots
):
    config = image_config(dot_dataset, observation=observation, image_tokenizer=spec, task=task)
    record = train(config, tmp_path / "run")
    model = record["model"]
    assert model["image_tokens"] * 1 + model["state_tokens"] + model["action_tokens"] == slots
    assert record["tokens"] == 30 * 8 * 4 * slots
    assert record["C"] == pytest.approx(record["tokens"] * record["flops_per_token"]["exact"])  # no tokenizer FLOPs
    assert record["image_tokenizer"]["tokens_per_frame"] == model["image_tokens"]
    assert record["dataset"]["camera"] == "observation.images.top"
    assert (tmp_path / "run" / "image_tokenizer").is_dir()
    curve = record["learning_curve"]
    assert curve[-1]["val_loss"] < curve[0]["val_loss"]  # it learns
    # fitted on exactly the training split's frames
    train_frames = len(open_dataset(dot_dataset).frames(["action"], split="train")["action"])
    assert image_tokenizers.fitted[-1] == train_frames == 18 * 12
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["observation"] == observation and saved["image_tokenizer"] == spec


def test_resuming_an_image_run_reuses_its_saved_tokenizer(image_tokenizers, dot_dataset, tmp_path):
    config = image_config(dot_dataset, image_tokenizer="patch:8", steps=12, eval_points=4)
    whole = train(config, tmp_path / "whole")

    class PowerCut(Exception):
        pass

    def cut(step, total, metrics):
        if step == 6:
            raise PowerCut

    with pytest.raises(PowerCut):
        train(config, tmp_path / "cut", progress=cut)
    fits = len(image_tokenizers.fitted)
    resumed = train(config, tmp_path / "cut")
    assert len(image_tokenizers.fitted) == fits  # loaded from the run folder, not fitted again
    assert resumed["final"] == whole["final"]


def test_state_only_configs_keep_their_run_ids():
    config = TrainConfig(data="d", steps=10)
    assert not {"observation", "image_tokenizer", "camera"} & set(config.to_dict())


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"observation": "pixels"}, "observation 'pixels': choose state, image, image\\+state"),
        ({"observation": "state", "image_tokenizer": "vq:8@4"}, "--image-tokenizer vq:8@4 is for image observations"),
        ({"observation": "state", "image_tokenizer": "", "camera": "top"}, "--camera top is for image observations"),
        ({"image_tokenizer": ""}, "needs --image-tokenizer"),
        ({"image_tokenizer": "uniform:256"}, "that is a state tokenizer; use patch:P"),
        ({"tokenizer": "patch:8"}, "--tokenizer patch:8 is an image tokenizer"),
        ({"wm_target": "delta"}, "use --wm-target absolute"),
    ],
)
def test_bad_image_settings_are_refused(image_tokenizers, changes, message):
    with pytest.raises(BadInputError, match=message):
        image_config("d", **changes).validate()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"image_tokenizer": "patch:5"}, "patch 5 does not divide the 16x16 images"),
        ({"camera": "side"}, "--camera side: .* has camera\\(s\\) top"),
        ({"image_tokenizer": "vq:8@1024"}, "more than the 16x16 pixels"),
    ],
)
def test_image_settings_that_do_not_fit_the_dataset_are_refused_before_any_work(
    image_tokenizers, dot_dataset, tmp_path, changes, message
):
    with pytest.raises(BadInputError, match=message):
        train(image_config(dot_dataset, **changes), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_images_on_a_state_only_dataset_are_refused(image_tokenizers, pointmass_dataset, tmp_path):
    with pytest.raises(BadInputError, match="has no observation.images.\\* feature; generate with --camera"):
        train(image_config(pointmass_dataset), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_train_command_takes_image_options(image_tokenizers, dot_dataset, tmp_path):
    from typer.testing import CliRunner

    from roboscale.cli.main import app

    out = tmp_path / "cli"
    args = ["train", "--data", str(dot_dataset), "--task", "bc", "--observation", "image+state"]
    args += ["--image-tokenizer", "vq:8@4", "--camera", "top", "--d-model", "16", "--steps", "3", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--batch-size", "4", "--threads", "1", "--eval-windows", "8"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["camera"] == "top" and record["model"]["image_bins"] == 8
    assert record["model"]["state_tokens"] == 2  # image+state: the state is seen too


def test_seeds_trained_together_share_one_image_tokenizer(image_tokenizers, dot_dataset, tmp_path):
    from roboscale.train import train_batch

    configs = [image_config(dot_dataset, steps=4, seed=seed) for seed in (0, 1)]
    fits = len(image_tokenizers.fitted)
    records = train_batch(configs, [tmp_path / "a", tmp_path / "b"])
    assert len(image_tokenizers.fitted) == fits + 1  # fitted once for the stack, with a fixed seed
    saved = [sorted(p.read_bytes() for p in (tmp_path / name / "image_tokenizer").iterdir()) for name in "ab"]
    assert saved[0] == saved[1]
    assert records[0]["final"]["val_loss"] != records[1]["final"]["val_loss"]
