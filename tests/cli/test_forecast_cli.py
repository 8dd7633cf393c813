"""The forecast check through the CLI: `roboscale report` on a study with held-out runs, the
headline of every verdict, the terminal table, and `roboscale demo --check`'s study."""

from __future__ import annotations

import json
import sqlite3

import pytest
from rich.console import Console
from tests.helpers import TINY_BUDGETS, run_cli, tiny_study_dict

from roboscale.cli.study import forecast_check_table, group_headline
from roboscale.study import study_from_dict
from roboscale.study.demo import DEMO, demo_check_spec, demo_spec, with_holdout_budget
from roboscale.study.plan import plan_study

ISOFLOP = {"a": 0.4312, "b": 0.5688, "ci": {"a": [0.386, 0.528], "b": [0.472, 0.614]}}


def _group(status: str, reasons: list[str], laws: dict | None = None) -> dict:
    return {
        "task": "wm",
        "tokenizer": "uniform:256",
        "label": "wm · uniform:256",
        "isoflop": ISOFLOP,
        "audit": {"parametric": {"mean_abs_relative_error": 0.021}},
        "forecast_check": {"held_out_budgets": [6e12], "factor": 10.0, "n_held_out": 3, "laws": laws or {}},
        "verdict": {"status": status, "reasons": reasons},
    }


RUNS = [{"status": "finished", "task": "wm", "tokenizer": "uniform:256"}]


def test_a_failing_headline_says_the_law_does_not_extrapolate_and_shows_no_exponent():
    reason = "parametric forecast of the held-out 6e12 FLOPs off by +420.0% (mean |error| > 5%)"
    line = group_headline(_group("fails", [reason]), RUNS)
    assert line == (
        f"[bold]wm · uniform:256[/bold]: the law does not extrapolate: {reason}; "
        "exponents not shown as results — see the report"
    )


def test_a_passing_headline_shows_the_exponents_and_the_check():
    laws = {"parametric": {"n_points": 3, "mean_abs_relative_error": 0.0213, "n_outside": 0}}
    line = group_headline(_group("holds", ["..."], laws), RUNS)
    assert line == (
        "[bold]wm · uniform:256[/bold]: N_opt ∝ C^0.431 [0.386, 0.528], D_opt ∝ C^0.569 [0.472, 0.614]; "
        "held-out 10x check: off by 2.1% (parametric), inside the interval"
    )


def test_an_unchecked_headline_keeps_the_audit_and_says_so():
    line = group_headline(_group("unchecked", ["not checked beyond the fitted budgets"]), RUNS)
    assert line.endswith(
        "; forecast of the largest budget off by 2.1% (parametric); not checked beyond the fitted budgets"
    )
    assert "N_opt ∝ C^0.431" in line


def test_the_terminal_table_lists_every_forecast():
    point = {"run_id": "abc", "N": 47000, "observed": 0.223, "predicted": 1.392, "relative_error": 5.24}
    laws = {
        "parametric": {"points": [{**point, "predicted_lo": 1.2, "predicted_hi": 1.5, "inside": False}]},
        "isoflop": {
            "points": [],
            "optimum": [{"d_model_best": 32, "N_best_observed": 47000, "N_opt_predicted": 53000, "ratio": 1.128}],
        },
        "frontier": {"error": "the frontier law was not fitted (one model size)"},
    }
    console = Console(width=200, record=True)
    console.print(forecast_check_table(_group("fails", [], laws)))
    text = console.export_text()
    assert "1.392 [1.2, 1.5]" in text and "+524.0%" in text and "OUTSIDE" in text
    assert "best d_model 32" in text and "x1.13" in text and "one model size" in text


def test_demo_check_is_the_demo_plus_the_held_out_budget():
    assert with_holdout_budget(DEMO)["sweep"] == {**DEMO["sweep"], "holdout_budget": True}
    check, demo = demo_check_spec("x").to_dict(), demo_spec("x").to_dict()
    assert check["sweep"].pop("holdout_budget") is True and demo["sweep"].pop("holdout_budget") is False
    assert check == demo
    help_text = run_cli("demo", "--help").stdout
    assert "--check" in help_text and "30 minutes" in " ".join(help_text.split())


def test_the_held_out_budget_leaves_the_fitted_runs_ids_unchanged(tiny_study_data, tmp_path):
    plain = study_from_dict(tiny_study_dict(tmp_path / "a"))
    checked = study_from_dict(with_holdout_budget(tiny_study_dict(tmp_path / "a")))
    without = plan_study(plain, str(tiny_study_data))
    with_check = plan_study(checked, str(tiny_study_data))
    fitted = [run.run_id for run in with_check.runs if not run.holdout]
    held = [run for run in with_check.runs if run.holdout]
    assert fitted == [run.run_id for run in without.runs]
    assert held and {run.budget for run in held} == {10 * TINY_BUDGETS[-1]}


@pytest.mark.slow
def test_report_of_a_study_with_held_out_runs_has_the_forecast_check(copy_tiny_study):
    folder = copy_tiny_study("held-out")
    with sqlite3.connect(folder / "study.db") as connection:  # the largest budget becomes the held-out one
        connection.execute("UPDATE runs SET holdout = 1 WHERE budget = ?", (TINY_BUDGETS[-1],))
    result = run_cli("report", folder, "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    analysis = json.loads((folder / "report" / "report.json").read_text())
    group = analysis["groups"][0]
    check = group["forecast_check"]
    assert check["held_out_budgets"] == [TINY_BUDGETS[-1]] and check["factor"] == pytest.approx(2.0)
    parametric = check["laws"]["parametric"]
    held = [run for run in analysis["runs"] if run["holdout"]]
    assert parametric["n_points"] == len(held) == 3
    for point in parametric["points"]:
        run = next(run for run in held if run["run_id"] == point["run_id"])
        assert point["observed"] == pytest.approx(run["loss"])
        assert point["relative_error"] == pytest.approx((point["predicted"] - run["loss"]) / run["loss"])
    assert group["verdict"]["status"] in ("holds", "fails") and group["verdict"]["reasons"]
    expected = group_headline(group, analysis["runs"]).replace("[bold]", "").replace("[/bold]", "")
    assert " ".join(expected.split()) in " ".join(result.stdout.split())
    assert "Forecast check" in (folder / "report" / "report.html").read_text()
