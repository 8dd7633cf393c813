"""When the plan leaves runs out, its advice names fixes with numbers, and each fix,
applied as printed, makes those runs fit (replanned on the tiny study's data)."""

import re
from dataclasses import replace

import pytest
from tests.helpers import TINY_BUDGETS, tiny_study_dict

from roboscale.errors import BadInputError
from roboscale.study import ensure_dataset, plan_study, prepare_study, study_from_dict
from roboscale.study.plan import empty_plan_message


def _data_advice(plan) -> str:
    (advice,) = [warning for warning in plan.warnings if "training frames" in warning]
    return advice


def _left_out_for_data(plan) -> list:
    return [run for run in plan.runs if run.skip.startswith("needs")]


def test_too_many_passes_advice_gives_fixes_that_work(make_study, tmp_path):
    spec = make_study(max_epochs=10.0)
    plan = plan_study(spec, ensure_dataset(spec))
    limited = _left_out_for_data(plan)
    assert [(run.d_model, run.budget) for run in limited] == [(8, 8e9)]  # 10.9 passes
    advice = _data_advice(plan)
    worst = max(limited, key=lambda run: run.epochs)
    assert f"up to {worst.epochs:.3g}: d_model 8 at 8e9 FLOPs" in advice
    assert f"over the {plan.train_frames:,} training frames" in advice

    raised = float(re.search(r"raise max_epochs to ([\d.]+)", advice)[1])
    assert worst.epochs <= raised < 1.1 * worst.epochs
    assert not _left_out_for_data(plan_study(replace(spec, sweep=replace(spec.sweep, max_epochs=raised)), plan.dataset))

    before, after = (
        float(x)
        for x in re.search(r"lower the budgets about [\d,.]+-fold \(([\de.]+) FLOPs to ([\de.]+)\)", advice).groups()
    )
    assert before == worst.budget and after == pytest.approx(worst.budget * 10.0 / worst.epochs, rel=0.05)
    lowered = replace(spec.sweep, budgets=[budget * after / before for budget in TINY_BUDGETS])
    assert not _left_out_for_data(plan_study(replace(spec, sweep=lowered), plan.dataset))

    episodes = int(re.search(r"generate at least ([\d,]+) episodes \(now 120\)", advice)[1].replace(",", ""))
    assert 120 * worst.epochs / 10.0 <= episodes <= 1.2 * 120 * worst.epochs / 10.0
    raw = tiny_study_dict(tmp_path / "more-data", max_epochs=10.0)
    raw["data"]["generate"]["episodes"] = episodes
    more = study_from_dict(raw)
    assert not _left_out_for_data(plan_study(more, ensure_dataset(more)))  # generated as advised: every run fits


def test_a_given_dataset_is_told_how_many_frames_it_needs_in_readable_numbers(make_study, tiny_study_data):
    spec = make_study(budgets=[1e12, 2e12, 4e12], max_epochs=1.0, min_steps=50)
    spec = replace(spec, data=replace(spec.data, path=str(tiny_study_data), generate={}))
    plan = plan_study(spec, ensure_dataset(spec))
    assert not plan.active
    message = empty_plan_message(plan)
    worst = max(plan.runs, key=lambda run: run.epochs)
    assert worst.epochs > 1000 and f"up to {worst.epochs:,.0f}:" in message  # 5,472 passes, not 5471.6
    frames = int(re.search(r"use a dataset with at least ([\d,]+) training frames", message)[1].replace(",", ""))
    assert worst.epochs * plan.train_frames <= frames <= 1.1 * worst.epochs * plan.train_frames
    raised = re.search(r"raise max_epochs to ([\d,]+)", message)[1]
    assert "," in raised and worst.epochs <= int(raised.replace(",", "")) < 1.01 * worst.epochs  # 2 digits up
    assert "lower the budgets" not in message  # budgets 5,000 times smaller buy fewer than min_steps steps
    assert not re.search(r"\d\.0\b", message) and "e+" not in message


def test_too_few_steps_advice_gives_the_budgets_that_buy_them(make_study):
    spec = make_study(budgets=[1e5, 2e5, 4e5], min_steps=10)
    with pytest.raises(BadInputError, match="no run is left in the plan") as refused:
        prepare_study(spec)
    message = str(refused.value)
    assert message.startswith("no run is left in the plan: 9 run(s) take too few steps (0 < min_steps 10 at d_model 24")
    before, after = (
        float(x)
        for x in re.search(r"raise the budgets about [\d,.]+-fold \(([\de.]+) FLOPs to ([\de.]+)\)", message).groups()
    )
    raised = replace(spec.sweep, budgets=[budget * after / before for budget in spec.sweep.budgets])
    replanned = plan_study(replace(spec, sweep=raised), str(spec.folder() / "data"))
    assert not [run for run in replanned.runs if run.skip.startswith("too few steps")]
