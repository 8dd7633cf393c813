"""The image stream: slot layout, parameter and FLOP counts, losses, and state-only models
unchanged by it."""

import hashlib
import math
from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from roboscale.models import ModelConfig, SequenceModel

STATE = ModelConfig(
    n_layer=1,
    d_model=16,
    n_head=1,
    context_steps=3,
    state_tokens=2,
    state_group=1,
    state_bins=8,
    action_tokens=1,
    action_group=2,
    action_bins=0,
    n_tasks=2,
)
VQ = replace(STATE, image_tokens=4, image_group=1, image_bins=32)  # vq:32@4, with state
PATCH = replace(STATE, image_tokens=4, image_group=12, image_bins=0)  # patch:2 on 4x4x3 frames
VQ_ONLY = replace(VQ, state_tokens=0, state_group=0, state_bins=0)  # observation = image
PATCH_ONLY = replace(PATCH, state_tokens=0, state_group=0, state_bins=0)
IMAGE_CONFIGS = {"vq": VQ, "patch": PATCH, "vq-only": VQ_ONLY, "patch-only": PATCH_ONLY}


def image_batch(config: ModelConfig, size: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    steps = config.context_steps

    def slots(tokens: int, group: int, bins: int) -> torch.Tensor:
        shape = (size, steps, tokens, group)
        return torch.randint(0, bins, shape, generator=generator) if bins else torch.randn(shape, generator=generator)

    batch = {
        "actions": slots(config.action_tokens, config.action_group, config.action_bins),
        "tasks": torch.randint(0, config.n_tasks, (size,), generator=generator),
        "valid": torch.ones(size, steps, dtype=torch.bool),
        "action_mask": torch.ones(config.action_tokens, config.action_group, dtype=torch.bool),
        "states": None,
    }
    if config.state_tokens:
        batch["states"] = slots(config.state_tokens, config.state_group, config.state_bins)
        batch["state_mask"] = torch.ones(config.state_tokens, config.state_group, dtype=torch.bool)
    if config.image_tokens:
        batch["images"] = slots(config.image_tokens, config.image_group, config.image_bins)
        batch["image_mask"] = torch.ones(config.image_tokens, config.image_group, dtype=torch.bool)
    return batch


def parameter_digest(model: SequenceModel) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()[:16]


def test_state_only_models_are_the_bytes_and_losses_they_were_before_images():
    """Digests and losses computed with the code of main before the image stream (ed533b7),
    seed 5, tests/models/test_transformer.py's configs and batches."""
    from tests.models.test_transformer import CONTINUOUS, DISCRETE, batch_for

    expected = {
        "discrete": (DISCRETE, "32d13aa4285090c3", 2.826664924621582, 4.141449451446533),
        "continuous": (CONTINUOUS, "3067925871c62daf", 0.8163236975669861, 1.0795799493789673),
    }
    for config, digest, bc_loss, wm_loss in expected.values():
        model = SequenceModel(config, seeds=[5])
        assert parameter_digest(model) == digest
        assert not any(name.startswith("image_") for name, _ in model.named_parameters())
        assert "image_tokens" not in config.to_dict()
        with torch.no_grad():
            assert float(model.loss(batch_for(config), "bc")[0][0]) == bc_loss
            assert float(model.loss(batch_for(config), "wm")[0][0]) == wm_loss


@pytest.mark.parametrize("kind", list(IMAGE_CONFIGS))
@pytest.mark.parametrize("task", ["bc", "wm"])
def test_exact_flops_with_images_equal_the_measured_matrix_multiplies(kind, task):
    config = IMAGE_CONFIGS[kind]
    model = SequenceModel(config)
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.loss(image_batch(config), task)
        loss.backward()
    tokens = 3 * config.sequence_length
    measured = counter.get_total_flops()
    assert measured == pytest.approx(model.flops_per_token(task, attention=False) * tokens, rel=1e-9)
    without_images = SequenceModel(replace(STATE, context_steps=config.context_steps))
    assert model.flops_per_token(task) > without_images.flops_per_token(task)


def test_image_parameters_and_flops_by_hand():
    d, steps = 16, 3
    patch, vq = SequenceModel(PATCH_ONLY).num_params(), SequenceModel(VQ_ONLY).num_params()
    # patch: a 12 -> 16 projection with bias in, a 16 -> 12 regression head with bias out
    # vq: a 32 x 16 code table in, a 16 -> 32 head without bias or query out
    assert patch["embedding"] - vq["embedding"] == (12 * d + d) - 32 * d
    assert patch["head"] - vq["head"] == (d * 12 + 12) - d * 32
    slots = 4 + 1  # image tokens and one action slot per step; no state
    assert PATCH_ONLY.slots_per_step == slots and PATCH_ONLY.sequence_length == steps * slots
    blocks = 2 * 12 * d * d * steps * slots  # forward, per sequence
    head = 2 * d * 12 * (steps - 1) * 4  # wm: 12 pixel values of 4 patches of 2 next frames
    projection = 2 * 12 * d * 4 * steps + 2 * 2 * d * steps  # patch and (continuous) action inputs
    expected = (3 * (blocks + head) + 2 * projection) / (steps * slots)
    assert SequenceModel(PATCH_ONLY).flops_per_token("wm", attention=False) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["vq", "vq-only"])
