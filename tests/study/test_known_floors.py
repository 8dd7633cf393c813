"""Known floors in a study: stored when prepared, shown beside every fitted E, usable as a fixed E."""

import shutil

import numpy as np
import pandas as pd
import pytest

from roboscale.data.floors import known_floor
from roboscale.errors import BadInputError
from roboscale.fit.simulate import simulate_isoflop_runs
from roboscale.report.analysis import group_data
from roboscale.report.page import render_html
from roboscale.report.tables import known_floor_table
from roboscale.study import prepare_study, study_from_dict
from roboscale.study.analyze import analyze
from roboscale.study.run import analyze_study, fixed_e_by_group
from roboscale.study.store import PlanRecord

GROUP = ("bc", "uniform:32")


def test_a_prepared_study_stores_its_floors_and_reports_them_without_the_dataset(make_study):
    spec = make_study()
    plan, store = prepare_study(spec)
    floors = store.plan().floors()
    expected = known_floor(plan.dataset, *GROUP)
    assert floors[GROUP]["loss"] == expected.loss and floors[GROUP]["kind"] == "exact"
    assert floors[GROUP]["per_dim"] == list(expected.per_dim) and 1.7 < expected.loss < 2.0
    shutil.rmtree(plan.dataset)  # the report needs study.db only
    (group,) = analyze_study(spec, None, store, bootstrap=0)["groups"]
    assert group["known_floor"]["loss"] == expected.loss


def test_a_store_made_before_floors_existed_still_reports(make_study):
    spec = make_study()
    _, store = prepare_study(spec)
    old = {key: value for key, value in store.study()["plan"].items() if key != "known_floors"}
    store.set_study({"plan": old})
    assert PlanRecord.from_dict(old).floors() == {}
    analysis = analyze_study(spec, None, store, bootstrap=0)
    assert "known_floor" not in analysis["groups"][0]
    assert 'id="known-floors"' not in render_html(analysis)


def _simulated_runs(E: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Finished bc runs from a known law (three budgets, five sizes) and no learning curves."""
    table = simulate_isoflop_runs(
        E, 400.0, 410.0, 0.34, 0.28, budgets=[1e17, 1e18, 1e19], model_sizes=np.geomspace(1e7, 1e10, 5), noise=0.005
    )
    runs = table.assign(
        run_id=[f"run{i}" for i in range(len(table))],
        status="finished",
        task=GROUP[0],
        tokenizer=GROUP[1],
        holdout=0,
        budget=table["C"],
        seed=0,
        d_model=16,
    )
    curves = pd.DataFrame(columns=["run_id", "step", "tokens", "flops", "val_loss", "train_loss"])
    return runs, curves


def test_e_held_at_the_known_floor_and_the_table_shows_every_e_against_it():
    runs, curves = _simulated_runs(E=1.7)
    floor = {"loss": 1.7, "per_dim": [1.7], "kind": "exact", "note": "simulated"}
    free = analyze(runs, curves, study={}, ladder={}, bootstrap=20, known_floors={GROUP: floor})
    held = analyze(runs, curves, study={}, ladder={}, bootstrap=20, known_floors={GROUP: floor}, fixed_E={GROUP: 1.7})
    (free_group,), (held_group,) = free["groups"], held["groups"]
    assert held_group["parametric"]["E"] == pytest.approx(1.7, abs=1e-9) and held_group["parametric"]["fixed_E"]
    assert free_group["parametric"]["E"] != held_group["parametric"]["E"]
    assert abs(free_group["parametric"]["E"] - 1.7) < 0.1 and not free_group["parametric"]["fixed_E"]
    # Exponents recovered with E held at the truth:
    assert abs(held_group["parametric"]["alpha"] - 0.34) < 0.03
    page = render_html(free)
    assert 'id="known-floors"' in page and "IsoFLOP loss law" in page
    difference = free_group["parametric"]["E"] - 1.7
    assert f"{difference:+.4f}" in str(known_floor_table(group_data(free)))
    assert "E held at it" in str(known_floor_table(group_data(held)))


def test_fixed_e_setting_known_uses_each_groups_floor_and_warns_without_one():
    floors = {GROUP: {"loss": 3.26, "note": ""}, ("bc", "continuous"): {"loss": None, "note": "expert data"}}
    groups = {*floors, ("wm", "uniform:32")}
    fixed, warnings = fixed_e_by_group("known", groups, floors)
    assert fixed == {GROUP: 3.26}
    assert len(warnings) == 2 and any("expert data" in w for w in warnings)
    assert fixed_e_by_group(2.5, groups, floors) == (dict.fromkeys(groups, 2.5), [])
    assert fixed_e_by_group("", groups, floors) == ({}, [])


@pytest.mark.parametrize("value", ["floor", 0.0, -1])
def test_a_bad_fixed_e_is_refused(value):
    raw = {"name": "floors", "data": {"path": "data/any"}, "fit": {"fixed_e": value}}
    with pytest.raises(BadInputError, match=r"\[fit\] fixed_e"):
        study_from_dict(raw)
    assert study_from_dict({**raw, "fit": {"fixed_e": "known"}}).fit.fixed_e == "known"
