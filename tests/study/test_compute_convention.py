"""The study's FLOP convention: the planner's prior, the stored plan and the analysis use
C = k N D with each width's own k, never an assumed 6."""

import math

import numpy as np
import pandas as pd
import pytest

from roboscale.fit import simulate_isoflop_runs, simulate_learning_curves
from roboscale.study import prepare_study
from roboscale.study.analyze import analyze
from roboscale.study.plan import _sizes_near_optimum

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def test_the_prior_optimum_uses_each_widths_flops_per_parameter_per_token():
    params = {8: 1000, 16: 4000, 32: 16000}
    # r = 20 tokens per parameter, C = 1800^2 * 24 * 20: at k = 24 the prior optimum is
    # N* = 1800 (width 8 nearest); the textbook k = 6 would put it at 3600 (width 16).
    budget = 1800.0**2 * 24 * 20
    at_24 = {width: 24.0 * n for width, n in params.items()}
    at_6 = {width: 6.0 * n for width, n in params.items()}
    assert _sizes_near_optimum(params, at_24, budget, 20.0, 1) == [8]
    assert _sizes_near_optimum(params, at_6, budget, 20.0, 1) == [16]
    assert _sizes_near_optimum(params, at_24, budget, 20.0, 2) == [8, 16]


def test_the_plan_stores_each_widths_flops_per_token(make_study):
    spec = make_study(widths=[8, 16, 24], budgets=[2e9])
    plan, store = prepare_study(spec)
    per_token = plan.flops_per_token[("bc", "uniform:32")]
    recorded = store.plan()
    for size in recorded.ladder:
        assert size.flops_per_token == per_token[size.d_model]
        assert size.flops_per_param_token == pytest.approx(per_token[size.d_model] / size.N)
    for run in plan.active:  # a run's C = flops per token x tokens stays within its budget
        spent = per_token[run.d_model] * run.tokens
        assert spent <= run.budget and spent > 0.5 * run.budget
    convention = recorded.compute_convention()
    assert convention["flops_convention"] == "exact"
    planned = convention["planned_k_by_width"]["bc · uniform:32"]
    assert set(planned) == {"8", "16", "24"} and all(2.0 < k < 50.0 for k in planned.values())


def study_runs(k: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A group of finished runs (and their learning curves) simulated at C = k N D."""
    sizes = np.geomspace(1e5, 1e7, 9)
    table = simulate_isoflop_runs(
        **TRUTH, budgets=[1e14, 1e15, 1e16], model_sizes=sizes, noise=0.0, flops_per_param_token=k
    )
    widths = {N: 8 * (i + 1) for i, N in enumerate(sizes)}
    runs = table.assign(
        run_id=[f"r{i}" for i in range(len(table))],
        status="finished",
        holdout=False,
        task="bc",
        tokenizer="uniform:256",
        budget=table["C"],
        seed=0,
        d_model=table["N"].map(widths),
    )
    curves = []
    for run in runs.itertuples():
        curve = simulate_learning_curves(
            **TRUTH, model_sizes=[run.N], max_flops=run.C, points_per_curve=5, flops_per_param_token=k
        )
        curves.append(
            pd.DataFrame(
                {"run_id": run.run_id, "step": curve["step"] + 1, "tokens": curve["D"], "flops": curve["C"]}
            ).assign(val_loss=curve["loss"], train_loss=curve["loss"])
        )
    return runs, pd.concat(curves, ignore_index=True)


def test_the_analysis_reports_k_per_group_and_recommends_with_it():
    runs, curves = study_runs(12.0)
    sizes = dict(zip(runs["d_model"], runs["N"].round().astype(int)))
    analysis = analyze(runs, curves, study={"name": "k12"}, ladder={("bc", "uniform:256"): sizes}, bootstrap=0)
    (group,) = analysis["groups"]
    convention = group["compute_convention"]
    assert convention["k"] == pytest.approx(12.0) and convention["source"] == "measured from 27 runs"
    assert group["parametric"]["flops_per_param_token"] == pytest.approx(12.0)
    for method in ("parametric", "isoflop"):
        for row in group["compute_optimal"][method]["budgets"]:
            assert 12.0 * row["N_opt"] * row["D_opt"] == pytest.approx(row["C"], rel=0.02)
    recommendation = group["recommendation"]
    assert 12.0 * recommendation["N"] * recommendation["D"] == pytest.approx(recommendation["budget"], rel=0.02)
    assert math.isfinite(recommendation["N"])
