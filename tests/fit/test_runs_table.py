import numpy as np
import pandas as pd
import pytest

from roboscale.errors import BadInputError
from roboscale.fit import load_runs

RUNS = pd.DataFrame(
    {
        "Model Size": [1e6, 2e6, 4e6, 8e6],
        "Training FLOP": [6e15, 1.2e16, 2.4e16, 4.8e16],
        "val": [3.1, 2.9, 2.8, 2.75],
        "task": ["push", "push", "reach", "reach"],
    }
)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl", ".tsv"])
def test_reads_every_format_with_mapped_columns(tmp_path, suffix):
    path = tmp_path / f"runs{suffix}"
    writers = {
        ".csv": lambda: RUNS.to_csv(path, index=False),
        ".tsv": lambda: RUNS.to_csv(path, index=False, sep="\t"),
        ".parquet": lambda: RUNS.to_parquet(path),
        ".jsonl": lambda: RUNS.to_json(path, orient="records", lines=True),
    }
    writers[suffix]()
    table = load_runs(path, n="Model Size", c="Training FLOP", loss="val")
    np.testing.assert_allclose(table.N, RUNS["Model Size"])
    np.testing.assert_allclose(table.D, RUNS["Training FLOP"] / (6 * RUNS["Model Size"]))  # D = C / 6N
    assert table.columns_used["D"] == "derived: C / (6 * N)"
    assert list(table.frame["task"]) == ["push", "push", "reach", "reach"]


def test_aliases_are_found_without_a_mapping():
    table = load_runs(RUNS.rename(columns={"val": "loss"}))
    assert table.columns_used["N"] == "Model Size"
    assert table.columns_used["C"] == "Training FLOP"


def test_flop_convention_is_an_option():
    frame = pd.DataFrame({"N": [1e6, 2e6], "D": [1e9, 1e9], "loss": [3.0, 2.9]})
    assert load_runs(frame).C[0] == 6e15
    assert load_runs(frame, flops_per_param_token=8).C[0] == 8e15


def test_drop_highest_loss_and_flop_range():
    table = load_runs(RUNS, loss="val", drop_highest_loss=1, max_flops=3e16)
    assert list(table.loss) == [2.9, 2.8]
    assert table.dropped == {"outside the FLOP range": 1, "highest loss": 1}


@pytest.mark.parametrize(
    "frame, options, message",
    [
        (pd.DataFrame(), {}, "empty"),
        (RUNS, {"n": "params"}, "column 'params' \\(given with --n\\) is not in .*available columns: Model Size"),
        (RUNS.drop(columns="val"), {}, "no loss column"),
        (pd.DataFrame({"N": [1.0, 2.0], "loss": [1.0, 2.0]}), {}, "no D column"),
        (RUNS.assign(val=[3.1, np.nan, 2.8, 2.7]), {"loss": "val"}, "1 of 4 rows .* invalid loss .*--drop-invalid"),
        (RUNS.assign(val=[3.1, -1, 2.8, 2.7]), {"loss": "val"}, "invalid loss"),
        (RUNS.assign(**{"Model Size": [0, 1, 2, 3]}), {"loss": "val"}, "invalid N"),
        (RUNS.assign(val=["a", "b", "c", "d"]), {"loss": "val"}, "invalid loss"),
    ],
)
def test_bad_tables_get_one_clear_error(frame, options, message):
    with pytest.raises(BadInputError, match=message):
        load_runs(frame, **options)


def test_drop_invalid_counts_what_it_left_out():
    table = load_runs(RUNS.assign(val=[3.1, np.inf, 2.8, 0.0]), loss="val", drop_invalid=True)
    assert len(table) == 2
    assert table.dropped == {"invalid (NaN, inf, zero or negative)": 2}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "not found"),
        ("runs.xlsx", b"x", "cannot tell the format"),
        ("runs.parquet", b"not parquet at all", "could not read"),
        ("runs.csv", b"", "could not read"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=message):
        load_runs(path)
