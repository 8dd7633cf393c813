"""Opening validates: every damaged dataset gives one clear error naming the file."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roboscale.data import GenerationSpec, generate, open_dataset
from roboscale.errors import BadInputError


@pytest.fixture
def dataset_path(tmp_path):
    return generate(GenerationSpec(episodes=12), tmp_path / "ds").out


def test_reads_a_dataset_written_by_lerobot_itself(fixtures_dir):
    dataset = open_dataset(fixtures_dir / "lerobot_v3_sample")
    assert len(dataset.episodes) == 3 and dataset.total_frames == 18
    assert dataset.tasks == ["reach the goal", "push the block"]
    assert list(dataset.episodes["task"]) == ["reach the goal", "push the block", "reach the goal"]
    frames = dataset.frames(["observation.state", "action", "next.success"])
    assert frames["observation.state"].shape == (18, 4) and frames["action"].dtype == np.float32
    assert frames["next.success"].sum() == 3


def rewrite_data(path, change):
    file = next((path / "data").rglob("*.parquet"))
    table = change(pq.read_table(file))
    pq.write_table(table, file)
    return file


def test_nan_in_actions_names_the_file_and_row(dataset_path):
    def poison(table):
        actions = table.column("action").combine_chunks()
        flat = actions.flatten().to_numpy(zero_copy_only=False).copy()
        flat[7] = np.nan
        fixed = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), 2)
        return table.set_column(table.schema.get_field_index("action"), "action", fixed)

    file = rewrite_data(dataset_path, poison)
    dataset = open_dataset(dataset_path)
    with pytest.raises(BadInputError, match=rf"{file}: column action has NaN or inf values \(first at row 3\)"):
        dataset.frames()


def test_wrong_dimensions_are_caught_on_open(dataset_path):
    def widen(table):
        states = table.column("observation.state").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        wider = np.concatenate([states.reshape(-1, 8), np.zeros((len(table), 1), np.float32)], axis=1)
        column = pa.FixedSizeListArray.from_arrays(pa.array(wider.reshape(-1)), 9)
        return table.set_column(0, "observation.state", column)

    rewrite_data(dataset_path, widen)
    with pytest.raises(BadInputError, match="holds 9 values per frame, but info.json declares shape \\[8\\]"):
        open_dataset(dataset_path)


def test_missing_column_and_wrong_dtype(dataset_path):
    rewrite_data(dataset_path, lambda t: t.drop_columns(["next.success"]))
    with pytest.raises(BadInputError, match="has no column next.success"):
        open_dataset(dataset_path)


def edit_info(path, change):
    info_file = path / "meta" / "info.json"
    info = json.loads(info_file.read_text())
    change(info)
    info_file.write_text(json.dumps(info))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda info: info.update(codebase_version="v2.1"), "codebase_version v2.1"),
        (lambda info: info.pop("fps"), "lacks fps"),
        (lambda info: info["features"].pop("action"), "declares no action feature"),
        (lambda info: info.update(total_frames=5), "total_frames=5"),
        (lambda info: info.update(splits={"train": "0-12"}), "expected 'start:end'"),
    ],
)
def test_inconsistent_info_json(dataset_path, change, message):
    edit_info(dataset_path, change)
    with pytest.raises(BadInputError, match=message):
        open_dataset(dataset_path)


def test_malformed_or_missing_metadata(dataset_path, tmp_path):
    (dataset_path / "meta" / "info.json").write_text("{not json")
    with pytest.raises(BadInputError, match="info.json is not valid JSON"):
        open_dataset(dataset_path)
    with pytest.raises(BadInputError, match="not found"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="info.json is missing"):
        open_dataset(tmp_path / "empty")


def test_zero_length_episode(dataset_path):
    file = next((dataset_path / "meta" / "episodes").rglob("*.parquet"))
    table = pq.read_table(file)
    lengths = table.column("length").to_numpy().copy()
    lengths[2] = 0
    pq.write_table(table.set_column(table.schema.get_field_index("length"), "length", pa.array(lengths)), file)
    with pytest.raises(BadInputError, match="episode 2 has length 0"):
        open_dataset(dataset_path)


def test_missing_data_file_and_stats(dataset_path):
    shutil.rmtree(dataset_path / "data")
    with pytest.raises(BadInputError, match="file-000.parquet is missing"):
        open_dataset(dataset_path)
    (dataset_path / "meta" / "stats.json").unlink()
    with pytest.raises(BadInputError, match="stats.json is missing"):
        open_dataset(dataset_path, check_files=False)
