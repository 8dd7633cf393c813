"""The run store's standard-error columns, and stores made before they existed."""

import math
import sqlite3

from roboscale.study.store import SCHEMA, RunStore

OLD_SCHEMA = SCHEMA.replace("    loss_se REAL,\n", "").replace("    val_loss_se REAL,\n", "")


def test_a_store_without_the_se_columns_still_loads_and_then_records_them(tmp_path):
    path = tmp_path / "study.db"
    assert OLD_SCHEMA != SCHEMA
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_SCHEMA)
        connection.execute(
            "INSERT INTO runs (run_id, status, task, tokenizer, seed, d_model, n_layer, budget, N, D, C, loss, "
            "config, updated) VALUES ('old', 'finished', 'bc', 'uniform:256', 0, 8, 1, 1e11, 10, 20, 30, 2.5, '{}', 0)"
        )
        connection.execute("INSERT INTO curves (run_id, step, tokens, flops, val_loss) VALUES ('old', 1, 2, 3, 2.5)")
    store = RunStore(path)
    runs, curves = store.runs(), store.curves()
    assert runs["loss"].tolist() == [2.5] and math.isnan(runs["loss_se"].iloc[0])
    assert runs["loss_se"].dtype == float and curves["val_loss_se"].dtype == float
    assert math.isnan(curves["val_loss_se"].iloc[0])
    RunStore(path)  # opening again adds nothing twice
    store.add_planned(
        [
            {
                "run_id": "new",
                "task": "bc",
                "tokenizer": "uniform:256",
                "seed": 1,
                "d_model": 8,
                "n_layer": 1,
                "budget": 1e11,
                "config": {},
            }
        ]
    )
    curve = [{"step": 5, "tokens": 6, "flops": 7, "val_loss": 2.0, "val_loss_se": 0.01}]
    record = {"N": 10, "D": 20, "C": 30, "final": {"val_loss": 2.0, "val_loss_se": 0.01}, "learning_curve": curve}
    store.record_finished("new", record)
    runs, curves = store.runs(), store.curves()
    assert runs.set_index("run_id").loc["new", "loss_se"] == 0.01
    assert curves.set_index("run_id").loc["new", "val_loss_se"] == 0.01


def test_a_study_stores_each_runs_se_and_analyses_the_noise_budget(tiny_study):
    analysis = tiny_study.analysis
    finished = [run for run in analysis["runs"] if run["status"] == "finished"]
    assert len(finished) == 9 and all(0 < run["loss_se"] < 0.2 * run["loss"] for run in finished)
    curves = RunStore(tiny_study.folder / "study.db").curves()
    assert len(curves) > 9 and (curves["val_loss_se"] > 0).all()
    budget = analysis["groups"][0]["noise_budget"]
    assert len(budget["points"]) == 9 and {point["seeds"] for point in budget["points"]} == {1}
    assert budget["estimator_se_median"] > 0 and budget["seed_sd_median"] is None  # one seed: no seed SD
