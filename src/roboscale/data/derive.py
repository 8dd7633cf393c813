"""Derived datasets: one LeRobot v3 folder per data level of a study, cut from source datasets.

A data level (an amount, a task subset, a mixture of sources) is a recipe of takes,
each the first K training episodes of a named source, optionally of some of its tasks::

    derive_dataset([SourceTake("expert", "data/expert", episodes=50),
                    SourceTake("noisy", "data/noisy", episodes=25)], "data/level-3", reference="expert")

The derived folder's splits (``meta/info.json``):

- ``train``: the selected training episodes of every take, take after take, each in its
  source's order (the generator's prefix property: the first K of a source are the first
  K of any larger level, so levels are nested);
- ``validation``: the reference source's whole validation split (the same at every level);
- ``validation.<name>``: every other source's validation split;
- ``heldout_tasks``: the reference source's held-out-task split, if it has one.

Episodes are renumbered contiguously; the task table is the union of the sources' tasks
(the reference's in its order, then any others), so a task keeps its index at every
level. The recipe (takes and source fingerprints) is recorded in ``meta/info.json``
under ``roboscale``; deriving the same recipe into the same folder again reuses it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from roboscale import __version__
from roboscale.data.dataset import EPISODE_COLUMNS, Dataset, open_dataset
from roboscale.data.layout import INFO_PATH, STAT_NAMES, Feature, frame_features
from roboscale.data.stats import Stats
from roboscale.data.writer import DatasetWriter, Episode, check_destination
from roboscale.errors import BadInputError
from roboscale.files import read_json_object

DERIVE_FORMAT = 1
"""Version of the derivation: a recipe recorded by another version is derived afresh."""
PRIMARY_SPLIT = "validation"
HELDOUT_SPLIT = "heldout_tasks"
SOURCE_NAME = re.compile(r"[A-Za-z0-9_-]+")
COPIED_COLUMNS = ("observation.state", "action", "expert.action", "next.reward", "next.success")
"""Per-frame features a derived dataset copies from its sources (the writer renumbers the rest)."""
_NOT_EXTRA = {*EPISODE_COLUMNS, "tasks", "task", "split", "success", "source", "source_episode_index"}


@dataclass(frozen=True)
class SourceTake:
    """What one source contributes to a derived dataset's training split."""

    name: str
    """Source name, e.g. "expert", "noisy" (letters, digits, _ and -; names the ``validation.<name>`` split)."""
    path: str
    """Source dataset folder (LeRobot v3)."""
    episodes: int | None = None
    """The first K training episodes (after the task filter); None: all of them."""
    tasks: tuple[str, ...] | None = None
    """Only these training tasks; None: every training task."""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(Path(self.path).resolve()),
            "episodes": self.episodes,
            "tasks": None if self.tasks is None else list(self.tasks),
        }


@dataclass(frozen=True)
class _Source:
    """An opened source and the training episodes it contributes."""

    take: SourceTake
    dataset: Dataset
    train: pd.DataFrame
    """The selected training episodes (rows of ``dataset.episodes``), in order."""

    def split_rows(self, split: str) -> pd.DataFrame:
        return _split_rows(self.dataset, split)


def _split_rows(dataset: Dataset, split: str) -> pd.DataFrame:
    """The rows of ``dataset.episodes`` in ``split``, in episode order."""
    episodes = dataset.episodes
    return episodes[episodes["split"] == split].sort_values("episode_index", kind="stable")


def derive_dataset(takes: Sequence[SourceTake], out: str | Path, *, reference: str, overwrite: bool = False) -> Dataset:
    """Write the derived dataset of ``takes`` at ``out`` and return it opened.

    ``reference`` names the take whose source gives the primary validation split and the
    held-out tasks. If ``out`` already holds a dataset derived with the same recipe (the
    same takes of sources with the same fingerprints), it is returned without rewriting;
    a folder derived with another recipe is replaced only with ``overwrite``. Every check
    (names, features, amounts, tasks) runs before anything is written; the folder is
    assembled beside ``out`` and renamed into place.
    """
    out = Path(out)
    sources = _open_sources(takes, reference, out)
    recipe = _recipe(sources, reference)
    existing = recorded_recipe(out)
    if existing is not None and _comparable(existing) == _comparable(recipe):
        return open_dataset(out)
    if existing is not None and not overwrite:
        raise BadInputError(
            f"{out} holds a dataset derived with another recipe (other takes, or sources that changed): "
            "choose another --out or pass --overwrite to replace it"
        )
    check_destination(out, overwrite)
    _write(sources, reference, recipe, out, overwrite)
    return open_dataset(out)


