"""Decoding with a key-value cache gives what a full forward pass gives.

Prefill + step-by-step decoding against one forward pass over the whole window (fp32
logits to 1e-5), for both heads (bc reads the action head, wm the state head), binned
and continuous slots, one model and a stack of three; and a closed-loop rollout whose
greedy actions are the same with the cache and without it.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from roboscale.data.envs import get_family
from roboscale.evaluate.episodes import plan_episodes
from roboscale.evaluate.policy import LoadedModel, TransformerPolicy
from roboscale.evaluate.rollout import run_episodes
from roboscale.models import ModelConfig, SequenceModel
from roboscale.tokenize import TokenizerSpec, fit_tokenizer

DISCRETE = ModelConfig(
    n_layer=2,
    d_model=32,
    n_head=2,
    context_steps=4,
    state_tokens=3,
    state_group=2,
    state_bins=16,
    action_tokens=2,
    action_group=1,
    action_bins=8,
    n_tasks=3,
)
CONTINUOUS = replace(DISCRETE, state_tokens=1, state_group=5, state_bins=0, action_group=2, action_bins=0)
CONFIGS = {"discrete": DISCRETE, "continuous": CONTINUOUS}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: one thread is fastest, and spare threads only contend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lively_model(config: ModelConfig, n_models: int) -> SequenceModel:
    """A model with weights large enough that attention is far from uniform (the
    initialisation's 0.02 would let a wrong position or mask hide under 1e-5)."""
    model = SequenceModel(config, seeds=range(n_models))
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


def windows(config: ModelConfig, rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random full windows (rows, context_steps, tokens, group), bins or floats, and task ids."""
    generator = torch.Generator().manual_seed(seed)

    def slots(tokens: int, group: int, bins: int) -> torch.Tensor:
        shape = (rows, config.context_steps, tokens, group)
        return torch.randint(0, bins, shape, generator=generator) if bins else torch.randn(shape, generator=generator)

    states = slots(config.state_tokens, config.state_group, config.state_bins)
    actions = slots(config.action_tokens, config.action_group, config.action_bins)
    return states, actions, torch.randint(0, config.n_tasks, (rows,), generator=generator)


def head_for(model: SequenceModel, task: str):
    return model.action_head if task == "bc" else model.state_head


@pytest.mark.parametrize("n_models", [1, 3])
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
@pytest.mark.parametrize("task", ["bc", "wm"])
def test_prefill_then_one_token_at_a_time_gives_the_full_forward_logits(task, kind, n_models):
    config = CONFIGS[kind]
    model = lively_model(config, n_models)
    head = head_for(model, task)
    states, actions, tasks = windows(config, rows=2 * n_models)
    prefill = config.slots_per_step + config.state_tokens  # one frame and the next frame's states
    with torch.no_grad():
        full = head(model(states, actions, tasks))
        cache = model.start_cache(tasks)
        pieces = [model.extend(cache, states, actions, prefill)]
        pieces += [model.extend(cache, states, actions, 1) for _ in range(config.sequence_length - prefill)]
        decoded = head(torch.cat(pieces, dim=1))
    assert full.abs().max() > 0.5  # logits large enough for 1e-5 to mean something
    torch.testing.assert_close(decoded, full, rtol=0, atol=1e-5)
    assert cache.lengths.tolist() == [config.sequence_length] * len(tasks)


IMAGE_CONFIGS = {
    "vq+state": replace(DISCRETE, image_tokens=4, image_group=1, image_bins=16),
    "patch": replace(CONTINUOUS, state_tokens=0, state_group=0, state_bins=0, image_tokens=4, image_group=12),
}


@pytest.mark.parametrize("n_models", [1, 2])
@pytest.mark.parametrize("kind", list(IMAGE_CONFIGS))
@pytest.mark.parametrize("task", ["bc", "wm"])
def test_image_windows_decode_with_the_cache_as_the_full_forward(task, kind, n_models):
    """Image slots first in each step: a prefill of one frame and the next frame's first
    image token, then one token at a time, reads the image head (wm) or the action head (bc)
    as one forward pass does."""
    config = IMAGE_CONFIGS[kind]
    model = lively_model(config, n_models)
    head = model.action_head if task == "bc" else model.image_head
    rows = 2 * n_models
    states, actions, tasks = (
        windows(config, rows=rows) if config.state_tokens else (None, *windows(CONTINUOUS, rows)[1:])
    )
    generator = torch.Generator().manual_seed(3)
    shape = (rows, config.context_steps, config.image_tokens, config.image_group)
    images = (
        torch.randint(0, config.image_bins, shape, generator=generator) if config.image_bins else torch.randn(shape)
    )
    prefill = config.slots_per_step + 1
    with torch.no_grad():
        full = head(model(states, actions, tasks, images=images))
        cache = model.start_cache(tasks)
        pieces = [model.extend(cache, states, actions, prefill, images=images)]
        for _ in range(config.sequence_length - prefill):
            pieces.append(model.extend(cache, states, actions, 1, images=images))
        decoded = head(torch.cat(pieces, dim=1))
        cache.rewind(torch.full_like(cache.lengths, config.slots_per_step))
        read = torch.full_like(cache.lengths, config.image_tokens - 1)  # the last image slot of step 1
        last_image = model.extend(cache, states, actions, config.image_tokens, read=read, images=images)
    assert full.abs().max() > 0.5
    torch.testing.assert_close(decoded, full, rtol=0, atol=1e-5)
    position = config.slots_per_step + config.image_tokens - 1
    torch.testing.assert_close(head(last_image)[:, 0], full[:, position], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_stacked_rows_decode_as_their_own_model(kind):
    """Row block k of a stack of 3 decodes as model k alone does (model-major rows)."""
    config = CONFIGS[kind]
    stack = lively_model(config, 3)
    states, actions, tasks = windows(config, rows=3 * 2)
    with torch.no_grad():
        cache = stack.start_cache(tasks)
        stacked = stack.extend(cache, states, actions, config.sequence_length - 1)
        for k in range(3):
            single = SequenceModel(config, seeds=[0]).eval()
            single.load_state_dict({name: value[k : k + 1] for name, value in stack.state_dict().items()})
            rows = slice(2 * k, 2 * k + 2)
            own = single.start_cache(tasks[rows])
            mine = single.extend(own, states[rows], actions[rows], config.sequence_length - 1)
            torch.testing.assert_close(stacked[rows], mine, rtol=0, atol=1e-5)


def test_rows_at_different_lengths_continue_from_their_own_positions():
    """The world-model case: windows of different lengths prefilled together (reading only
    each row's last token), each row rewound to its own length, then decoded one token at a
    time; each row matches a full forward pass over its own window."""
    config = DISCRETE
    model = lively_model(config, 1)
    states, actions, tasks = windows(config, rows=3, seed=1)
    lengths = torch.tensor([config.slots_per_step, 2 * config.slots_per_step + 1, 3 * config.slots_per_step])
    with torch.no_grad():
        full = model(states, actions, tasks)
        cache = model.start_cache(tasks)
        last = model.extend(cache, states, actions, int(lengths.max()), read=lengths - 1)[:, 0]
        torch.testing.assert_close(last, full[torch.arange(3), lengths - 1], rtol=0, atol=1e-5)
        cache.rewind(lengths)
        for offset in range(4):
            hidden = model.extend(cache, states, actions, 1)[:, 0]
            torch.testing.assert_close(hidden, full[torch.arange(3), lengths + offset], rtol=0, atol=1e-5)
        kept = cache.select(torch.tensor([2, 0]))  # finished rows leave the batch
        hidden = model.extend(kept, states[[2, 0]], actions[[2, 0]], 1)[:, 0]
        torch.testing.assert_close(hidden, full[[2, 0], lengths[[2, 0]] + 4], rtol=0, atol=1e-5)


def test_extending_past_the_window_given_is_refused():
    config = CONTINUOUS
    model = lively_model(config, 1)
    states, actions, tasks = windows(config, rows=2)
    cache = model.start_cache(tasks)
    with torch.no_grad():
        model.extend(cache, states[:, :1], actions[:, :1], config.slots_per_step)
        with pytest.raises(ValueError, match="end inside the window"):
            model.extend(cache, states[:, :1], actions[:, :1], 1)
    with pytest.raises(ValueError, match="rewind"):
        cache.rewind(cache.lengths + 1)


def tiny_policy(action_kind: str) -> LoadedModel:
    """An untrained pointmass policy (its actions are arbitrary but deterministic), context 3
    so that 12-step episodes slide their window; binned actions take 2 slots (256 bins: an
    argmax that a small error in the hidden state would change)."""
    family = get_family("pointmass")
    env = family.make("reach")
    observation_dims, action_dims = env.reset(0).size, env.expert_action(env.reset(0)).size
    stats = {
        "state": {"min": -np.ones(observation_dims), "max": np.ones(observation_dims)},
        "action": {"min": -np.ones(action_dims), "max": np.ones(action_dims)},
    }
    for stream in stats.values():
        stream["mean"], stream["std"] = np.zeros_like(stream["min"]), np.full_like(stream["min"], 0.5)
    state = fit_tokenizer(TokenizerSpec.parse("uniform:32@4"), stats["state"])
    action = fit_tokenizer(TokenizerSpec.parse(action_kind), stats["action"])
    config = ModelConfig(
        n_layer=2,
        d_model=32,
        n_head=2,
        context_steps=3,
        state_tokens=state.tokens,
        state_group=state.group,
        state_bins=state.bins,
        action_tokens=action.tokens,
        action_group=action.group,
        action_bins=action.bins,
        n_tasks=2,
    )
    model = lively_model(config, 1)
    if action.discrete:
        with torch.no_grad():  # let the hidden state, not the per-dimension query, pick the bin
            model.action_head.query.zero_()
            model.ln_final.weight.fill_(1.0)
    return LoadedModel(model, state, action, torch.device("cpu"))


@pytest.mark.parametrize("action_kind", ["uniform:256", "continuous"])
def test_greedy_actions_with_the_cache_equal_those_without(action_kind):
    loaded = tiny_policy(action_kind)
    episodes = plan_episodes(["reach", "push"], {"reach": 0, "push": 1}, 3, seed=0)
    taken = {}
    for use_cache in (True, False):
        recorder = RecordingPolicy(TransformerPolicy(loaded, use_cache=use_cache))
        results, _ = run_episodes(None, "pointmass", episodes, max_steps=12, envs=len(episodes), policy=recorder)
        taken[use_cache] = (recorder.actions, [result.length for result in results])
    cached, uncached = taken[True], taken[False]
    assert cached[1] == uncached[1] and max(cached[1]) > loaded.model.config.context_steps  # the window slid
    assert len(cached[0]) == len(uncached[0]) == max(cached[1])
    for with_cache, without in zip(cached[0], uncached[0]):
        np.testing.assert_allclose(with_cache, without, rtol=0, atol=1e-5)
    if loaded.action_tokenizer.discrete:
        assert all(np.array_equal(a, b) for a, b in zip(cached[0], uncached[0]))
        assert len({tuple(row) for actions in cached[0] for row in actions}) > 10  # not one constant action


class RecordingPolicy:
    """Passes calls to ``policy`` and keeps every batch of actions it returned."""

    def __init__(self, policy: TransformerPolicy) -> None:
        self.policy, self.actions = policy, []

    def reset(self, episodes) -> None:
        self.policy.reset(episodes)

    def act(self, observations: np.ndarray, rows: np.ndarray) -> np.ndarray:
        actions = self.policy.act(observations, rows)
        self.actions.append(actions.copy())
        return actions
