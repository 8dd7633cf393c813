"""Real datasets and tiny real runs for the evaluation tests (pointmass, plus one Meta-World run),
each built once per test run (:func:`tests.helpers.built_once`) and read-only."""

from functools import partial
from pathlib import Path

import pytest
from tests.helpers import built_once

from roboscale.data import GenerationSpec, Quality, generate
from roboscale.train import TrainConfig, train


def train_run(dataset: Path, out: Path, **changes) -> Path:
    """Train a tiny run (one thread, so it is the same run on any machine)."""
    settings = {
        "data": str(dataset),
        "task": "bc",
        "tokenizer": "continuous",
        "d_model": 32,
        "steps": 100,
        "batch_size": 32,
        "threads": 1,
        "checkpoint_seconds": 0.0,
        "eval_windows": 64,
        "eval_points": 2,
    }
    settings.update(changes)
    train(TrainConfig(**settings), out)
    return out


@pytest.fixture(scope="session")
def reach_dataset(tmp_path_factory) -> Path:
    """Pointmass reach, expert demonstrations: easy to learn in 100 steps."""
    spec = GenerationSpec(env="pointmass", tasks="reach", episodes=150, validation_fraction=0.2)
    return built_once(tmp_path_factory, "reach", lambda folder: generate(spec, folder / "reach").out)


@pytest.fixture(scope="session")
def long_dataset(tmp_path_factory) -> Path:
    """Both pointmass tasks, 40-step episodes that go on after success (for horizons up to 20)."""
    spec = GenerationSpec(
        env="pointmass",
        episodes=60,
        quality=Quality(action_noise=0.1),
        validation_fraction=0.25,
        max_steps=40,
        stop_on_success=False,
    )
    return built_once(tmp_path_factory, "long", lambda folder: generate(spec, folder / "long").out)


@pytest.fixture(scope="session")
def trained_policy(reach_dataset, tmp_path_factory) -> Path:
    """Continuous BC on reach, 100 steps: solves nearly every configuration."""
    return built_once(tmp_path_factory, "bc-trained", lambda folder: train_run(reach_dataset, folder / "run"))


@pytest.fixture(scope="session")
def untrained_policy(reach_dataset, tmp_path_factory) -> Path:
    """The same model after one step: next to random."""
    return built_once(
        tmp_path_factory, "bc-untrained", lambda folder: train_run(reach_dataset, folder / "run", steps=1)
    )


@pytest.fixture(scope="session")
def binned_policy(reach_dataset, tmp_path_factory) -> Path:
    """Binned states and actions (2 action slots decoded one after the other)."""

    def build(folder: Path) -> Path:
        return train_run(reach_dataset, folder / "run", tokenizer="uniform:32", steps=30)

    return built_once(tmp_path_factory, "bc-binned", build)


@pytest.fixture(scope="session")
def world_model(long_dataset, tmp_path_factory) -> Path:
    """A continuous world model: one state slot, so open-loop error at horizon 1 is its loss."""
    return built_once(
        tmp_path_factory, "wm", lambda folder: train_run(long_dataset, folder / "run", task="wm", steps=200)
    )


@pytest.fixture(scope="session")
def untrained_world_model(long_dataset, tmp_path_factory) -> Path:
    """The same world model after one step: worse than predicting that nothing moves."""

    def build(folder: Path) -> Path:
        return train_run(long_dataset, folder / "run", task="wm", steps=1)

    return built_once(tmp_path_factory, "wm-untrained", build)


@pytest.fixture(scope="session")
def metaworld_run(tmp_path_factory) -> Path:
    """A few reach-v3 demonstrations and a BC run of a few steps (a smoke-test policy)."""
    spec = GenerationSpec(env="metaworld", tasks="reach-v3", episodes=3, validation_fraction=0.34, seed=1)

    def build(folder: Path) -> Path:
        return train_run(generate(spec, folder / "mw").out, folder / "mw-bc", steps=3, d_model=16)

    return built_once(tmp_path_factory, "metaworld-run", build)


@pytest.fixture(scope="session")
def heldout_run(tmp_path_factory) -> Path:
    """Trained on reach only; push is the dataset's held-out task (a few steps: a smoke-test policy)."""
    spec = GenerationSpec(env="pointmass", episodes=20, heldout_tasks=("push",), validation_fraction=0.2)

    def build(folder: Path) -> Path:
        return train_run(generate(spec, folder / "heldout").out, folder / "bc-heldout", steps=2)

    return built_once(tmp_path_factory, "heldout-run", build)


# -- camera frames (issue 15) -------------------------------------------------------------

IMAGE_SIZE = 32


@pytest.fixture(scope="session")
def image_dataset(tmp_path_factory) -> Path:
    """Pointmass reach seen by the top camera at 32x32, 40-step episodes that go on after success
    (long enough for horizon 20)."""
    spec = GenerationSpec(
        env="pointmass",
        tasks="reach",
        episodes=24,
        validation_fraction=0.25,
        max_steps=40,
        stop_on_success=False,
        camera="top",
        image_size=IMAGE_SIZE,
    )
    return built_once(tmp_path_factory, "images", lambda folder: generate(spec, folder / "images").out)


@pytest.fixture(scope="session")
def image_policy(image_dataset, tmp_path_factory) -> Path:
    """BC on the image alone (patch:8, 16 tokens per frame), a few steps: a smoke-test policy."""

    def build(folder: Path) -> Path:
        return train_run(
            image_dataset, folder / "run", observation="image", image_tokenizer="patch:8", steps=20, context_steps=4
        )

    return built_once(tmp_path_factory, "bc-image", build)


VQ_TEST_STEPS = 100
"""VQ-VAE training steps in these tests (the default, 1000, takes ~30 s of one core at 32x32)."""


@pytest.fixture(scope="session")
def image_world_model(image_dataset, tmp_path_factory) -> Path:
    """A world model on vq:32@16 image tokens, a few steps (its quality does not matter here);
    its VQ-VAE trains VQ_TEST_STEPS steps (a shorter training is another cache key)."""
    import roboscale.tokenize.image as image_tokenizers

    def build(folder: Path) -> Path:
        settings = partial(image_tokenizers.VQTrainingSettings, steps=VQ_TEST_STEPS)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(image_tokenizers, "VQTrainingSettings", settings)
            return train_run(
                image_dataset,
                folder / "run",
                task="wm",
                observation="image",
                image_tokenizer="vq:32@16",
                steps=20,
                context_steps=4,
            )

    return built_once(tmp_path_factory, "wm-image", build)


@pytest.fixture(scope="session")
def image_state_world_model(image_dataset, tmp_path_factory) -> Path:
    """A world model seeing the image (patch:8 patches) and the state, a few steps."""

    def build(folder: Path) -> Path:
        return train_run(
            image_dataset,
            folder / "run",
            task="wm",
            observation="image+state",
            image_tokenizer="patch:8",
            steps=10,
            context_steps=4,
        )

    return built_once(tmp_path_factory, "wm-image-state", build)