def recorded_recipe(root: str | Path) -> dict | None:
    """The recipe a derived dataset at ``root`` was made with (None: no derived dataset there)."""
    path = Path(root) / INFO_PATH
    if not path.is_file():
        return None
    try:
        info = read_json_object(path, "", "")
    except BadInputError:
        return None
    section = info.get("roboscale")
    derived = section.get("derived") if isinstance(section, dict) else None
    return derived if isinstance(derived, dict) else None


# -- checks -------------------------------------------------------------------------------


def _open_sources(takes: Sequence[SourceTake], reference: str, out: Path) -> dict[str, _Source]:
    """Every take's source, opened and checked, with the episodes it contributes."""
    takes = list(takes)
    _check_takes(takes, reference, out)
    datasets = {take.name: open_dataset(take.path) for take in takes}
    _check_compatible(datasets, reference)
    main = datasets[reference]
    if PRIMARY_SPLIT not in main.splits or len(main.splits[PRIMARY_SPLIT]) == 0:
        raise BadInputError(
            f"reference source {reference!r} ({main.root}) has no validation episodes: "
            "the derived dataset's validation set comes from it; give a reference with a validation split"
        )
    heldout = _split_tasks(main, HELDOUT_SPLIT)
    sources = {
        take.name: _Source(
            take,
            datasets[take.name],
            _training_episodes(take, _split_rows(datasets[take.name], "train"), heldout, reference),
        )
        for take in takes
    }
    if sum(len(source.train) for source in sources.values()) == 0:
        raise BadInputError("the takes select no training episodes: give at least one take with episodes >= 1")
    return sources


def _check_takes(takes: list[SourceTake], reference: str, out: Path) -> None:
    if not takes:
        raise BadInputError("no sources given: name at least one (--from NAME=PATH)")
    names = [take.name for take in takes]
    for take in takes:
        if not SOURCE_NAME.fullmatch(take.name):
            raise BadInputError(f"source name {take.name!r}: use letters, digits, _ and - only (e.g. expert)")
        if take.episodes is not None and (
            isinstance(take.episodes, bool) or not isinstance(take.episodes, int) or take.episodes < 0
        ):
            raise BadInputError(
                f"source {take.name!r}: episodes={take.episodes!r} must be a whole number >= 0 (or none: all)"
            )
        if Path(take.path).resolve() == out.resolve():
            raise BadInputError(f"--out {out} is source {take.name!r} itself: derive into another folder")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BadInputError(f"source name(s) {', '.join(duplicates)} given twice: give each source its own name")
    if reference not in names:
        raise BadInputError(f"reference {reference!r} is not one of the sources ({', '.join(names)}): name one of them")


def _check_compatible(datasets: dict[str, Dataset], reference: str) -> None:
    """Every source has the reference's state and action shapes and control rate."""
    main = datasets[reference]
    for name, dataset in datasets.items():
        for feature in ("observation.state", "action"):
            ours, theirs = main.features[feature].shape, dataset.features[feature].shape
            if ours != theirs:
                raise BadInputError(
                    f"sources differ in {feature}: {reference!r} has shape {list(ours)}, {name!r} has "
                    f"{list(theirs)}; mix only sources of the same robot and observation space"
                )
        if dataset.fps != main.fps:
            raise BadInputError(
                f"sources differ in control rate: {reference!r} records {main.fps} fps, {name!r} {dataset.fps} fps; "
                "mix only sources recorded at the same rate"
            )


def _split_tasks(dataset: Dataset, split: str) -> list[str]:
    """The tasks of a split's episodes, in order of first appearance."""
    return list(dict.fromkeys(dataset.episodes.loc[dataset.episodes["split"] == split, "task"]))


