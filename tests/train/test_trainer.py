import json
import math

import numpy as np
import pytest

from roboscale.errors import BadInputError
from roboscale.train import TrainConfig, learning_rate, plan_run, train


def config(dataset, **changes):
    base = dict(
        data=str(dataset),
        task="bc",
        tokenizer="uniform:32",
        d_model=16,
        steps=40,
        batch_size=16,
        threads=1,
        checkpoint_seconds=0.0,
        eval_windows=128,
    )
    base.update(changes)
    return TrainConfig(**base)


def test_a_run_is_a_costed_data_point(pointmass_dataset, tmp_path):
    record = train(config(pointmass_dataset), tmp_path / "run")
    assert record["status"] == "finished" and record["steps"] == 40
    sequence = record["model"]["context_steps"] * (8 + 2)
    assert record["tokens"] == record["D"] == 40 * 16 * sequence
    assert record["C"] == pytest.approx(record["tokens"] * record["flops_per_token"]["exact"])
    assert record["flops"]["total"] == pytest.approx(record["tokens"] * record["flops_per_token"]["total"])
    assert (
        record["N"]
        == record["params"]["total"]
        == sum(record["params"][g] for g in ("embedding", "transformer", "head"))
    )
    curve = record["learning_curve"]
    assert [p["step"] for p in curve][:4] == [1, 2, 3, 4] and curve[-1]["step"] == 40  # log-spaced
    assert curve[-1]["val_loss"] < curve[0]["val_loss"] - 0.5  # it learns
    assert curve[0]["val_loss"] == pytest.approx(math.log(32), abs=0.1)
    assert record["final"]["val_loss"] == curve[-1]["val_loss"] and record["final"]["train_loss"] > 0
    error = record["tokenizers"]["state"]["round_trip_error"]  # 32 bins: at most half a bin
    assert 0 < error["rms_relative"] < error["max_relative"] < 0.5
    saved = tmp_path / "run"
    assert json.loads((saved / "record.json").read_text()) == record
    assert {p.name for p in (saved / "checkpoint").iterdir()} == {
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    }
    assert not list(saved.rglob("*.pt")) and not list(saved.rglob("*.pkl"))  # never pickle


def test_same_seed_same_loss_to_the_last_bit(pointmass_dataset, tmp_path):
    first = train(config(pointmass_dataset, task="wm", tokenizer="uniform:32@4"), tmp_path / "a")
    second = train(config(pointmass_dataset, task="wm", tokenizer="uniform:32@4"), tmp_path / "b")
    other = train(config(pointmass_dataset, task="wm", tokenizer="uniform:32@4", seed=1), tmp_path / "c")
    assert [p["val_loss"] for p in first["learning_curve"]] == [p["val_loss"] for p in second["learning_curve"]]
    assert first["final"]["val_loss"] != other["final"]["val_loss"]
    weights = [(tmp_path / name / "checkpoint" / "model.safetensors").read_bytes() for name in ("a", "b")]
    assert weights[0] == weights[1]


def test_resuming_gives_the_uninterrupted_result(pointmass_dataset, tmp_path):
    settings = dict(task="bc", tokenizer="continuous", steps=50)
    whole = train(config(pointmass_dataset, **settings), tmp_path / "whole")

    class PowerCut(Exception):
        pass

    def cut(step, total, metrics):
        if step == 25:
            raise PowerCut

    with pytest.raises(PowerCut):
        train(config(pointmass_dataset, **settings), tmp_path / "cut", progress=cut)
    interrupted = json.loads((tmp_path / "cut" / "record.json").read_text())
    assert interrupted["status"] == "running" and interrupted["steps"] < 25  # the last good record
    resumed = train(config(pointmass_dataset, **settings), tmp_path / "cut")
    assert resumed["final"] == whole["final"]
    assert [p["val_loss"] for p in resumed["learning_curve"]] == [p["val_loss"] for p in whole["learning_curve"]]
    again = train(config(pointmass_dataset, **settings), tmp_path / "cut")  # finished: nothing to do
    assert again["final"] == whole["final"]


