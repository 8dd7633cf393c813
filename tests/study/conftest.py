"""Tiny studies for the study tests, each in its own folder with the shared dataset copied
in (so no test generates data again)."""

from pathlib import Path

import pytest
from tests.helpers import SEEDED_CHANGES, built_once, seed_dataset, study_toml, tiny_study_dict

from roboscale.study import run_study, study_from_dict


@pytest.fixture(scope="session")
def seeded_study(tmp_path_factory, tiny_study_data):
    """The tiny study's seeded variant (:data:`tests.helpers.SEEDED_CHANGES`: 12 runs in 6
    stacked jobs), run once per test run through ``run_study`` without bootstrap; read-only.
    ``seeded_study.folder`` holds its study.db."""

    def build(root: Path):
        seed_dataset(tiny_study_data, root / "seeded")
        return run_study(study_from_dict(tiny_study_dict(root / "seeded", **SEEDED_CHANGES)), bootstrap=0, write=False)

    return built_once(tmp_path_factory, "seeded-study", build)


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
