from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    """Small fixtures copied from ../shared/anchors (real published data)."""
    return DATA
