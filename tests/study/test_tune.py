"""`roboscale tune` and [train] lr = "tuned": the sweep at the base width, tune.json,
and the study's learning rates taken from it."""

import json

import pytest
from tests.cli.test_study_cli import refused
from tests.helpers import run_cli as roboscale
from tests.helpers import seed_dataset, study_toml, tiny_study_dict

from roboscale.study import load_study, plan_study, study_from_dict
from roboscale.study.tune import study_lr
from roboscale.train import default_lr


def tuned_study(tmp_path, data=None, name="study", **train) -> tuple:
    """A tiny study file with [train] ``train`` and a two-rate [tune] section; its folder."""
    raw = tiny_study_dict(tmp_path / name)
    raw["train"].update({"base_width": 16, **train})
    raw["tune"] = {"lrs": [1e-4, 3e-2], "budget": 2e9}
    if data is not None:
        seed_dataset(data, tmp_path / name)
    path = tmp_path / f"{name}.toml"
    path.write_text(study_toml(raw))
    return path, tmp_path / name


def test_tune_writes_the_best_rate_and_a_tuned_study_uses_it(tmp_path, tiny_study_data):
    path, folder = tuned_study(tmp_path, tiny_study_data, parametrization="mup")
    result = roboscale("tune", path)
    assert result.returncode == 0, result.stderr
    tune = json.loads((folder / "tune.json").read_text())
    losses = tune["val_loss"]["bc"]["uniform:32"]
    # ln 32 = 3.47 at init: 1e-4 barely moves it (measured 3.40), 3e-2 learns (2.30).
    assert len(losses) == 2 and 3.0 < losses[0] < 3.6 and losses[1] < losses[0] - 0.5
    best = tune["best_lr"]["bc"]["uniform:32"]
    assert best == 3e-2
    assert (tune["parametrization"], tune["base_width"], tune["budget"]) == ("mup", 16, 2e9)
    assert "best lr" in result.stdout and f"{best:g}" in result.stdout
    # Its runs are real runs at the base width.
    record = json.loads((folder / "tune" / "bc-uniform32-lr0.03" / "s0" / "record.json").read_text())
    assert record["config"]["d_model"] == 16 and record["config"]["parametrization"] == "mup"

    path.write_text(path.read_text().replace("base_width = 16", 'base_width = 16\nlr = "tuned"'))
    spec = load_study(path)
    plan = plan_study(spec, str(folder / "data"))
    assert plan.active and {run.config.lr for run in plan.runs} == {best}  # muP: the same at every width
    assert {run.config.parametrization for run in plan.runs} == {"mup"}


def test_standard_parametrisation_scales_the_tuned_rate_by_the_default_rule(tmp_path):
    spec = study_from_dict({**tiny_study_dict(tmp_path / "s"), "train": {"lr": "tuned", "base_width": 16}})
    (tmp_path / "s").mkdir()
    payload = {"parametrization": "standard", "base_width": 16, "best_lr": {"bc": {"uniform:32": 0.01}}}
    (tmp_path / "s" / "tune.json").write_text(json.dumps(payload))
    assert study_lr(spec, "bc", "uniform:32", 16) == pytest.approx(0.01)
    assert study_lr(spec, "bc", "uniform:32", 64) == pytest.approx(0.01 * default_lr(64) / default_lr(16))
    assert study_lr(spec, "bc", "uniform:32", 64) == pytest.approx(0.005)  # (16/64)^0.5


def test_default_rule_is_unchanged_and_mup_uses_the_base_widths_rate(tmp_path):
    standard = study_from_dict(tiny_study_dict(tmp_path / "a"))
    assert study_lr(standard, "bc", "uniform:32", 24) == default_lr(24)
    mup = study_from_dict({**tiny_study_dict(tmp_path / "b"), "train": {"parametrization": "mup", "lr_scale": 2.0}})
    assert study_lr(mup, "bc", "uniform:32", 24) == 2 * default_lr(32)


def test_tuned_without_tune_json_is_refused_before_any_work(tmp_path):
    path, folder = tuned_study(tmp_path, lr="tuned")
    refused(roboscale("study", "plan", path), 'lr = "tuned"', "tune.json does not exist", "roboscale tune")
    assert not folder.exists()  # no dataset generated


@pytest.mark.parametrize(
    "train, fragments",
    [
        ({"parametrization": "mu-p"}, ["parametrization 'mu-p'", "standard or mup"]),
        ({"lr": "best"}, ["[train] lr 'best'", '"tuned"']),
        ({"base_width": 100}, ["[train]", "d_model=100"]),
    ],
)
def test_bad_train_settings_are_refused(tmp_path, train, fragments):
    path, folder = tuned_study(tmp_path, **train)
    refused(roboscale("tune", path), *fragments)
    assert not folder.exists()


def test_train_refuses_an_unknown_parametrization(tmp_path):
    refused(roboscale("train", "--data", tmp_path, "--parametrization", "mu-p"), "choose standard or mup")