def _training_episodes(take: SourceTake, rows: pd.DataFrame, heldout: list[str], reference: str) -> pd.DataFrame:
    """The first ``take.episodes`` training episodes of the take's tasks."""
    available = list(dict.fromkeys(rows["task"]))
    if take.tasks is not None:
        held = [task for task in take.tasks if task in heldout]
        if held:
            raise BadInputError(
                f"source {take.name!r}: task(s) {', '.join(held)} are held-out tasks of the reference "
                f"{reference!r}; a held-out task cannot also be a training task"
            )
        unknown = [task for task in take.tasks if task not in available]
        if unknown:
            raise BadInputError(
                f"source {take.name!r} has no training task(s) {', '.join(unknown)}; "
                f"its training tasks are {', '.join(available)}"
            )
        rows = rows[rows["task"].isin(take.tasks)]
    else:
        clash = [task for task in available if task in heldout]
        if clash and take.name != reference:
            raise BadInputError(
                f"source {take.name!r} trains on {', '.join(clash)}, held-out task(s) of the reference "
                f"{reference!r}: give this source's tasks without them (or generate it with the same held-out tasks)"
            )
    if take.episodes is not None:
        if take.episodes > len(rows):
            of_tasks = "" if take.tasks is None else f" of task(s) {', '.join(take.tasks)}"
            raise BadInputError(
                f"source {take.name!r} has {len(rows)} training episodes{of_tasks}, {take.episodes} asked for: "
                f"ask for at most {len(rows)} (or generate more)"
            )
        rows = rows.iloc[: take.episodes]
    return rows


# -- the recipe ---------------------------------------------------------------------------


def _recipe(sources: dict[str, _Source], reference: str) -> dict:
    """What the derived dataset is made of: enough to tell whether a folder is current."""
    return {
        "format": DERIVE_FORMAT,
        "reference": reference,
        "takes": [source.take.to_dict() for source in sources.values()],
        "fingerprints": {name: source.dataset.fingerprint() for name, source in sources.items()},
    }


def _comparable(recipe: dict) -> dict:
    """The recipe without source paths: a source moved elsewhere with the same bytes is the same source."""
    takes = [{key: value for key, value in take.items() if key != "path"} for take in recipe.get("takes", [])]
    return {**recipe, "takes": takes}


# -- writing ------------------------------------------------------------------------------


def _write(sources: dict[str, _Source], reference: str, recipe: dict, out: Path, overwrite: bool) -> None:
    main = sources[reference].dataset
    with_expert = all("expert.action" in source.dataset.features for source in sources.values())
    features = frame_features(
        _dimension_names(main.features["observation.state"], "state"),
        _dimension_names(main.features["action"], "action"),
        with_expert_action=with_expert,
    )
    columns = [name for name in COPIED_COLUMNS if name != "expert.action" or with_expert]
    frames = {name: _source_frames(source.dataset, columns) for name, source in sources.items()}
    stats = {name: _recorded_episode_stats(source.dataset, columns) for name, source in sources.items()}
    extras = _common_extra_columns(sources)
    provenance = {
        "generator": "roboscale data derive",
        "roboscale_version": __version__,
        "source": _describe(sources, reference),
        "recipe": recipe,
        "sources": {name: source.dataset.provenance for name, source in sources.items()},
        **_simulator_context(sources, reference),
    }
    with DatasetWriter(
        out,
        features=features,
        tasks=_task_table(sources, reference),
        fps=main.fps,
        robot_type=main.info.get("robot_type") or "unknown",
        provenance=provenance,
        overwrite=overwrite,
        extra_info={"roboscale": {"derived": recipe}},
    ) as writer:
        for name, rows, split in _episode_plan(sources, reference):
            for row in rows.to_dict("records"):
                known = stats[name].get(int(row["episode_index"])) if stats[name] else None
                writer.add(_episode(row, frames[name], name, extras), split, known)


def _describe(sources: dict[str, _Source], reference: str) -> str:
    """One line for `roboscale data info`: which episodes of which source."""
    parts = [
        f"{name} {len(source.train)} of {source.dataset.root.resolve()}"
        + ("" if source.take.tasks is None else f" (tasks {', '.join(source.take.tasks)})")
        for name, source in sources.items()
    ]
    return f"derived: {'; '.join(parts)}; reference {reference}"


def _simulator_context(sources: dict[str, _Source], reference: str) -> dict:
    """What `roboscale eval` needs to roll a policy out in the reference's simulator: its
    generation spec (the env), episode length, and the tasks trained on and held out."""
    main = sources[reference].dataset.provenance
    if not main.get("spec"):
        return {}  # imported data: no simulator recorded
    trained = list(dict.fromkeys(task for source in sources.values() for task in source.train["task"]))
    order = _task_table(sources, reference)
    by_split = {"train": sorted(trained, key=order.index)}
    held = (main.get("tasks_by_split") or {}).get(HELDOUT_SPLIT)
    if held:
        by_split[HELDOUT_SPLIT] = list(held)
    context = {key: main[key] for key in ("spec", "env_versions", "max_steps", "fps") if key in main}
    return {**context, "tasks_by_split": by_split}


