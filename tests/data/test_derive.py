"""Derived datasets: nested levels, mixtures of sources, task subsets, reuse, and bad input."""

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from roboscale.cli.data import _parse_take
from roboscale.cli.data import app as data_app
from roboscale.data import GenerationSpec, Quality, SourceTake, derive_dataset, generate, open_dataset
from roboscale.data.derive import recorded_recipe
from roboscale.data.layout import frame_features
from roboscale.data.writer import DatasetWriter, Episode
from roboscale.errors import BadInputError


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """Pointmass sources made with one seed: expert, noisy (same tasks and configurations),
    and an expert one with ``push`` held out."""
    root = tmp_path_factory.mktemp("derive-sources")
    specs = {
        "expert": GenerationSpec(env="pointmass", episodes=60, validation_fraction=0.1),
        "noisy": GenerationSpec(env="pointmass", episodes=40, quality=Quality(action_noise=0.5)),
        "heldout": GenerationSpec(env="pointmass", episodes=30, heldout_tasks=("push",)),
    }
    return {name: generate(spec, root / name).out for name, spec in specs.items()}


def episode_arrays(dataset, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(task, states, actions) of each episode of ``split``, in order."""
    frames = dataset.frames(["observation.state", "action"])
    rows = dataset.episodes[dataset.episodes["split"] == split]
    return [
        (row.task, frames["observation.state"][row.dataset_from_index : row.dataset_to_index],
         frames["action"][row.dataset_from_index : row.dataset_to_index])
        for row in rows.itertuples()
    ]  # fmt: skip


def same_episodes(first, second) -> bool:
    return len(first) == len(second) and all(
        a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
        for a, b in zip(first, second, strict=True)
    )


def test_levels_are_nested_by_episode_content(sources, tmp_path):
    small = derive_dataset([SourceTake("expert", str(sources["expert"]), 10)], tmp_path / "k10", reference="expert")
    large = derive_dataset([SourceTake("expert", str(sources["expert"]), 20)], tmp_path / "k20", reference="expert")
    source = open_dataset(sources["expert"])
    small_train, large_train = episode_arrays(small, "train"), episode_arrays(large, "train")
    assert len(small_train) == 10 and len(large_train) == 20
    assert same_episodes(small_train, large_train[:10])  # level K is the first K of level 2K
    assert same_episodes(large_train, episode_arrays(source, "train")[:20])  # and the source's first 20
    assert not same_episodes(large_train[10:], large_train[:10])
    # The validation set is the source's whole validation split, the same at every level.
    assert same_episodes(episode_arrays(small, "validation"), episode_arrays(source, "validation"))
    assert same_episodes(episode_arrays(large, "validation"), episode_arrays(source, "validation"))
    assert small.splits == {"train": range(10), "validation": range(10, 16)}
    assert list(small.episodes["episode_index"]) == list(range(16))
    assert list(small.episodes["source_episode_index"]) == list(range(10)) + list(range(54, 60))
    assert small.total_frames == int(small.episodes["length"].sum())


def test_a_mixture_keeps_each_sources_validation_split_and_one_task_table(sources, tmp_path):
    takes = [SourceTake("expert", str(sources["expert"]), 20), SourceTake("noisy", str(sources["noisy"]), 8)]
    mixed = derive_dataset(takes, tmp_path / "mix", reference="expert")
    assert mixed.splits == {"train": range(28), "validation": range(28, 34), "validation.noisy": range(34, 38)}
    train = mixed.episodes[mixed.episodes["split"] == "train"]
    assert list(train["source"]) == ["expert"] * 20 + ["noisy"] * 8
    noisy = open_dataset(sources["noisy"])
    assert same_episodes(episode_arrays(mixed, "train")[20:], episode_arrays(noisy, "train")[:8])
    assert same_episodes(episode_arrays(mixed, "validation.noisy"), episode_arrays(noisy, "validation"))
    # One task table (the reference's order); every frame's task_index names its episode's task.
    assert mixed.tasks == open_dataset(sources["expert"]).tasks == ["reach", "push"]
    frames = mixed.frames(["task_index", "episode_index"])
    names = np.array(mixed.tasks)[frames["task_index"]]
    by_episode = dict(zip(mixed.episodes["episode_index"], mixed.episodes["task"], strict=True))
    assert all(names == [by_episode[e] for e in frames["episode_index"]])
    assert list(mixed.episodes["config_id"][:3]) == [0, 0, 1]  # the generator's metadata carries over
    recipe = mixed.info["roboscale"]["derived"]
    assert recipe["reference"] == "expert" and [t["episodes"] for t in recipe["takes"]] == [20, 8]
    assert recipe["fingerprints"]["noisy"] == noisy.fingerprint()


def test_a_task_subset_takes_the_first_episodes_of_those_tasks(sources, tmp_path):
    take = SourceTake("expert", str(sources["expert"]), 5, tasks=("push",))
    derived = derive_dataset([take], tmp_path / "push", reference="expert")
    pushes = [episode for episode in episode_arrays(open_dataset(sources["expert"]), "train") if episode[0] == "push"]
    assert same_episodes(episode_arrays(derived, "train"), pushes[:5])
    assert derived.tasks == ["reach", "push"]  # the task table, and so every task's index, stays fixed
    assert len(episode_arrays(derived, "validation")) == 6  # validation: whole, both tasks


def test_held_out_tasks_come_from_the_reference(sources, tmp_path):
    derived = derive_dataset([SourceTake("ref", str(sources["heldout"]), 4)], tmp_path / "h", reference="ref")
    source = open_dataset(sources["heldout"])
    assert same_episodes(episode_arrays(derived, "heldout_tasks"), episode_arrays(source, "heldout_tasks"))
    assert {task for task, _, _ in episode_arrays(derived, "heldout_tasks")} == {"push"}
    assert set(derived.splits) == {"train", "validation", "heldout_tasks"}


def test_a_derived_dataset_names_the_simulator_and_the_tasks_a_policy_is_evaluated_on(sources, tmp_path):
    """`roboscale eval` reads the env, episode length and trained / held-out tasks from provenance."""
    from roboscale.evaluate.runs import dataset_env

    take = SourceTake("ref", str(sources["heldout"]), 4)
    derived = derive_dataset([take], tmp_path / "h", reference="ref")
    assert dataset_env(derived) == "pointmass"
    assert derived.provenance["tasks_by_split"] == {"train": ["reach"], "heldout_tasks": ["push"]}
    assert derived.provenance["max_steps"] == open_dataset(sources["heldout"]).provenance["max_steps"]
    subset = derive_dataset([SourceTake("e", str(sources["expert"]), 3, ("push",))], tmp_path / "p", reference="e")
    assert subset.provenance["tasks_by_split"] == {"train": ["push"]}  # only the tasks trained on


def test_the_same_recipe_is_reused_and_another_is_refused(sources, tmp_path):
    takes = [SourceTake("expert", str(sources["expert"]), 10)]
    out = tmp_path / "level"
    derive_dataset(takes, out, reference="expert")
    stamps = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    again = derive_dataset(takes, out, reference="expert")
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == stamps  # nothing rewritten
    assert again.fingerprint() == open_dataset(out).fingerprint()
    other = [SourceTake("expert", str(sources["expert"]), 12)]
    with pytest.raises(BadInputError, match="another recipe.*--overwrite"):
        derive_dataset(other, out, reference="expert")
    assert len(derive_dataset(other, out, reference="expert", overwrite=True).episode_indices("train")) == 12
    # Same bytes from the same recipe, wherever it is written.
    derive_dataset(takes, tmp_path / "twin", reference="expert")
    derive_dataset(takes, out, reference="expert", overwrite=True)
    assert open_dataset(tmp_path / "twin").fingerprint() == open_dataset(out).fingerprint()


def test_a_changed_source_is_derived_afresh(sources, tmp_path):
    copy = tmp_path / "source"
    shutil.copytree(sources["expert"], copy)
    out = tmp_path / "level"
    derive_dataset([SourceTake("expert", str(copy), 10)], out, reference="expert")
    provenance = copy / "meta" / "roboscale.json"
    provenance.write_text(provenance.read_text().replace("pointmass", "pointmass "))
    with pytest.raises(BadInputError, match="another recipe"):  # the source's fingerprint changed
        derive_dataset([SourceTake("expert", str(copy), 10)], out, reference="expert")


def write_synthetic(root: Path, state_dims: int) -> Path:
    """A 4-episode dataset (3 train, 1 validation) with ``state_dims`` state dimensions."""
    rng = np.random.default_rng(0)
    features = frame_features(tuple(f"s{i}" for i in range(state_dims)), ("a0", "a1"))
    with DatasetWriter(root, features=features, tasks=["reach"], fps=10, robot_type="x", provenance={}) as writer:
        for index in range(4):
            actions = rng.normal(size=(5, 2)).astype(np.float32)
            episode = Episode("reach", rng.normal(size=(5, state_dims)).astype(np.float32), actions,
                              np.zeros(5, np.float32), np.zeros(5, bool), actions)  # fmt: skip
            writer.add(episode, "train" if index < 3 else "validation")
    return root


@pytest.mark.parametrize(
    ("make_takes", "message"),
    [
        (lambda s, t: [SourceTake("expert", s["expert"], 55)], "'expert' has 54 training episodes, 55 asked for"),
        (lambda s, t: [SourceTake("expert", s["expert"], 5, ("pull",))], "no training task.*pull.*reach, push"),
        (lambda s, t: [SourceTake("ref", s["heldout"], 2, ("push",))], "push are held-out tasks of the reference"),
        (
            lambda s, t: [SourceTake("ref", s["heldout"], 2), SourceTake("noisy", s["noisy"], 2)],
            "'noisy' trains on push, held-out task",
        ),
        (
            lambda s, t: [SourceTake("ref", s["expert"], 2), SourceTake("odd", str(write_synthetic(t / "odd", 3)))],
            r"observation.state: 'ref' has shape \[8\], 'odd' has \[3\]",
        ),
        (lambda s, t: [SourceTake("a", s["expert"]), SourceTake("a", s["noisy"])], "name.*a given twice"),
        (lambda s, t: [SourceTake("a.b", s["expert"])], "source name 'a.b'"),
        (lambda s, t: [SourceTake("expert", s["expert"], -1)], "episodes=-1"),
        (lambda s, t: [SourceTake("ref", s["expert"], 0)], "no training episodes"),
        (lambda s, t: [], "no sources"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(sources, tmp_path, make_takes, message):
    takes = make_takes({name: str(path) for name, path in sources.items()}, tmp_path)
    reference = takes[0].name if takes else "expert"
    with pytest.raises(BadInputError, match=message) as error:
        derive_dataset(takes, tmp_path / "out", reference=reference)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_unknown_reference_and_recipe_of_a_plain_dataset(sources, tmp_path):
    with pytest.raises(BadInputError, match="reference 'gold' is not one of the sources \\(expert\\)"):
        derive_dataset([SourceTake("expert", str(sources["expert"]))], tmp_path / "out", reference="gold")
    assert recorded_recipe(sources["expert"]) is None and recorded_recipe(tmp_path / "nowhere") is None


def test_cli_derives_and_reuses(sources, tmp_path):
    args = ["derive", "--from", f"expert={sources['expert']}:12", "--from", f"noisy={sources['noisy']}:3"]
    args += ["--out", str(tmp_path / "level")]
    first = CliRunner().invoke(data_app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "train expert 12, noisy 3 episodes; validation 6, validation.noisy 4" in first.output
    assert "reused (same recipe)" in CliRunner().invoke(data_app, args, env={"COLUMNS": "200"}).output


def test_from_values_name_a_source_and_optionally_its_episodes():
    assert _parse_take("expert=data/a:b:100", None) == SourceTake("expert", "data/a:b", 100)
    assert _parse_take("noisy=data/n", ("push",)) == SourceTake("noisy", "data/n", None, ("push",))
    with pytest.raises(BadInputError, match="write NAME=PATH or NAME=PATH:EPISODES"):
        _parse_take("data/expert", None)


def test_copied_statistics_are_those_the_writer_computes(sources, tmp_path):
    """Episode statistics of copied features come from the source's episode files; without
    them the writer computes them: the same bytes either way."""
    bare = Path(shutil.copytree(sources["expert"], tmp_path / "bare"))
    for path in (bare / "meta" / "episodes").rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.select([n for n in table.column_names if not n.startswith("stats/")]), path)
    takes = {"copied": sources["expert"], "computed": bare}
    for name, path in takes.items():
        derive_dataset([SourceTake("expert", str(path), 30)], tmp_path / name, reference="expert")
    for file in ("meta/stats.json", "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet"):
        assert (tmp_path / "copied" / file).read_bytes() == (tmp_path / "computed" / file).read_bytes(), file


def test_a_reference_may_give_only_the_validation_set(sources, tmp_path):
    """A quality level: train on noisy episodes, score on the clean expert's validation split."""
    takes = [SourceTake("expert", str(sources["expert"]), 0), SourceTake("noisy", str(sources["noisy"]), 5)]
    level = derive_dataset(takes, tmp_path / "q", reference="expert")
    noisy, expert = open_dataset(sources["noisy"]), open_dataset(sources["expert"])
    assert same_episodes(episode_arrays(level, "train"), episode_arrays(noisy, "train")[:5])
    assert same_episodes(episode_arrays(level, "validation"), episode_arrays(expert, "validation"))
    assert set(level.splits) == {"train", "validation", "validation.noisy"}
