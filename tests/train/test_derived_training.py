"""Training on derived data levels: one tokenizer for every level (tokenizer_data), and the
final loss on every validation split and the held-out tasks (final_split_losses)."""

from dataclasses import fields

import pytest

from roboscale.data import GenerationSpec, SourceTake, derive_dataset, generate
from roboscale.errors import BadInputError
from roboscale.runfolder import tokenizer_payload
from roboscale.study.plan import run_id_for
from roboscale.train import TrainConfig, prepare_data, train_batch


def config(dataset, **changes) -> TrainConfig:
    base = {
        "data": str(dataset),
        "tokenizer": "uniform:32",
        "d_model": 16,
        "steps": 8,
        "batch_size": 8,
        "threads": 1,
        "eval_points": 2,
        "eval_windows": 64,
        "checkpoint_seconds": 1e9,
    }
    return TrainConfig(**{**base, **changes})


def test_a_default_config_keeps_its_run_id():
    default = TrainConfig(data="data/x", steps=100)
    assert "tokenizer_data" not in default.to_dict()
    assert set(default.to_dict()) == {f.name for f in fields(TrainConfig)} - {
        "wm_target", "parametrization", "base_width", "tokenizer_data", "observation", "image_tokenizer", "camera"
    }  # fmt: skip
    # Run ids computed before tokenizer_data existed.
    assert run_id_for(default, "abc") == "ea69a50e844c316a"
    mup = TrainConfig(data="data/x", flops=1e12, d_model=48, parametrization="mup")
    assert run_id_for(mup, "abc") == "219cdd0706e24b98"
    assert TrainConfig(data="data/x", steps=100, tokenizer_data="data/y").to_dict()["tokenizer_data"] == "data/y"


def test_levels_share_one_tokenizer_with_tokenizer_data(pointmass_dataset, tmp_path):
    levels = [
        derive_dataset([SourceTake("expert", str(pointmass_dataset), k)], tmp_path / f"k{k}", reference="expert").root
        for k in (6, 40)
    ]

    def tokenizers(folder, **changes) -> dict:
        data, _ = prepare_data(config(folder, **changes))
        return tokenizer_payload(data.state_tokenizer, data.action_tokenizer)

    shared = [tokenizers(level, tokenizer_data=str(pointmass_dataset)) for level in levels]
    own = [tokenizers(level) for level in levels]
    assert shared[0] == shared[1] == tokenizers(pointmass_dataset)  # the source's bin edges, at every level
    assert own[0] != own[1]  # fitted on each level's own statistics, the edges differ
    assert own[0]["state"]["edges"] != shared[0]["state"]["edges"]  # the bin edges themselves
    quantile = [tokenizers(level, tokenizer="quantile:16", tokenizer_data=str(pointmass_dataset)) for level in levels]
    assert quantile[0] == quantile[1]  # quantile edges, fitted on the training frames, too


def test_tokenizer_data_of_another_robot_is_refused(pointmass_dataset, tmp_path):
    from tests.data.test_derive import write_synthetic

    other = write_synthetic(tmp_path / "other", 3)
    with pytest.raises(BadInputError, match=r"observation.state of shape \[3\].*\[8\]"):
        prepare_data(config(pointmass_dataset, tokenizer_data=str(other)))


def test_every_stacked_run_records_its_loss_on_every_validation_split(pointmass_dataset, tmp_path):
    spec = GenerationSpec(env="pointmass", episodes=30, heldout_tasks=("push",), seed=3)
    reference = str(generate(spec, tmp_path / "ref").out)
    takes = [
        SourceTake("ref", reference, 10),
        SourceTake("other", str(pointmass_dataset), 10, tasks=("reach",)),
        SourceTake("twin", reference, 0),  # no training episodes: the reference's validation split again
    ]
    level = derive_dataset(takes, tmp_path / "level", reference="ref")
    assert set(level.splits) == {"train", "validation", "validation.other", "validation.twin", "heldout_tasks"}
    configs = [config(level.root, seed=seed) for seed in (0, 1)]
    records = train_batch(configs, [tmp_path / "run0", tmp_path / "run1"])
    losses = [record["final_split_losses"] for record in records]
    for record, split_losses in zip(records, losses, strict=True):
        assert set(split_losses) == {"validation", "validation.other", "validation.twin", "heldout_tasks"}
        assert split_losses["validation"] == record["final"]["val_loss"]
        assert split_losses["validation.twin"] == pytest.approx(split_losses["validation"], rel=1e-12)
        assert split_losses["validation.other"] != pytest.approx(split_losses["validation"], rel=1e-3)
        assert split_losses["heldout_tasks"] != pytest.approx(split_losses["validation"], rel=1e-3)
        assert record["final_split_loss_se"]["validation"] == record["final"]["val_loss_se"]
        assert all(0 < se < 1 for se in record["final_split_loss_se"].values())
    assert losses[0]["heldout_tasks"] != losses[1]["heldout_tasks"]  # each seed's own model
