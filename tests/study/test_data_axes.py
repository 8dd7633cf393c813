"""Data-axes studies: the study file's [data.sources] and [axes], their levels and checks."""

from __future__ import annotations

import copy

import pytest

from roboscale.errors import BadInputError
from roboscale.study import study_from_dict
from roboscale.study.data_levels import SourceFacts, _split_total, data_levels, noise_level


def pointmass(episodes: int = 40, quality: str = "noise:0.1", seed: int = 0, **more) -> dict:
    return {
        "generate": {
            "env": "pointmass",
            "tasks": "reach,push",
            "episodes": episodes,
            "quality": quality,
            "seed": seed,
            **more,
        }
    }


BASE = {
    "name": "axes",
    "data": {"sources": {"expert": pointmass(), "noisy": pointmass(quality="noise:0.5", seed=1)}},
    "axes": {
        "reference": "expert",
        "widths": [8],
        "budget": 1e9,
        "amount": [5, 10, 20],
        "mixture": {"sources": ["expert", "noisy"], "proportions": [0.0, 0.5, 1.0], "total": 20},
    },
}


def study(**changes):
    raw = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, key = path.split("__")
        table = raw
        for parent in parents:
            table = table.setdefault(parent, {})
        if value is None:
            table.pop(key)
        else:
            table[key] = value
    return study_from_dict(raw)


def test_levels_cross_the_axes_and_sweep_the_mixture():
    levels = data_levels(study(axes__quality=["noise:0.1", "noise:0.3", "noise:0.6"]))
    crossed = [level for level in levels if level.axis == "amount+quality"]
    assert len(crossed) == 9  # 3 amounts x 3 qualities
    # the reference's own quality is the reference itself; other levels generate a source each
    # and keep the reference's validation split through a take of 0 episodes
    assert [level.name for level in crossed[:4]] == ["expert5", "expert10", "expert20", "expert-noise0p3-5"]
    assert crossed[3].takes[0].source == "expert" and crossed[3].takes[0].episodes == 0
    assert crossed[3].takes[1].source == "expert-noise0p3" and crossed[3].quality == "noise:0.3"
    mixture = [level.episodes_by_source() for level in levels if level.axis == "mixture"]
    assert mixture == [{"expert": 0, "noisy": 20}, {"expert": 10, "noisy": 10}, {"expert": 20, "noisy": 0}]


def test_mixture_base_plus_added_and_shares_per_source():
    levels = data_levels(
        study(axes__amount=None, axes__mixture={"sources": ["expert", "noisy"], "base": 8, "added": [0, 4, 12]})
    )
    assert [level.episodes_by_source() for level in levels] == [
        {"expert": 8, "noisy": 0},
        {"expert": 8, "noisy": 4},
        {"expert": 8, "noisy": 12},
    ]
    assert _split_total(10, [1 / 3, 1 / 3, 1 / 3]) == [4, 3, 3]  # whole episodes summing to the total
    assert sum(_split_total(7, [0.25, 0.75])) == 7


def test_tasks_levels_and_the_round_robin_supply():
    facts = SourceFacts("metaworld", tuple("abcdefghij"), (), 95)
    # 95 episodes round-robin over 10 tasks: tasks 0-4 have 10 each, 5-9 have 9 each
    assert facts.episodes_for_tasks(2) == 20 and facts.episodes_for_tasks(7) == 68
    assert facts.episodes_for_tasks(None) == 95
    metaworld = {"env": "metaworld", "tasks": "mt10", "episodes": 100, "heldout_tasks": "reach-v3"}
    spec = study(
        data__sources={"expert": {"generate": metaworld}},
        axes__mixture=None,
        axes__amount=[2, 4, 6],
        axes__tasks=[1, 2, 4],
    )
    levels = data_levels(spec)
    assert len(levels) == 9 and levels[0].name == "expert2-t1" and levels[0].takes[0].tasks == 1
    # 90 training episodes over 9 training tasks: the first task has 10
    with pytest.raises(BadInputError, match="asks expert for 12 training episodes of its first 1 tasks but it has 10"):
        study(
            data__sources={"expert": {"generate": metaworld}},
            axes__mixture=None,
            axes__amount=[2, 4, 12],
            axes__tasks=[1, 2, 4],
        )


