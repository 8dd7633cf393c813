"""Tiny studies for the study tests, each in its own folder with the shared dataset copied
in (so no test generates data again)."""

import pytest

from roboscale.study import study_from_dict
from tests.helpers import seed_dataset, study_toml, tiny_study_dict


@pytest.fixture
def make_study(tmp_path, tiny_study_data):
    """make_study(name="study", **sweep_changes) -> a tiny StudySpec in tmp_path / name."""

    def make(name: str = "study", **sweep_changes):
        seed_dataset(tiny_study_data, tmp_path / name)
        return study_from_dict(tiny_study_dict(tmp_path / name, **sweep_changes))

    return make


@pytest.fixture
def tiny_study_toml(tmp_path, tiny_study_data):
    """tiny_study_toml(name="study", **sweep_changes) -> the path of a tiny study file."""

    def write(name: str = "study", **sweep_changes):
        seed_dataset(tiny_study_data, tmp_path / name)
        path = tmp_path / f"{name}.toml"
        path.write_text(study_toml(tiny_study_dict(tmp_path / name, **sweep_changes)))
        return path

    return write