def test_run_length_options_agree_with_a_hand_count(pointmass_dataset):
    # d_model 16 on pointmass, uniform:32, bc: 1 layer, 1 head; 8 state + 2 action slots
    # per step, 8 steps: 80 positions per sequence, 16 x 80 = 1280 tokens per optimiser step.
    # Parameters: embeddings 2 x (33 x 16 table + 16 position) + 10 x 16 slot + 8 x 16 time
    # + 2 x 16 task = 1408; block 2 x 32 (LayerNorms) + 16 x 48 + 16 x 16 + 2 x 16 x 64
    # = 3136, final LayerNorm 32: 3168; heads 2 x (16 query + 16 x 32) = 1056; total 5632.
    # Exact FLOPs per token: 3 x (2 x 12 x 16^2 x 80 + 2 x 16 x 32 x 16 action dims) / 80
    # + attention 12 x 1 x 80 x 16 = 19046.4 + 15360 = 34406.4; 6N: 6 x 5632 + 15360 = 49152.
    plan = plan_run(config(pointmass_dataset, steps=None, tokens=100_000))
    assert plan.tokens_per_step == 1280
    assert plan.params == {"embedding": 1408, "transformer": 3168, "head": 1056, "total": 5632, "non_embedding": 4224}
    assert plan.flops_per_token["exact"] == pytest.approx(34406.4) and plan.flops_per_token["total"] == 49152
    assert plan.total_steps == 78  # 100,000 // 1280
    assert plan.size.epochs == 78 * 1280 / (plan.data.split_frames["train"] * 10)
    assert plan_run(config(pointmass_dataset, steps=None, flops=1e9)).total_steps == 22  # 29,064 tokens
    assert plan_run(config(pointmass_dataset, steps=None, tokens_per_param=20)).total_steps == 88  # 112,640 tokens
    six_n = plan_run(config(pointmass_dataset, steps=None, flops=1e9, flops_convention="total"))
    assert six_n.total_steps == 15  # 20,345 tokens


def test_schedule_warms_up_and_decays_to_ten_percent(pointmass_dataset):
    settings = config(pointmass_dataset, steps=1000, lr=1e-3)
    rates = [learning_rate(step, 1000, settings) for step in range(1000)]
    assert rates[0] == pytest.approx(1e-3 / 50) and max(rates) == pytest.approx(1e-3)
    assert np.argmax(rates) == 49 and rates[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(rates[49:], rates[50:]))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"data": "/nonexistent"}, "not found"),
        ({"tokenizer": "binned:8"}, "unknown kind"),
        ({"steps": None, "flops": 10.0}, "smaller than one optimiser step"),
        ({"steps": 5, "tokens": 1e6}, "exactly one run length"),
        ({"task": "rl"}, "choose bc or wm"),
        ({"task": "wm", "wm_target": "x"}, "wm_target 'x': choose absolute or delta"),
        ({"d_model": 48, "n_head": 5}, "does not divide into"),
        ({"batch_size": 10**7}, "GiB is available"),
    ],
)
def test_bad_runs_are_refused_before_any_work(pointmass_dataset, tmp_path, changes, message):
    with pytest.raises(BadInputError, match=message):
        train(config(pointmass_dataset, **changes), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_run_folder_keeps_its_configuration(pointmass_dataset, tmp_path):
    train(config(pointmass_dataset, steps=5), tmp_path / "run")
    with pytest.raises(BadInputError, match="steps: 5 -> 6"):
        train(config(pointmass_dataset, steps=6), tmp_path / "run")


def test_a_config_is_validated_once_per_run(pointmass_dataset, tmp_path, monkeypatch):
    calls = []
    original = TrainConfig.validate
    monkeypatch.setattr(TrainConfig, "validate", lambda self: calls.append(self.seed) or original(self))
    train(config(pointmass_dataset, steps=2), tmp_path / "run")
    assert calls == [0]


def test_a_world_model_of_state_changes_trains_and_keeps_its_target(pointmass_dataset, tmp_path):
    record = train(config(pointmass_dataset, task="wm", wm_target="delta"), tmp_path / "run")
    curve = record["learning_curve"]
    assert record["status"] == "finished" and record["model"]["wm_target"] == "delta"
    assert curve[0]["val_loss"] == pytest.approx(math.log(32), abs=0.25)  # same 32 classes as absolute bins
    assert curve[-1]["val_loss"] < curve[0]["val_loss"] - 0.5  # it learns
    assert json.loads((tmp_path / "run" / "config.json").read_text())["wm_target"] == "delta"
    default = TrainConfig(data=str(pointmass_dataset), steps=1)
    assert "wm_target" not in default.to_dict()  # run ids of earlier runs do not change