def test_quality_noise_levels():
    assert noise_level("noise:0.3") == 0.3 and noise_level("epsilon:0.2") == 0.2
    assert noise_level("expert") == 0.0 and noise_level("random:0.25") == 0.25


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"axes__amount": [5, 10]}, "amount has 2 level(s) but a law is fitted to it"),
        ({"axes__mixture__proportions": [0.0, 0.5, 1.5]}, "proportion 1.5 is outside [0, 1]"),
        ({"axes__mixture__proportions": [[0.2, 0.7], [0.5, 0.5], [1.0, 0.0]]}, "summing to 1"),
        ({"axes__mixture__total": 40}, "asks noisy for 40 training episodes but it has 36"),
        ({"axes__amount": [5, 10, 50]}, "asks expert for 50 training episodes but it has 36"),
        ({"axes__mixture__sources": ["expert", "sim"]}, "sources sim unknown"),
        ({"axes__depth": 3}, "unknown key 'depth' in [axes]"),
        ({"axes__mixture__ratio": 3}, "unknown key 'ratio' in [axes.mixture]"),
        ({"sweep__widths": [8, 16]}, "[sweep] widths is an IsoFLOP setting"),
        ({"axes__budget": None}, "budget (training FLOPs per run) is missing"),
        ({"axes__widths": []}, "widths is empty"),
        ({"axes__reference": "real"}, "reference 'real' is not a source"),
        ({"data__sources__noisy__generate__env": "metaworld"}, "have different state and action spaces"),
        ({"data__sources__expert__generate__heldout_tasks": "push"}, "push is a held-out task of the reference"),
        ({"axes__tasks": [1, 2, 3]}, "tasks asks for 3 training tasks but expert has 2"),
        ({"axes__quality": ["noise:0.1", "noise:x", "expert"]}, "quality 'noise:x'"),
        ({"axes__repetition": [1, 2, 4]}, "budget does not apply"),
        ({"data__sources__noisy": {"path": "x", "generate": {"env": "pointmass"}}}, "either a path or a generate"),
        ({"evaluate__policies": "optimal"}, "a data-axes study has not"),
        ({"data__sources__expert": {"path": "x"}, "axes__reference": ""}, "[axes] reference is missing"),
    ],
)
def test_bad_axes_are_refused_in_one_line(changes, message):
    if changes.get("axes__repetition"):
        changes = {**changes, "axes__mixture": None}
    with pytest.raises(BadInputError) as error:
        study(**changes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_quality_levels_need_a_generated_reference(tmp_path):
    with pytest.raises(BadInputError, match="reference 'expert' is a given dataset"):
        study(data__sources__expert={"path": str(tmp_path)}, axes__quality=["expert", "noise:0.1", "noise:0.2"])


def test_an_isoflop_study_keeps_its_settings():
    spec = study_from_dict({"data": {"generate": {"env": "pointmass"}}})
    assert spec.axes is None
    assert "axes" not in spec.to_dict() and "sources" not in spec.to_dict()["data"]
    again = study_from_dict(study().to_dict())  # an axes study's stored settings read back
    assert again.axes == study().axes


E2E = {
    "name": "e2e",
    "data": {
        "sources": {
            "expert": pointmass(24, "noise:0.05", heldout_tasks="push"),
            "noisy": pointmass(24, "noise:0.5", seed=1, heldout_tasks="push"),
        }
    },
    "sweep": {"tokenizers": ["uniform:16"], "min_steps": 5},
    "train": {"batch_size": 16, "eval_points": 1, "eval_windows": 32, "context_steps": 4},
    "executor": {"workers": 1},
    "axes": {
        "reference": "expert",
        "widths": [8],
        "budget": 1e8,
        "amount": [4, 8, 16],
        "mixture": {"sources": ["expert", "noisy"], "proportions": [0.0, 0.25, 1.0], "total": 8},
    },
}


def test_an_axes_study_trains_its_levels_and_exports_the_axis_columns(tmp_path):
    """Amount (3 nested levels) and a 2-source mixture (3 proportions at 8 episodes), one
    tiny model each: the exported columns count what each level trained on."""
    from roboscale.data import open_dataset
    from roboscale.study import prepare_study
    from roboscale.study.execute import execute
    from roboscale.study.run import analyze_study, evaluation_settings

    spec = study_from_dict({**E2E, "out": str(tmp_path / "study")})
    plan, store = prepare_study(spec)
    assert len(plan.active) == 6 and {run.config.tokenizer_data for run in plan.active} == {plan.dataset}
    assert execute(plan.active, store, spec.folder() / "runs", spec.executor) == {"finished": 6, "failed": 0}
    table = store.runs_for_export(evaluation_settings(spec)).sort_values(["axis", "episodes", "r_expert"])
    amount = table[table["axis"] == "amount"]
    assert amount["episodes"].tolist() == [4, 8, 16] and amount["episodes_expert"].tolist() == [4, 8, 16]
    assert amount["r_expert"].tolist() == [1.0, 1.0, 1.0] and amount["train_tasks"].tolist() == [1, 1, 1]
    assert amount["quality"].tolist() == ["noise:0.05"] * 3 and amount["noise"].tolist() == [0.05] * 3
    mixture = table[table["axis"] == "mixture"]
    assert mixture["episodes_expert"].tolist() == [0, 2, 8] and mixture["episodes_noisy"].tolist() == [8, 6, 0]
    assert (mixture["r_expert"] + mixture["r_noisy"]).tolist() == [1.0, 1.0, 1.0]
    assert mixture["r_expert"].tolist() == [0.0, 0.25, 1.0]
    losses = mixture[["loss", "loss_expert", "loss_noisy"]].to_numpy()
    assert (losses > 0).all() and (losses < 10).all()  # finite, on both sources' validation splits
    assert (mixture["loss_expert"] == mixture["loss"]).all()  # the reference's is the primary loss
    assert (table["heldout_loss"] > 0).all() and (table["heldout_loss"] < 10).all()  # push, held out
    # nested levels: every level's training episodes are the first K of the reference's
    levels = spec.folder() / "data" / "levels"
    small, large = (
        open_dataset(levels / name).frames(["observation.state"], split="train") for name in ("expert4", "expert16")
    )
    count = len(small["observation.state"])
    assert count < len(large["observation.state"])
    assert (small["observation.state"] == large["observation.state"][:count]).all()
    # identical training data, identical training: the amount level of 8 and the mixture of 8 expert episodes
    # (different datasets: the mixture also scores on the noisy source's validation split)
    assert mixture["loss"].iloc[-1] == pytest.approx(amount["loss"].iloc[1], rel=1e-6)
    # the analysis has no IsoFLOP group (one budget) and a data section with both axes
    analysis = analyze_study(spec, plan, store, bootstrap=20)
    assert analysis["groups"] == [] and len(analysis["runs"]) == 6
    assert set(analysis["data_axes"]["axes"]) == {"amount", "mixture"}
    # [evaluate] policies = "all": every level's policy rolls out in the simulator its derived dataset names
    from dataclasses import replace

    from roboscale.study.run import evaluate_study

    evaluated = replace(spec, evaluate=replace(spec.evaluate, policies="all", episodes=2, envs=2, workers=1))
    assert evaluate_study(evaluated, plan, store) == []
    success = store.runs_for_export(evaluation_settings(evaluated))
    assert success["success_episodes"].tolist() == [2] * 6  # 2 episodes of the trained task (reach), per run
    assert success["success"].between(0, 1).all()


def test_repetition_sets_each_runs_length_in_passes(tmp_path):
    from roboscale.study import prepare_study

    axes = {"reference": "expert", "widths": [8], "repetition": [1, 2, 4], "unique": 8}
    sweep = {**E2E["sweep"], "min_steps": 1}
    raw = {**E2E, "data": {"sources": {"expert": E2E["data"]["sources"]["expert"]}}, "axes": axes, "sweep": sweep}
    plan, store = prepare_study(study_from_dict({**raw, "out": str(tmp_path / "study")}))
    runs = sorted(plan.active, key=lambda run: run.steps)
    assert [run.level["repetitions"] for run in runs] == [1, 2, 4] and {run.axis for run in runs} == {"repetition"}
    per_pass = runs[0].tokens / runs[0].epochs  # tokens of one pass over the 8 unique episodes
    for run in runs:  # whole steps: within half a step of the asked passes
        step = run.tokens / run.steps
        assert abs(run.epochs * per_pass - run.level["repetitions"] * per_pass) <= step / 2
        assert run.config.flops is None and run.config.steps == run.steps
    assert store.axis_columns()["repetitions"].sort_values().tolist() == [1.0, 2.0, 4.0]
