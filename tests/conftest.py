from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """Small fixtures copied from ../shared/anchors (real published data, a LeRobot-written dataset)."""
    return FIXTURES


@pytest.fixture(scope="session")
def pointmass_dataset(tmp_path_factory) -> Path:
    """A small generated pointmass dataset (both tasks, noisy expert), shared by the training tests."""
    from roboscale.data import GenerationSpec, Quality, generate

    spec = GenerationSpec(env="pointmass", episodes=120, quality=Quality(action_noise=0.1), validation_fraction=0.2)
    return generate(spec, tmp_path_factory.mktemp("datasets") / "pointmass").out
