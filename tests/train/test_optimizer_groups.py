"""Which parameters AdamW decays: the blocks' and heads' matrices, whatever the stack size.

Every parameter carries a leading model axis (K, also for a single model), so a
matrix is (K, out, in) and a LayerNorm weight (K, d): a test on the whole tensor's
rank decays the norms and spares the matrices (the bug these tests pin down).
"""

from dataclasses import replace

import pytest
import torch

from roboscale.models import ModelConfig, SequenceModel
from roboscale.train.config import TrainConfig
from roboscale.train.step import decayed_parameter_names, make_optimizer

DISCRETE = ModelConfig(
    n_layer=2,
    d_model=32,
    n_head=2,
    context_steps=4,
    state_tokens=2,
    state_group=2,
    state_bins=8,
    action_tokens=1,
    action_group=2,
    action_bins=8,
    n_tasks=3,
)
CONTINUOUS = replace(DISCRETE, n_layer=1, state_bins=0, action_bins=0)

BLOCK_MATRICES = ("qkv.weight", "attention_out.weight", "mlp_in.weight", "mlp_out.weight")
HEAD_MATRICES = {"state_head.out.weight", "action_head.out.weight"}


def expected_decayed(n_layer: int) -> set[str]:
    """By hand: each block's four matrices and the two heads' readout matrices."""
    blocks = {f"blocks.{layer}.{matrix}" for layer in range(n_layer) for matrix in BLOCK_MATRICES}
    return blocks | HEAD_MATRICES


def decayed_in_optimizer(model: SequenceModel, config: TrainConfig) -> set[str]:
    """Names of the parameters in an optimiser group with weight decay > 0."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    groups = make_optimizer(model, config).param_groups
    return {names[id(p)] for group in groups if group["weight_decay"] > 0 for p in group["params"]}


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]], ids=["single", "stacked"])
@pytest.mark.parametrize("shape", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_exactly_the_blocks_and_heads_matrices_are_decayed(shape, seeds):
    model = SequenceModel(shape, seeds=seeds)
    expected = expected_decayed(shape.n_layer)
    assert set(decayed_parameter_names(model)) == expected
    config = TrainConfig(data="unused", d_model=shape.d_model, steps=1, lr=1e-3, weight_decay=0.1)
    assert decayed_in_optimizer(model, config) == expected
    # Norms, biases, embeddings and the continuous input projection are left alone.
    spared = {name for name, _ in model.named_parameters()} - expected
    assert "blocks.0.ln_attention.weight" in spared and "ln_final.weight" in spared
    assert "task_embedding.weight" in spared
    if shape is CONTINUOUS:
        assert {"state_embedding.project.weight", "action_head.out.bias"} <= spared


@pytest.mark.parametrize("parametrization, width", [("standard", 32), ("mup", 64)])
@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["single", "stacked"])
def test_a_zero_gradient_matrix_shrinks_by_lr_times_decay_per_step(parametrization, width, seeds):
    """AdamW with a zero gradient moves only by decay: x (1 - lr x wd) per step for
    every decayed matrix (under muP too: lr / m x wd x m), nothing for the rest."""
    shape = replace(DISCRETE, d_model=width, n_head=width // 16, parametrization=parametrization)
    model = SequenceModel(shape, seeds=seeds)
    lr, weight_decay, steps = 0.05, 0.2, 3
    config = TrainConfig(
        data="unused", d_model=width, steps=steps, lr=lr, weight_decay=weight_decay, parametrization=parametrization
    )
    optimizer = make_optimizer(model, config)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    for _ in range(steps):
        optimizer.step()
    shrink = (1.0 - lr * weight_decay) ** steps  # 0.99^3 = 0.970299
    decayed = expected_decayed(shape.n_layer)
    for name, parameter in model.named_parameters():
        factor = shrink if name in decayed else 1.0
        torch.testing.assert_close(parameter.detach(), before[name] * factor, rtol=1e-6, atol=0.0, msg=name)
    assert model.blocks[0].qkv.weight.abs().sum() > 0  # a matrix that can shrink
