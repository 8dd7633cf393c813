"""Many same-shape models as one computation (train_batch) against one model at a time.

Tolerances, and why:
- K stacked models vs the same K runs one at a time: 1e-6 relative on every
  learning-curve point. Each model's arithmetic is the same; only the batched
  matrix-multiply kernels may round differently, and over 40 steps that stays at
  the level of fp32 round-off (measured: 3e-7).
- The trainer against the unbatched nn.Linear trainer it replaced (curves saved
  in tests/fixtures/unbatched_trainer_curves.json when commit d13bd81 replaced it,
  with these configs on the ``pointmass_dataset`` fixture; no script made them. They
  are an independent reference: regenerating them from the current trainer would
  make this test compare the trainer with itself):
  5e-7 relative after the first step, 2e-4 at every point. bmm instead of mm, an
  unfused LayerNorm affine and the per-model gradient clip change the rounding at
  the 1e-8 level; Adam's normalised steps amplify such differences as training
  goes on (measured: 4e-8 after one step, at most 1e-7 to step 26 and 3e-5 at
  step 60). Weight decay on the wrong parameters (the norms instead of the
  matrices, as a rank test that forgets the model axis gives) misses by 1e-6 to
  3e-6 after one step and at worst 5e-4 to 5e-3, outside both tolerances.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from roboscale.errors import BadInputError, RunDivergedError
from roboscale.train import TrainConfig, train, train_batch

GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "unbatched_trainer_curves.json").read_text())


def config(dataset, **changes):
    base = {
        "data": str(dataset),
        "task": "bc",
        "tokenizer": "uniform:32",
        "d_model": 16,
        "steps": 40,
        "batch_size": 16,
        "threads": 1,
        "checkpoint_seconds": 0.0,
        "eval_windows": 128,
        "eval_points": 6,
    }
    base.update(changes)
    return TrainConfig(**base)


def relative(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_trainer_reproduces_the_unbatched_trainer(pointmass_dataset, tmp_path, name):
    golden = GOLDEN[name]
    settings = {k: v for k, v in golden["config"].items() if k not in ("data",)}
    record = train(TrainConfig(data=str(pointmass_dataset), **settings), tmp_path / "run")
    assert record["N"] == golden["N"] and record["C"] == pytest.approx(golden["C"], rel=1e-12)
    curve = record["learning_curve"]
    assert [p["step"] for p in curve] == [p["step"] for p in golden["curve"]]
    assert relative(curve[0]["val_loss"], golden["curve"][0]["val_loss"]) < 5e-7
    for mine, theirs in zip(curve, golden["curve"], strict=True):
        assert relative(mine["val_loss"], theirs["val_loss"]) < 2e-4
        assert relative(mine["train_loss"], theirs["train_loss"]) < 2e-4


def test_stacked_models_match_separate_runs(pointmass_dataset, tmp_path):
    configs = [config(pointmass_dataset, seed=seed) for seed in (3, 0, 7, 1)]
    alone = [train(c, tmp_path / f"alone-{c.seed}") for c in configs]
    stacked = train_batch(configs, [tmp_path / f"stacked-{c.seed}" for c in configs])
    for index, (one, other) in enumerate(zip(alone, stacked, strict=True)):
        assert other["status"] == "finished" and other["seed"] == one["seed"]
        assert other["stack"] == {"models": 4, "index": index} and one["stack"] == {"models": 1, "index": 0}
        for key in ("N", "D", "C", "tokens", "steps", "flops"):  # every model costed on its own
            assert other[key] == one[key]
        for mine, theirs in zip(other["learning_curve"], one["learning_curve"], strict=True):
            assert mine["step"] == theirs["step"] and mine["flops"] == theirs["flops"]
            assert relative(mine["val_loss"], theirs["val_loss"]) < 1e-6
            assert relative(mine["train_loss"], theirs["train_loss"]) < 1e-6
        assert relative(other["final"]["train_loss"], one["final"]["train_loss"]) < 1e-6
    finals = [r["final"]["val_loss"] for r in stacked]
    assert len(set(finals)) == 4  # different seeds: different models
    # each stacked run's checkpoint is a single model's: it loads and resumes alone
    again = train(configs[2], tmp_path / "stacked-7")
    assert again == stacked[2]


def test_a_diverging_model_fails_alone(pointmass_dataset, tmp_path):
    configs = [config(pointmass_dataset, seed=seed) for seed in range(3)]
    whole = train_batch(configs, [tmp_path / f"whole-{i}" for i in range(3)])
    outs = [tmp_path / f"cut-{i}" for i in range(3)]

    class PowerCut(Exception):
        pass

    def cut(step, total, metrics):
        if step == 20:
            raise PowerCut

    with pytest.raises(PowerCut):
        train_batch(configs, outs, progress=cut)
    weights = outs[1] / "checkpoint" / "model.safetensors"
    poisoned = {name: torch.full_like(t, math.nan) for name, t in load_file(weights).items()}
    save_file(poisoned, weights)
    resumed = train_batch(configs, outs)
    assert resumed[1]["status"] == "failed" and "diverged" in resumed[1]["error"]
    assert json.loads((outs[1] / "record.json").read_text())["status"] == "failed"
    for index in (0, 2):  # the others resume and finish exactly as if nothing happened
        assert resumed[index]["status"] == "finished"
        assert resumed[index]["final"] == whole[index]["final"]
    with pytest.raises(RunDivergedError, match="diverged"):
        train(configs[1], outs[1])


def test_too_many_models_for_memory_names_the_largest_that_fits(pointmass_dataset, tmp_path):
    configs = [config(pointmass_dataset, batch_size=4096, seed=seed) for seed in range(64)]  # ~0.6 GiB each
    with pytest.raises(BadInputError, match=r"train at most \d+ at once"):
        train_batch(configs, [tmp_path / f"run-{i}" for i in range(len(configs))])
    assert not any(tmp_path.iterdir())


def test_only_the_seed_may_differ(pointmass_dataset, tmp_path):
    with pytest.raises(BadInputError, match="d_model"):
        train_batch(
            [config(pointmass_dataset), config(pointmass_dataset, d_model=32, seed=1)],
            [tmp_path / "a", tmp_path / "b"],
        )
