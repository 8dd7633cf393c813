"""The data-axes analysis recovers the laws a simulated study was made from, and says which data to collect next."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.study.simulated_data_axes import (
    A_AMOUNT,
    A_TASKS,
    ALPHA_AMOUNT,
    ALPHA_SUCCESS,
    ALPHA_TASKS,
    BOOTSTRAP,
    MIXTURE,
    WORTH,
    clean_loss,
    one_width_data_axes,
    repeated_worth,
    simulated_data_runs,
)

from roboscale.errors import BadInputError
from roboscale.study.data_analysis import axes_of, data_axes_analysis, equivalent_episodes
from roboscale.study.data_value import recommend


@pytest.fixture(scope="module")
def analysis() -> dict:
    """Every data axis at one width (32), 2 seeds, 1% noise (shared with the report tests)."""
    return one_width_data_axes()


def laws(analysis: dict, axis: str, metric: str) -> list[dict]:
    return [law for law in analysis["laws"] if (law["axis"], law["y"]) == (axis, metric)]


def test_no_axis_runs_give_none():
    runs = simulated_data_runs(widths=(32,)).head(3)
    assert data_axes_analysis(runs.drop(columns="axis"), reference="expert", bootstrap=0, seed=0) is None
    assert data_axes_analysis(runs.assign(axis=""), reference="expert", bootstrap=0, seed=0) is None
    assert data_axes_analysis(runs.assign(status="failed"), reference="expert", bootstrap=0, seed=0) is None


def test_bad_input_is_one_line_before_any_fit():
    runs = simulated_data_runs(widths=(32,))
    with pytest.raises(BadInputError, match="reference=''"):
        data_axes_analysis(runs, reference="", bootstrap=0, seed=0)
    with pytest.raises(BadInputError, match="diversity axis but the runs table has no heldout_loss column"):
        data_axes_analysis(runs.drop(columns="heldout_loss"), reference="expert", bootstrap=0, seed=0)
    with pytest.raises(BadInputError, match="bootstrap=-1"):
        data_axes_analysis(runs, reference="expert", bootstrap=-1, seed=0)


def test_axis_labels_split_and_alias():
    assert axes_of("amount+quality") == ("amount", "quality")
    assert axes_of("tasks") == ("diversity",)
    assert axes_of("") == () and axes_of(None) == ()


def test_the_analysis_is_json_ready_with_its_documented_keys(analysis):
    json.dumps(analysis, allow_nan=False)
    assert analysis["axes"] == ["amount", "repetition", "diversity", "quality", "mixture"]
    assert analysis["widths"] == [32]
    for key in ("laws", "exponents", "repetition", "quality", "mixture", "marginal", "recommendation"):
        assert analysis[key], key


def test_amount_exponent_is_recovered_at_every_noise_level(analysis):
    amount = laws(analysis, "amount", "loss")
    assert sorted(law["slice"]["noise"] for law in amount) == sorted(WORTH)
    for law in amount:
        assert law["fit"]["alpha"] == pytest.approx(ALPHA_AMOUNT, abs=0.015), law["slice"]
        # no floor in this study: the saturating law finds E near 0 and the same exponent
        assert law["saturating"]["alpha"] == pytest.approx(ALPHA_AMOUNT, abs=0.05)
        low, high = law["curve"]["low"][0], law["curve"]["high"][0]
        assert low < law["curve"]["y"][0] < high
    assert [law["primary"] for law in amount] == [law["slice"]["noise"] == 0.5 for law in amount]


def test_success_and_held_out_task_exponents_are_recovered(analysis):
    for law in laws(analysis, "amount", "success"):
        assert law["fit"]["alpha"] == pytest.approx(ALPHA_SUCCESS, abs=0.015)
        assert law["fit"]["complement"] == 1.0
    (heldout,) = laws(analysis, "diversity", "heldout_loss")
    assert heldout["fit"]["alpha"] == pytest.approx(ALPHA_TASKS, abs=0.02)
    assert heldout["fit"]["A"] == pytest.approx(A_TASKS, rel=0.05)
    exponents = {(row["axis"], row["y"], row["primary"]) for row in analysis["exponents"]}
    assert ("diversity", "heldout_loss", True) in exponents and ("amount", "loss", True) in exponents


def test_a_noisy_episode_is_worth_what_the_simulation_says(analysis):
    (quality,) = analysis["quality"]
    assert quality["clean_noise"] == 0.0 and quality["has_clean_law"]
    for row in quality["rows"]:
        assert row["worth"] == pytest.approx(WORTH[row["noise"]], rel=0.06), row
        low, high = row["worth_ci"]
        assert low <= row["worth"] <= high


def test_repeated_epochs_are_worth_less_than_fresh_data(analysis):
    (repetition,) = analysis["repetition"]
    rows = {row["repetitions"]: row for row in repetition["rows"]}
    assert rows[1.0]["repeat_worth"] is None
    for epochs in (2.0, 4.0, 8.0):
        truth = (repeated_worth(epochs) - 100) / (100 * (epochs - 1))
        assert rows[epochs]["repeat_worth"] == pytest.approx(truth, abs=0.06), epochs
        assert rows[epochs]["fresh_loss"] == pytest.approx(float(clean_loss(100 * epochs)), rel=0.03)
    assert rows[8.0]["repeat_worth"] < rows[2.0]["repeat_worth"] < 1.0


def test_mixture_laws_and_the_optimal_mixture(analysis):
    (mixture,) = analysis["mixture"]
    assert mixture["sources"] == ["expert", "noisy"]
    by_source = {law["source"]: law for law in mixture["laws"]}
    for source, (c, k, t) in MIXTURE.items():
        fit = by_source[source]["fit"]
        assert (fit["c"], fit["k"], fit["t"]["expert"]) == pytest.approx((c, k, t), rel=0.2, abs=0.05), source
        assert fit["t"]["noisy"] == 0.0  # the last source's t is held at 0 (t is known up to a shift)
    assert mixture["optimal"]["proportions"]["expert"] == pytest.approx(1.0)  # expert-only lowers its own loss


def test_marginal_values_match_the_true_laws(analysis):
    (entry,) = analysis["marginal"]
    assert entry["operating_point"] == {"episodes": 800.0, "train_tasks": 8.0, "noise": 0.5}
    options = {option["option"]: option for option in entry["options"]}
    noisy = A_AMOUNT * (WORTH[0.5] * np.array([800.0, 1800.0])) ** -ALPHA_AMOUNT
    assert options["amount"]["relative_drop"] == pytest.approx((noisy[0] - noisy[1]) / noisy[0], rel=0.05)
    assert options["tasks"]["new_tasks"] == pytest.approx(1000 / 50)
    tasks = A_TASKS * np.array([8.0, 28.0]) ** -ALPHA_TASKS
    assert options["tasks"]["relative_drop"] == pytest.approx((tasks[0] - tasks[1]) / tasks[0], rel=0.05)
    assert options["tasks"]["metric"] == "heldout_loss" and options["amount"]["metric"] == "loss"
    clean_after = float(clean_loss(WORTH[0.5] * 800 + 1000))
    assert options["quality"]["relative_drop"] == pytest.approx((noisy[0] - clean_after) / noisy[0], rel=0.05)
    assert options["quality"]["clean_equivalent"] == pytest.approx(WORTH[0.5] * 800, rel=0.06)


def test_the_recommendation_names_the_best_option(analysis):
    recommendation = analysis["recommendation"]
    assert recommendation["choice"] == "quality" and recommendation["caveat"] is None
    assert recommendation["ranked"] == ["quality", "tasks", "amount"]
    assert recommendation["sentence"].startswith("The next 1,000 episodes are worth most as cleaner demonstrations")
    assert "ahead of 20 new tasks (held-out-task loss down" in recommendation["sentence"]


def option(name: str, relative: float, ci: tuple[float, float], **extra) -> dict:
    metric = "heldout_loss" if name == "tasks" else "loss"
    return {"option": name, "metric": metric, "relative_drop": relative, "relative_drop_ci": ci, **extra}


def test_overlapping_intervals_say_it_cannot_tell():
    marginal = [
        {
            "width": 64,
            "next_episodes": 1000,
            "options": [
                option("amount", 0.10, (0.05, 0.15)),
                option("tasks", 0.12, (0.08, 0.20), new_tasks=4.0),
                {"option": "quality", "metric": "loss", "error": "no quality axis"},
            ],
        }
    ]
    result = recommend(marginal)
    assert result["choice"] is None and "overlap" in result["caveat"]
    assert result["sentence"].startswith("The data cannot tell whether the next 1,000 episodes are worth most as 4 new")
    assert "or as more of the same" in result["sentence"]
    marginal[0]["options"][1]["relative_drop_ci"] = (0.16, 0.20)
    assert recommend(marginal)["choice"] == "tasks"


def test_no_option_gives_a_reasoned_no():
    marginal = [{"width": 8, "next_episodes": 1000, "options": [{"option": "amount", "metric": "loss", "error": "x"}]}]
    result = recommend(marginal)
    assert (
        result["choice"] is None
        and result["sentence"] == "No recommendation: no option could be evaluated (amount: x)."
    )


def test_a_floor_is_found_by_the_saturating_fit_only():
    runs = simulated_data_runs(widths=(32,), floor=0.05)
    clean = runs[(runs["axis"] == "amount+quality") & (runs["noise"] == 0.0)].assign(axis="amount")
    result = data_axes_analysis(clean, reference="expert", bootstrap=BOOTSTRAP, seed=0)
    (law,) = laws(result, "amount", "loss")
    assert law["saturating"]["alpha"] == pytest.approx(ALPHA_AMOUNT, abs=0.05)
    assert law["saturating"]["E"] == pytest.approx(0.05, abs=0.02)
    assert law["fit"]["alpha"] < ALPHA_AMOUNT - 0.04  # without a floor the exponent comes out too shallow
    assert result["marginal"][0]["options"][1]["error"].startswith("no diversity law")


def test_fewer_than_three_levels_is_reported_not_fitted_and_runs_are_reproducible():
    runs = simulated_data_runs(widths=(32,))
    diversity = runs[runs["axis"] == "diversity"]
    two_levels = diversity[diversity["train_tasks"] <= 2]
    (law, _) = data_axes_analysis(two_levels, reference="expert", bootstrap=0, seed=0)["laws"]
    assert law["fit"] == {"error": "2 levels of train_tasks: a law needs at least 3"} and law["curve"] is None
    first = data_axes_analysis(diversity, reference="expert", bootstrap=BOOTSTRAP, seed=3)
    assert json.dumps(first) == json.dumps(
        data_axes_analysis(diversity, reference="expert", bootstrap=BOOTSTRAP, seed=3)
    )


def test_equivalent_episodes_inverts_the_law():
    params = np.array([[0.05, 2.0, 0.4], [0.0, 2.0, 0.4]])
    loss = 0.05 + 2.0 * 300.0**-0.4
    assert equivalent_episodes(params[:1], loss)[0] == pytest.approx(300.0)
    assert np.isnan(equivalent_episodes(params[:1], 0.04)[0])  # below the floor: never reached
    assert equivalent_episodes(params[1:], 2.0 * 50.0**-0.4)[0] == pytest.approx(50.0)


def test_analyze_adds_data_axes_and_keeps_axis_runs_out_of_the_isoflop_groups():
    from roboscale.study.analyze import analyze

    runs = simulated_data_runs(widths=(32,))
    runs = runs[runs["axis"] == "diversity"].assign(task="bc", tokenizer="uniform:256", holdout=0)
    curves = pd.DataFrame(columns=["run_id", "step", "tokens", "flops", "val_loss", "train_loss"])
    result = analyze(runs, curves, study={"name": "s"}, ladder={}, bootstrap=0, data_reference="expert")
    assert result["groups"] == [] and len(result["runs"]) == len(runs)
    assert result["data_axes"]["axes"] == ["diversity"]
    assert "data_axes" not in analyze(runs, curves, study={"name": "s"}, ladder={}, bootstrap=0)


def test_study_run_headline_names_each_exponent_the_mixture_and_the_recommendation(analysis):
    from roboscale.cli.study import data_axes_headline

    lines = data_axes_headline(analysis)
    fitted = next(r for r in analysis["exponents"] if r["primary"] and r["axis"] == "amount" and r["y"] == "loss")
    amount = next(line for line in lines if line.startswith("  amount: loss") and "noise 0.5" in line)
    assert f"episodes^-{fitted['alpha']:.3g}" in amount
    assert sum(line.startswith("  amount: loss") for line in lines) == 3  # the amount law at every noise level
    worth = next(line for line in lines if "one noisy episode is worth" in line)
    assert "noise 0.2: 0.48" in worth and "noise 0.5: 0.19" in worth  # true worth 0.5 and 0.2
    assert any(line.startswith("  amount: 1 - success") for line in lines)  # the failure rate, not success
    assert any("optimal mixture" in line and "expert 1.00" in line for line in lines)
    assert analysis["recommendation"]["sentence"] in lines[-1]
    assert data_axes_headline(None) == []


def test_a_known_floor_is_held_as_E_and_the_law_fitted_above_it():
    """The data axes of noisy data: loss = floor + A episodes^-alpha, with the floor known."""
    episodes = np.array([20.0, 60.0, 180.0, 540.0] * 2)
    rng = np.random.default_rng(0)
    loss = 3.3 + 1.2 * episodes**-0.25 * np.exp(rng.normal(0.0, 0.005, episodes.size))
    runs = pd.DataFrame(
        {"run_id": [f"r{i}" for i in range(episodes.size)], "status": "finished", "axis": "amount", "d_model": 16,
         "seed": 0, "episodes": episodes, "train_tasks": 3, "noise": 0.1, "r_expert": 1.0, "loss": loss,
         "heldout_loss": np.nan}
    )  # fmt: skip
    held = data_axes_analysis(runs, reference="expert", bootstrap=50, seed=0, floors={"loss": 3.3})
    (row,) = [r for r in held["exponents"] if r["y"] == "loss"]
    assert row["alpha"] == pytest.approx(0.25, abs=0.01)  # the law above the floor
    assert held["known_floors"] == {"loss": 3.3}
    without = data_axes_analysis(runs, reference="expert", bootstrap=50, seed=0)
    (plain,) = [r for r in without["exponents"] if r["y"] == "loss"]
    assert plain["alpha"] < 0.05  # the whole loss barely moves: the floor hides the law
