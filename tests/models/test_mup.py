"""The maximal-update parametrisation: equal to the standard one at its base width (but
for the attention scale), width-aware init and learning rates, and the coordinate check."""

import math
from dataclasses import replace

import pytest
import torch

from roboscale.errors import BadInputError
from roboscale.models import ModelConfig, SequenceModel
from roboscale.train.config import TrainConfig
from roboscale.train.step import make_optimizer, train_step

from .test_transformer import DISCRETE, batch_for


def shape(width: int, parametrization: str = "mup", base_width: int = 32) -> ModelConfig:
    """DISCRETE at another width: two layers, 16-wide heads."""
    return replace(DISCRETE, d_model=width, n_head=width // 16, parametrization=parametrization, base_width=base_width)


def test_at_base_width_mup_is_standard_but_for_the_attention_scale():
    standard, mup = SequenceModel(shape(32, "standard")), SequenceModel(shape(32, "mup"))
    for (name, p), (_, q) in zip(standard.named_parameters(), mup.named_parameters(), strict=True):
        assert torch.equal(p, q), name
    batch = batch_for(DISCRETE, size=8)
    with torch.no_grad():
        reference = standard.loss(batch, "bc")[0]
        differs_in_attention = mup.loss(batch, "bc")[0]
        for block in mup.blocks:
            assert block.attention_scale == pytest.approx(1 / 16)  # 1/d_head, not 1/sqrt(d_head) = 1/4
            block.attention_scale = None  # standard's 1/sqrt(d_head)
        assert torch.equal(mup.loss(batch, "bc")[0], reference)
    # Near init attention is almost uniform either way: the two losses differ, by little.
    assert 0 < abs(float(differs_in_attention - reference)) < 1e-3


def test_hidden_matrices_start_at_std_over_sqrt_width_multiplier():
    model = SequenceModel(shape(128, "mup", base_width=32), seeds=[0])  # m = 4
    params = {name: p.detach() for name, p in model.named_parameters()}
    assert model.hidden_matrices() == [
        f"blocks.{i}.{name}.weight" for i in range(2) for name in ("qkv", "attention_out", "mlp_in", "mlp_out")
    ]
    assert float(params["blocks.0.qkv.weight"].std()) == pytest.approx(0.02 / 2, rel=0.03)
    assert float(params["blocks.1.mlp_in.weight"].std()) == pytest.approx(0.02 / 2, rel=0.03)
    assert float(params["blocks.0.mlp_out.weight"].std()) == pytest.approx(0.02 / 2 / math.sqrt(4), rel=0.03)
    # Vector-like parameters keep standard's init.
    assert float(params["action_head.out.weight"].std()) == pytest.approx(0.02, rel=0.05)
    assert float(params["state_embedding.table.weight"][:, :-1].std()) == pytest.approx(0.02, rel=0.05)
    assert model.action_head.output_multiplier == 0.25


def test_output_multiplier_divides_logits_by_the_width_multiplier():
    model = SequenceModel(shape(64, "mup"))  # m = 2
    hidden = torch.randn(1, 5, 64)
    with torch.no_grad():
        scaled = model.action_head.predict(hidden)
        model.action_head.output_multiplier = 1.0
        assert torch.allclose(scaled * 2, model.action_head.predict(hidden), atol=1e-6)


def test_hidden_matrix_groups_get_lr_times_base_over_width():
    model = SequenceModel(shape(128, "mup", base_width=32))
    config = TrainConfig(data="unused", d_model=128, steps=1, lr=1e-2, parametrization="mup")
    groups = make_optimizer(model, config).param_groups
    names = {id(p): name for name, p in model.named_parameters()}
    by_name = {names[id(p)]: group for group in groups for p in group["params"]}
    hidden = set(model.hidden_matrices())
    assert len(hidden) == 8 and len(by_name) == len(names)
    for name, group in by_name.items():
        expected = 1e-2 * 32 / 128 if name in hidden else 1e-2
        assert group["lr"] == pytest.approx(expected), name
        assert group["lr_scale"] == pytest.approx(expected / 1e-2), name
    assert groups[0]["lr_scale"] == 1.0  # the group learning curves record
    # Standard: one learning rate, the same decay for every parameter as muP at base width.
    standard = SequenceModel(shape(128, "standard"))
    standard_groups = make_optimizer(standard, replace(config, parametrization="standard")).param_groups
    assert {group["lr"] for group in standard_groups} == {1e-2}
    base = SequenceModel(shape(32, "mup"))
    base_groups = make_optimizer(base, replace(config, d_model=32)).param_groups
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in base_groups] == [
        (g["lr"], g["weight_decay"], len(g["params"])) for g in standard_groups
    ]


def _residual_rms_after_training(width: int, parametrization: str, steps: int = 10, lr: float = 1e-2) -> float:
    """RMS of the residual stream (input of the final LayerNorm) after ``steps`` AdamW
    steps on a fixed random batch, the learning rates as the trainer sets them."""
    torch.manual_seed(0)
    model = SequenceModel(shape(width, parametrization), seeds=[0])
    config = TrainConfig(data="unused", d_model=width, steps=steps, lr=lr, parametrization=parametrization)
    optimizer = make_optimizer(model, config)
    batch = batch_for(DISCRETE, size=8, seed=0)
    alive = torch.ones(1, dtype=torch.bool)
    for _ in range(steps):
        train_step(model, optimizer, batch, config, alive)
    seen = {}
    model.ln_final.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    with torch.no_grad():
        model.hidden(batch["states"], batch["actions"], batch["tasks"])
    return float(seen["x"].pow(2).mean().sqrt())


def test_coordinate_check_activations_stay_order_one_across_widths_under_mup_only():
    torch.set_num_threads(1)
    widths = (16, 32, 64, 128)
    mup = [_residual_rms_after_training(w, "mup") for w in widths]
    standard = [_residual_rms_after_training(w, "standard") for w in widths]
    # muP: measured 0.54, 0.33, 0.34, 0.29; standard: 0.15, 0.33, 2.5, 13.9 (Adam's
    # updates of width-sized matrices grow the residual stream with width).
    assert max(mup) / min(mup) < 3
    assert all(0.1 < rms < 3 for rms in mup)
    assert standard[-1] / standard[0] > 20


@pytest.mark.parametrize(
    "changes, message",
    [({"parametrization": "mu-p"}, "choose standard or mup"), ({"base_width": 0}, "positive integer")],
)
def test_bad_parametrization_is_refused(changes, message):
    with pytest.raises(BadInputError, match=message):
        TrainConfig(data="x", steps=1, **changes).validate()


def test_default_settings_keep_their_run_ids():
    default = TrainConfig(data="x", steps=10)
    assert "parametrization" not in default.to_dict() and "base_width" not in default.to_dict()
    mup = replace(default, parametrization="mup").to_dict()
    assert mup["parametrization"] == "mup" and "base_width" not in mup  # each left out at its default
    assert replace(default, base_width=64).to_dict()["base_width"] == 64
    assert TrainConfig.from_dict(mup) == replace(default, parametrization="mup")
    assert "parametrization" not in DISCRETE.to_dict()
    assert ModelConfig(**shape(64).to_dict()) == shape(64)


def test_mup_default_learning_rate_is_the_base_widths():
    from roboscale.train import default_lr

    assert TrainConfig(data="x", steps=1, d_model=128, parametrization="mup").peak_lr() == default_lr(32)
    assert TrainConfig(data="x", steps=1, d_model=128).peak_lr() == default_lr(128)
