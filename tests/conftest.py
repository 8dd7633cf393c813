from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """Small fixtures copied from ../shared/anchors (real published data, a LeRobot-written dataset)."""
    return FIXTURES
