"""Fixtures shared by every test folder. The expensive ones (datasets, a tiny study) are
built once per test run, shared by every xdist worker (:func:`tests.helpers.built_once`):
treat them as read-only, and copy them (``copy_tiny_study``, ``seed_dataset``) when a test
must change them."""

import os
import shutil
import tempfile
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Every core already runs a worker: BLAS threads on top only contend (with one busy
    # neighbour, a numpy-heavy fit test took twice the CPU time). Set before numpy loads;
    # the CLI subprocesses inherit it. Training and rollouts set torch's threads themselves.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

# Image tokenizers trained by the tests are cached for this test run only (shared by its xdist
# workers and the CLI subprocesses they start), never in the user's ~/.cache.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
os.environ.setdefault("ROBOSCALE_CACHE", os.path.join(tempfile.gettempdir(), f"roboscale-test-cache-{_RUN}"))

import pytest
from tests.helpers import built_once, seed_dataset, study_toml, tiny_study_dict
from tests.helpers import run_cli as _run_cli

FIXTURES = Path(__file__).parent / "fixtures"

STUDY_FIXTURES = {"tiny_study", "copy_tiny_study", "seeded_study"}
"""Session fixtures that train whole studies (a minute or more each)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the trained tiny studies first, in their usual order, then the rest.
    With ``--dist worksteal`` (pyproject) they stay with the first worker, which trains
    the studies once while the others run everything else (instead of waiting for it)."""
    items.sort(key=lambda item: not STUDY_FIXTURES & set(item.fixturenames))


@pytest.fixture
def fixtures_dir() -> Path:
    """Small fixtures copied from ../shared/anchors (real published data, a LeRobot-written dataset)."""
    return FIXTURES


@pytest.fixture(scope="session")
def run_cli():
    """run_cli(*args, cwd=None, env=None, timeout=300) -> CompletedProcess of `python -m roboscale ARGS`."""
    return _run_cli


@pytest.fixture(scope="session")
def pointmass_dataset(tmp_path_factory) -> Path:
    """A small generated pointmass dataset (both tasks, noisy expert), shared by the training tests."""
    from roboscale.data import GenerationSpec, Quality, generate

    spec = GenerationSpec(env="pointmass", episodes=120, quality=Quality(action_noise=0.1), validation_fraction=0.2)
    return built_once(tmp_path_factory, "pointmass", lambda folder: generate(spec, folder / "pointmass").out)


@pytest.fixture(scope="session")
def tiny_study_data(tmp_path_factory) -> Path:
    """The dataset every tiny study uses (its ``[data] generate`` table), generated once;
    :func:`tests.helpers.seed_dataset` copies it into a new study folder."""
    from roboscale.study import ensure_dataset, study_from_dict

    def build(folder: Path) -> Path:
        return Path(ensure_dataset(study_from_dict(tiny_study_dict(folder))))

    return built_once(tmp_path_factory, "tiny-data", build)


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, tiny_study_data):
    """The tiny study (9 finished runs, fitted at 100 resamples), run once per test run
    through ``run_study``; read-only. ``tiny_study.folder`` holds study.db and runs/, and
    ``tiny_study.folder.parent / "tiny.toml"`` is its study file."""
    from roboscale.study import load_study, run_study

    def build(root: Path):
        file = root / "tiny.toml"
        file.write_text(study_toml(tiny_study_dict(root / "tiny")))
        seed_dataset(tiny_study_data, root / "tiny")
        return run_study(load_study(file), bootstrap=100, write=False)

    return built_once(tmp_path_factory, "tiny-study", build)


@pytest.fixture
def copy_tiny_study(tiny_study, tmp_path):
    """copy_tiny_study(name) -> a writable copy of the tiny study's folder (its runs stay
    finished: run ids do not depend on where the study lives)."""

    def copy(name: str = "copy") -> Path:
        return Path(shutil.copytree(tiny_study.folder, tmp_path / name))

    return copy