def _episode_plan(sources: dict[str, _Source], reference: str) -> list[tuple[str, pd.DataFrame, str]]:
    """(source, episodes, split) in writing order; each split's episodes are contiguous."""
    plan = [(name, source.train, "train") for name, source in sources.items()]
    plan.append((reference, sources[reference].split_rows(PRIMARY_SPLIT), PRIMARY_SPLIT))
    plan += [
        (name, source.split_rows(PRIMARY_SPLIT), f"{PRIMARY_SPLIT}.{name}")
        for name, source in sources.items()
        if name != reference
    ]
    plan.append((reference, sources[reference].split_rows(HELDOUT_SPLIT), HELDOUT_SPLIT))
    return [(name, rows, split) for name, rows, split in plan if len(rows)]


def _task_table(sources: dict[str, _Source], reference: str) -> list[str]:
    """The reference's tasks in its order, then every other source's new tasks in theirs."""
    tasks = list(sources[reference].dataset.tasks)
    for source in sources.values():
        tasks += [task for task in source.dataset.tasks if task not in tasks]
    return tasks


def _source_frames(dataset: Dataset, columns: list[str]) -> dict[str, np.ndarray]:
    present = [name for name in columns if name in dataset.features]
    frames = dataset.frames(present)
    n = dataset.total_frames
    frames.setdefault("next.reward", np.zeros(n, np.float32))
    frames.setdefault("next.success", np.zeros(n, bool))
    return frames


def _recorded_episode_stats(dataset: Dataset, features: list[str]) -> dict[int, dict[str, Stats]] | None:
    """Per-episode statistics of the ``features`` the source has, as its episode files record
    them: episode index -> feature -> stat -> per-dimension array (None when a column is
    missing; the writer then computes them). Copied episodes keep their values, so their
    statistics need not be computed again."""
    present = [name for name in features if name in dataset.features]
    columns = [f"stats/{name}/{stat}" for name in present for stat in STAT_NAMES]
    tables = []
    for path in sorted((dataset.root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        if not set(columns) <= set(pq.read_schema(path).names):
            return None
        tables.append(pq.read_table(path, columns=["episode_index", *columns]))
    table = pa.concat_tables(tables)
    arrays = {column: _rows_of_lists(table.column(column)) for column in columns}
    return {
        int(episode): {name: {stat: arrays[f"stats/{name}/{stat}"][row] for stat in STAT_NAMES} for name in present}
        for row, episode in enumerate(table.column("episode_index").to_pylist())
    }


def _rows_of_lists(column: pa.ChunkedArray) -> np.ndarray:
    """A column of equal-length lists as a (rows, length) array of the lists' type."""
    array = column.combine_chunks()
    return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), -1)


def _common_extra_columns(sources: dict[str, _Source]) -> list[str]:
    """Episode metadata columns (e.g. config_id, policy) every source has: carried over."""
    common = None
    for source in sources.values():
        names = [
            c for c in source.dataset.episodes.columns if c not in _NOT_EXTRA and not c.startswith(("stats/", "meta/"))
        ]
        common = names if common is None else [name for name in common if name in names]
    return common or []


def _episode(row: dict, frames: dict[str, np.ndarray], source: str, extras: list[str]) -> Episode:
    span = slice(int(row["dataset_from_index"]), int(row["dataset_to_index"]))
    n = span.stop - span.start
    extra = {name: _plain(row[name]) for name in extras}
    extra.update(source=source, source_episode_index=int(row["episode_index"]))
    return Episode(
        task=row["task"],
        states=frames["observation.state"][span].reshape(n, -1),
        actions=frames["action"][span].reshape(n, -1),
        rewards=frames["next.reward"][span].reshape(n),
        successes=frames["next.success"][span].reshape(n),
        expert_actions=frames["expert.action"][span].reshape(n, -1) if "expert.action" in frames else None,
        extra=extra,
    )


def _plain(value):
    """A numpy scalar as the Python value parquet metadata rows take."""
    return value.item() if isinstance(value, np.generic) else value


def _dimension_names(feature: Feature, prefix: str) -> tuple[str, ...]:
    return feature.names if feature.names else tuple(f"{prefix}_{i}" for i in range(feature.size))
