import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from roboscale.models import LADDER_WIDTHS, ModelConfig, SequenceModel, ladder_shape

DISCRETE = ModelConfig(
    n_layer=2,
    d_model=32,
    n_head=2,
    context_steps=4,
    state_tokens=4,
    state_group=2,
    state_bins=64,
    action_tokens=2,
    action_group=1,
    action_bins=16,
    n_tasks=3,
)
CONTINUOUS = ModelConfig(
    n_layer=1,
    d_model=16,
    n_head=1,
    context_steps=3,
    state_tokens=1,
    state_group=8,
    state_bins=0,
    action_tokens=1,
    action_group=2,
    action_bins=0,
    n_tasks=1,
)


def batch_for(config, size=3, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def slots(tokens, group, bins):
        shape = (size, config.context_steps, tokens, group)
        return torch.randint(0, bins, shape, generator=generator) if bins else torch.randn(shape, generator=generator)

    return {
        "states": slots(config.state_tokens, config.state_group, config.state_bins),
        "actions": slots(config.action_tokens, config.action_group, config.action_bins),
        "tasks": torch.zeros(size, dtype=torch.long),
        "valid": torch.ones(size, config.context_steps, dtype=torch.bool),
        "state_mask": torch.ones(config.state_tokens, config.state_group, dtype=torch.bool),
        "action_mask": torch.ones(config.action_tokens, config.action_group, dtype=torch.bool),
    }


def test_parameter_groups_match_a_hand_count():
    c, d = DISCRETE, DISCRETE.d_model
    embedding = (
        (64 + 1) * d + 2 * d + (16 + 1) * d + 1 * d + (4 + 2) * d + 4 * d + 3 * d
    )  # tables, slot dims, slot, time, task
    transformer = c.n_layer * (12 * d * d + 4 * d) + 2 * d  # qkv+out+mlp matrices, two LayerNorms per block, final norm
    head = (2 * d + d * 64) + (1 * d + d * 16)  # queries and bins-wide projections
    counts = SequenceModel(c).num_params()
    assert counts == {
        "embedding": embedding,
        "transformer": transformer,
        "head": head,
        "total": embedding + transformer + head,
        "non_embedding": transformer + head,
    }


@pytest.mark.parametrize("config", [DISCRETE, CONTINUOUS])
@pytest.mark.parametrize("task", ["bc", "wm"])
def test_exact_flops_equal_the_measured_matrix_multiplies(config, task):
    model = SequenceModel(config)
    batch = batch_for(config)
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.loss(batch, task)
        loss.backward()
    tokens = 3 * config.sequence_length
    assert counter.get_total_flops() == pytest.approx(model.flops_per_token(task, attention=False) * tokens, rel=1e-9)


def test_flop_conventions_by_hand():
    model, c = SequenceModel(DISCRETE), DISCRETE
    counts = model.num_params()
    attention = 12 * c.n_layer * c.sequence_length * c.d_model
    assert model.flops_per_token("bc", params="total") == 6 * counts["total"] + attention
    assert model.flops_per_token("bc", params="non_embedding", attention=False) == 6 * counts["non_embedding"]
    # exact, by hand: blocks per position, the 16-bin action head on 4 steps x 2 actions
    blocks = 2 * c.n_layer * 12 * c.d_model**2
    head = 2 * c.d_model * 16 * (4 * 2) / c.sequence_length
    assert model.flops_per_token("bc", attention=False) == pytest.approx(3 * (blocks + head))


def test_initial_loss_is_uniform_over_bins():
    torch.manual_seed(0)
    loss, metrics = SequenceModel(DISCRETE).loss(batch_for(DISCRETE), "wm")
    assert float(loss.detach()) == pytest.approx(math.log(64), abs=0.05)
    assert metrics["predicted_dims"] == 3 * 3 * 4 * 2  # 3 windows x 3 next steps x 4 slots x 2 dims


def test_predictions_never_see_the_future():
    model = SequenceModel(DISCRETE).eval()
    batch = batch_for(DISCRETE)
    hidden = model(batch["states"], batch["actions"], batch["tasks"])
    changed = {k: v.clone() for k, v in batch.items()}
    changed["actions"][:, -1] = (changed["actions"][:, -1] + 1) % 16  # the last step's actions
    hidden_changed = model(changed["states"], changed["actions"], changed["tasks"])
    first_action_slot = 3 * DISCRETE.slots_per_step + DISCRETE.state_tokens
    torch.testing.assert_close(hidden[:, :first_action_slot], hidden_changed[:, :first_action_slot])
    assert not torch.allclose(hidden[:, first_action_slot:], hidden_changed[:, first_action_slot:])


def test_ladder_rule_spans_ten_thousand_to_ten_million():
    sizes = []
    for width in LADDER_WIDTHS[:10]:  # up to 384 wide; the rest is the same rule, larger
        layers, heads = ladder_shape(width)
        assert width % heads == 0
        config = ModelConfig(layers, width, heads, 8, 39, 1, 256, 4, 1, 256, 10)
        sizes.append(SequenceModel(config).num_params()["non_embedding"])
    assert sizes == sorted(sizes)
    assert sizes[0] < 2e4 and sizes[8] > 6e6


def test_a_stack_of_models_counts_each_model_and_never_mixes_them():
    single = SequenceModel(DISCRETE, seeds=[5])
    stack = SequenceModel(DISCRETE, seeds=[1, 5, 9])
    assert stack.num_params() == single.num_params()  # per model, not for the stack
    assert stack.flops_per_token("bc") == single.flops_per_token("bc")
    batches = [batch_for(DISCRETE, seed=seed) for seed in (0, 1, 2)]
    joined = {key: torch.cat([b[key] for b in batches]) for key in ("states", "actions", "tasks", "valid")}
    joined.update(state_mask=batches[0]["state_mask"], action_mask=batches[0]["action_mask"])
    with FlopCounterMode(display=False) as counter:
        losses, _ = stack.loss(joined, "bc")
        losses.sum().backward()
    tokens = 3 * 3 * DISCRETE.sequence_length  # 3 models x 3 windows
    assert counter.get_total_flops() == pytest.approx(stack.flops_per_token("bc", attention=False) * tokens)
    # model 1 of the stack is the single model with seed 5, on its own rows
    alone, _ = single.loss(batches[1], "bc")
    torch.testing.assert_close(losses[1], alone[0], rtol=1e-6, atol=0)
    # another model's rows or weights never reach it
    changed = {key: value.clone() for key, value in joined.items()}
    changed["actions"][:3] = (changed["actions"][:3] + 1) % 16
    with torch.no_grad():
        stack.blocks[0].mlp_in.weight[2].mul_(3.0)
        after, _ = stack.loss(changed, "bc")
    assert after[1] == losses[1].detach() and after[0] != losses[0] and after[2] != losses[2]


def test_delta_targets_are_the_changes_mod_bins_built_by_hand():
    from roboscale.models import next_state_from_target, wm_target_slots

    states = torch.tensor([[[[3]], [[1]], [[7]]]])  # (batch 1, steps 3, tokens 1, group 1), 8 bins
    delta = wm_target_slots(states, "delta", 8)
    assert delta.flatten().tolist() == [6, 6]  # (1 - 3) mod 8, (7 - 1) mod 8
    assert wm_target_slots(states, "absolute", 8).flatten().tolist() == [1, 7]
    assert torch.equal(next_state_from_target(states[:, :-1], delta, "delta", 8), states[:, 1:])
    values = torch.tensor([[[[0.5]], [[0.25]]]])
    assert wm_target_slots(values, "delta", 0).flatten().tolist() == [-0.25]


def test_delta_loss_equals_the_absolute_loss_of_the_same_distribution_reindexed():
    """A head whose delta logits are its absolute logits shifted by the previous bin
    predicts the same distribution over next states, so the two losses agree exactly."""
    torch.manual_seed(0)
    config = DISCRETE
    batch = batch_for(config, size=4)
    absolute = SequenceModel(config)
    delta = SequenceModel(replace(config, wm_target="delta"))
    delta.load_state_dict(absolute.state_dict())
    bins = config.state_bins
    logits = torch.randn(4, config.context_steps - 1, config.state_tokens, config.state_group, bins)
    previous = batch["states"][:, :-1]
    # Delta class k means next bin (previous + k) mod bins: gather the absolute logit of that bin.
    shifted = torch.gather(logits, -1, (previous[..., None] + torch.arange(bins)) % bins)

    def cross_entropy(predicted, target):
        return F.cross_entropy(predicted.flatten(0, -2), target.flatten(), reduction="sum")

    from roboscale.models import wm_target_slots

    stacked = batch["states"][None]
    lossa = cross_entropy(logits, wm_target_slots(stacked, "absolute", bins)[0])
    lossd = cross_entropy(shifted, wm_target_slots(stacked, "delta", bins)[0])
    assert lossd.item() == pytest.approx(lossa.item(), rel=1e-6)
    # The models' own losses count the same dimensions and start near log(bins) either way.
    total_a, count_a = absolute.loss_terms(batch, "wm")
    total_d, count_d = delta.loss_terms(batch, "wm")
    assert torch.equal(count_a, count_d) and count_a.item() == 4 * 3 * 4 * 2
    assert (total_d / count_d).item() == pytest.approx(math.log(bins), abs=0.3)
    assert not torch.equal(total_a, total_d)  # other targets, same head