def test_a_vq_world_model_starts_near_log_codes_and_predicts_the_next_frames_codes(kind):
    config = IMAGE_CONFIGS[kind]
    torch.manual_seed(0)
    batch = image_batch(config, size=4)
    loss, metrics = SequenceModel(config).loss(batch, "wm")
    assert float(loss.detach()) == pytest.approx(math.log(32), abs=0.05)
    assert metrics["predicted_dims"] == 4 * 2 * 4  # 4 windows x 2 next frames x 4 codes
    loss, metrics = SequenceModel(config).loss(batch, "bc")
    assert metrics["predicted_dims"] == 4 * 3 * 2  # the actions, from the image (and state)


def test_a_patch_world_model_regresses_every_pixel_value_of_the_next_frames():
    batch = image_batch(PATCH, size=2)
    _, metrics = SequenceModel(PATCH).loss(batch, "wm")
    assert metrics["predicted_dims"] == 2 * 2 * 4 * 12
    # Padding frames (invalid) carry no loss: only frame 1 of the first window counts.
    batch["valid"] = torch.tensor([[True, True, False], [True, False, False]])
    _, metrics = SequenceModel(PATCH).loss(batch, "wm")
    assert metrics["predicted_dims"] == 4 * 12


@pytest.mark.parametrize("kind", ["vq", "patch"])
def test_image_slots_come_first_and_never_see_the_future(kind):
    """Layout image, state, action: changing step 1's image changes nothing before its
    first image slot and the hidden states from it on."""
    config = IMAGE_CONFIGS[kind]
    model = SequenceModel(config).eval()
    batch = image_batch(config)
    hidden = model(batch["states"], batch["actions"], batch["tasks"], images=batch["images"])
    changed = batch["images"].clone()
    changed[:, 1] = (changed[:, 1] + 1) % 32 if config.image_bins else changed[:, 1] + 1.0
    after = model(batch["states"], batch["actions"], batch["tasks"], images=changed)
    first = config.slots_per_step  # step 1's first slot: its first image token
    torch.testing.assert_close(hidden[:, :first], after[:, :first], rtol=0, atol=0)
    assert not torch.allclose(hidden[:, first], after[:, first])
    state_changed = batch["states"].clone()
    state_changed[:, 1] = (state_changed[:, 1] + 1) % 8
    after = model(state_changed, batch["actions"], batch["tasks"], images=batch["images"])
    first_state = config.slots_per_step + config.image_tokens
    torch.testing.assert_close(hidden[:, :first_state], after[:, :first_state], rtol=0, atol=0)


def test_image_configs_are_checked_and_written_only_with_images():
    assert VQ.to_dict()["image_bins"] == 32 and VQ.observation_tokens == 6
    with pytest.raises(ValueError, match="observe a state or an image"):
        replace(STATE, state_tokens=0)
    with pytest.raises(ValueError, match="image_group"):
        replace(VQ, image_group=3)
    with pytest.raises(ValueError, match="absolute image tokens"):
        replace(VQ, wm_target="delta")
    with pytest.raises(ValueError, match="pass images="):
        model = SequenceModel(VQ)
        batch = image_batch(VQ)
        model(batch["states"], batch["actions"], batch["tasks"])
