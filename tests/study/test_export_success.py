"""`roboscale runs export` carries each run's closed-loop success rate, so a success law
can be fitted from the export alone (`roboscale fit power-law --y success --complement 1`)."""

import json

import numpy as np
import pandas as pd
import pytest

from roboscale.study import RunStore, study_from_dict
from roboscale.study.run import evaluation_settings

FAILURE_FLOOR, FAILURE_EXPONENT = 0.05, 0.5
"""The failure law the recorded success rates follow: 1 - success = E + A D^-alpha."""


def _evaluation(success: float, episodes: int = 40) -> dict:
    """A closed-loop result as ``PolicyEvaluation.to_dict()`` stores it (interval made up)."""
    mean = {
        "success_rate": success,
        "ci_low": max(success - 0.1, 0.0),
        "ci_high": min(success + 0.1, 1.0),
        "episodes": episodes,
        "mean_return": 0.0,
        "mean_length": 50.0,
        "failures": 0,
    }
    return {"mean": mean}


def _record_success_law(folder, run_ids) -> dict[str, float]:
    """Record, for ``run_ids``, success rates that follow the failure law exactly in D
    (with the study's evaluation settings); returns them by run id."""
    store = RunStore(folder / "study.db")
    settings = evaluation_settings(study_from_dict(store.study()["spec"]))
    runs = store.runs().set_index("run_id")
    scale = (1 - FAILURE_FLOOR - 0.4) * runs["D"].min() ** FAILURE_EXPONENT  # failure 0.6 at the smallest D
    success = {}
    for run_id in run_ids:
        success[run_id] = 1 - (FAILURE_FLOOR + scale * runs.loc[run_id, "D"] ** -FAILURE_EXPONENT)
        store.record_evaluation(run_id, settings, _evaluation(success[run_id]))
    return success


@pytest.mark.slow  # needs the session's tiny study (9 trained runs)
def test_export_has_each_runs_success_and_a_success_law_fits_from_it(run_cli, copy_tiny_study, tmp_path):
    folder = copy_tiny_study("evaluated")
    run_ids = sorted(RunStore(folder / "study.db").runs()["run_id"])
    evaluated = run_ids[:7]  # two runs are not evaluated: their success is empty
    success = _record_success_law(folder, evaluated)
    other = RunStore(folder / "study.db")
    other.record_evaluation(run_ids[-1], "closed-loop episodes=3 seed=9 envs=1", _evaluation(1.0))  # other settings

    for suffix in ("csv", "parquet"):
        out = tmp_path / f"runs.{suffix}"
        exported = run_cli("runs", "export", folder, "--out", out)
        assert exported.returncode == 0, exported.stderr
        table = (pd.read_csv if suffix == "csv" else pd.read_parquet)(out).set_index("run_id")
        assert len(table) == 9
        for run_id in run_ids:
            if run_id in success:
                assert table.loc[run_id, "success"] == pytest.approx(success[run_id], rel=1e-12)
                assert table.loc[run_id, "success_episodes"] == 40
                assert table.loc[run_id, "success_ci_low"] <= table.loc[run_id, "success"]
            else:  # not evaluated with the study's settings (one was, with others): empty
                assert np.isnan(table.loc[run_id, "success"]) and np.isnan(table.loc[run_id, "success_episodes"])

    fitted = run_cli(
        "fit", "power-law", tmp_path / "runs.csv", "--x", "D", "--y", "success", "--complement", "1",
        "--floor", "--bootstrap", "0", "--json",
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    law = json.loads(fitted.stdout)
    assert law["runs"]["dropped"] == {"without a value of D or success": 2} and law["n_points"] == 7
    assert law["alpha"] == pytest.approx(FAILURE_EXPONENT, rel=1e-3)
    assert law["E"] == pytest.approx(FAILURE_FLOOR, rel=1e-3)


@pytest.mark.slow  # needs the session's tiny study (9 trained runs)
def test_export_without_evaluations_has_an_empty_success_column(run_cli, tiny_study, tmp_path):
    out = tmp_path / "runs.csv"
    exported = run_cli("runs", "export", tiny_study.folder, "--out", out)
    assert exported.returncode == 0, exported.stderr
    table = pd.read_csv(out)
    assert len(table) == 9 and table["success"].isna().all()
    refused = run_cli("fit", "power-law", out, "--x", "D", "--y", "success", "--complement", "1")
    assert refused.returncode == 2 and "success is empty in every row" in refused.stderr
