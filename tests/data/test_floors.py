"""Known floors: exact entropies of the noisy executed action's token, checked by hand and by sampling."""

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from roboscale.data import GenerationSpec, generate, open_dataset
from roboscale.data.floors import (
    clipped_gaussian_bin_probabilities,
    clipped_gaussian_token_entropy,
    clipped_gaussian_variance,
    known_floor,
)
from roboscale.errors import BadInputError
from roboscale.tokenize import Tokenizer

EDGES = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
"""Four bins of width 0.5 over the action range [-1, 1]."""


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _hand_entropy(mean: float, std: float) -> float:
    """Four bins over exactly the clipping range: the clipped mass joins the end bins,
    so the end bins hold the whole Gaussian tail beyond their inner edge."""
    cdf = [0.0] + [_normal_cdf((edge - mean) / std) for edge in EDGES[1:-1]] + [1.0]
    probabilities = [high - low for low, high in itertools.pairwise(cdf)]
    return -sum(p * math.log(p) for p in probabilities if p > 0)


def _sampled_entropy(mean: float, std: float, edges: np.ndarray, low: float, high: float, count: int) -> float:
    """Plug-in entropy (nats) of ``count`` sampled tokens, binned by a real Tokenizer."""
    rng = np.random.default_rng(0)
    executed = np.clip(mean + std * rng.standard_normal(count), low, high)
    tokenizer = Tokenizer("uniform", 1, 1, bins=len(edges) - 1, edges=edges[None, :])
    counts = np.bincount(tokenizer.encode(executed[:, None]).ravel(), minlength=len(edges) - 1)
    p = counts[counts > 0] / count
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize("mean", [0.3, 0.95])  # inside, and next to the upper bound (much mass clipped)
def test_the_exact_entropy_of_two_expert_actions_matches_a_hand_and_a_sampled_computation(mean):
    exact = float(clipped_gaussian_token_entropy(np.array([mean]), 0.3, EDGES, -1.0, 1.0)[0])
    assert abs(exact - _hand_entropy(mean, 0.3)) < 1e-9
    assert abs(exact - _sampled_entropy(mean, 0.3, EDGES, -1.0, 1.0, 2_000_000)) < 1e-3


def test_the_clipped_mass_lands_in_the_bin_that_holds_the_bound():
    # Edges beyond the action bounds: clipping at 1.0 puts the tail in bin [0.5, 1.5), not in the last bin.
    edges = np.array([-1.5, -0.5, 0.5, 1.5, 2.5])
    probabilities = clipped_gaussian_bin_probabilities(np.array([0.9]), 0.5, edges, -1.0, 1.0)[0]
    assert probabilities[3] == 0.0 and abs(probabilities.sum() - 1.0) < 1e-12
    assert abs(probabilities[2] - (1 - _normal_cdf((0.5 - 0.9) / 0.5))) < 1e-12
    exact = float(clipped_gaussian_token_entropy(np.array([0.9]), 0.5, edges, -1.0, 1.0)[0])
    assert abs(exact - _sampled_entropy(0.9, 0.5, edges, -1.0, 1.0, 2_000_000)) < 1e-3


def test_tiny_noise_has_no_entropy_in_wide_bins_and_log_two_on_an_edge():
    tiny = 1e-6
    inside = clipped_gaussian_token_entropy(np.array([0.25, -0.7, 1.0]), tiny, EDGES, -1.0, 1.0)
    assert np.all(inside < 1e-9)  # far from every interior edge (the bound itself is clipped into its bin)
    on_edge = float(clipped_gaussian_token_entropy(np.array([0.0]), tiny, EDGES, -1.0, 1.0)[0])
    assert abs(on_edge - math.log(2.0)) < 1e-9
    # Narrow bins: the same tiny noise spreads over many bins once they are narrower than it.
    fine = np.linspace(-1.0, 1.0, 2**16 + 1)
    assert float(clipped_gaussian_token_entropy(np.array([0.25]), 1e-4, fine, -1.0, 1.0)[0]) > 1.0


def test_the_clipped_gaussian_variance_matches_sampling_and_is_the_noise_far_from_the_bounds():
    assert abs(float(clipped_gaussian_variance(np.array([0.0]), 0.1, -1.0, 1.0)[0]) - 0.01) < 1e-12
    rng = np.random.default_rng(1)
    samples = np.clip(0.9 + 0.3 * rng.standard_normal(4_000_000), -1.0, 1.0)
    assert abs(float(clipped_gaussian_variance(np.array([0.9]), 0.3, -1.0, 1.0)[0]) - samples.var()) < 2e-4


@pytest.fixture(scope="module")
def expert_dataset(tmp_path_factory) -> Path:
    spec = GenerationSpec(env="pointmass", episodes=10, validation_fraction=0.2)
    return generate(spec, tmp_path_factory.mktemp("floors") / "expert").out


def _trainer_action_tokenizer(path: Path, tokenizer: str):
    from roboscale.tokenize import TokenizerSpec, action_spec_for
    from roboscale.train.data import tokenize_dataset

    state = TokenizerSpec.parse(tokenizer)
    return tokenize_dataset(open_dataset(path), state, action_spec_for(state, None), "bc").action_tokenizer


def test_the_floor_of_generated_data_matches_the_recorded_noisy_actions(pointmass_dataset):
    """The recorded actions were drawn by the generator from the very distribution the
    floor integrates: their mean negative log-probability (under the trainer's own bins)
    is a Monte-Carlo estimate of the floor."""
    floor = known_floor(pointmass_dataset, "bc", "uniform:64")
    assert floor.kind == "exact" and len(floor.per_dim) == 2
    assert abs(floor.loss - np.mean(floor.per_dim)) < 1e-12
    assert floor.validation is not None and abs(floor.validation - floor.loss) < 0.1
    dataset = open_dataset(pointmass_dataset)
    frames = dataset.frames(["action", "expert.action"])
    tokenizer = _trainer_action_tokenizer(pointmass_dataset, "uniform:64")
    tokens = tokenizer.encode(frames["action"])[:, :, 0]
    surprisal = []
    for d in range(2):
        probabilities = clipped_gaussian_bin_probabilities(
            frames["expert.action"][:, d], 0.1, tokenizer.edges[d], -1.0, 1.0
        )
        surprisal.append(-np.log(probabilities[np.arange(len(tokens)), tokens[:, d]]))
    surprisal = np.concatenate(surprisal)
    standard_error = surprisal.std() / math.sqrt(len(surprisal))
    assert abs(surprisal.mean() - floor.loss) < 3 * standard_error
    # And fresh samples for a few frames, binned by the trainer's tokenizer: the same entropy.
    # (1e6 samples: a standard error of about 1e-3 nats.)
    expert = frames["expert.action"][:3, 0]
    exact = clipped_gaussian_token_entropy(expert, 0.1, tokenizer.edges[0], -1.0, 1.0)
    for mean, value in zip(expert, exact):
        assert abs(_sampled_entropy(mean, 0.1, tokenizer.edges[0], -1.0, 1.0, 1_000_000) - value) < 4e-3


def test_quantile_floors_use_the_trainers_edges_and_continuous_floors_the_noise_variance(pointmass_dataset):
    from roboscale.data.floors import _fit_action_tokenizer
    from roboscale.tokenize import TokenizerSpec

    trainer = _trainer_action_tokenizer(pointmass_dataset, "quantile:32")
    ours = _fit_action_tokenizer(open_dataset(pointmass_dataset), TokenizerSpec("quantile", 32))
    assert np.array_equal(trainer.edges, ours.edges)
    assert known_floor(pointmass_dataset, "bc", "quantile:32").loss > 0
    continuous = known_floor(pointmass_dataset, "bc", "continuous")
    std = open_dataset(pointmass_dataset).stats["action"]["std"]
    # The noise's variance over the action's variance, less where clipping squeezes it.
    assert all(0 < value <= 0.01 / s**2 + 1e-12 for value, s in zip(continuous.per_dim, std))


def test_world_model_floors_are_zero_lower_bounds_and_expert_data_has_no_bc_floor(pointmass_dataset, expert_dataset):
    world = known_floor(pointmass_dataset, "wm", "uniform:256")
    assert world.loss == 0.0 and world.kind == "lower bound" and len(world.per_dim) == 8
    expert = known_floor(expert_dataset, "bc", "uniform:256")
    assert expert.loss is None and "no injected action noise" in expert.note


def test_imported_data_has_no_floor(expert_dataset, tmp_path):
    from roboscale.data import import_lerobot

    imported = import_lerobot(expert_dataset, tmp_path / "imported")
    floor = known_floor(imported, "bc", "uniform:256")
    assert floor.loss is None and "imported" in floor.note


def test_bad_task_or_tokenizer_is_refused_before_the_dataset_is_read(tmp_path):
    with pytest.raises(BadInputError, match="task 'policy'"):
        known_floor(tmp_path / "missing", "policy", "uniform:256")
    with pytest.raises(BadInputError, match="unknown kind"):
        known_floor(tmp_path / "missing", "bc", "gaussian:8")


def test_the_cli_prints_the_floor_and_refuses_bad_input_with_one_line(run_cli, pointmass_dataset):
    shown = run_cli("data", "floor", pointmass_dataset, "--task", "bc", "--tokenizer", "uniform:64")
    assert shown.returncode == 0, shown.stderr
    expected = known_floor(pointmass_dataset, "bc", "uniform:64")
    assert f"known floor {expected.loss:.4f} (exact)" in shown.stdout
    as_json = run_cli("data", "floor", pointmass_dataset, "--tokenizer", "uniform:64", "--json")
    assert abs(json.loads(as_json.stdout)["loss"] - expected.loss) < 1e-12
    for bad in (["--task", "policy"], ["--tokenizer", "gaussian:8"]):
        refused = run_cli("data", "floor", pointmass_dataset, *bad)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


DEMO_DATA = os.environ.get("ROBOSCALE_DEMO_DATA")
"""A dataset made with the demo's settings (Meta-World MT10, 1200 episodes, noise:0.1, seed 0)."""


@pytest.mark.slow
@pytest.mark.skipif(not DEMO_DATA, reason="set ROBOSCALE_DEMO_DATA to a dataset made with the demo's settings")
def test_the_demo_datas_bc_floor_is_3_262_nats():
    floor = known_floor(DEMO_DATA, "bc", "uniform:256")
    assert abs(floor.loss - 3.262) < 0.0015
    assert np.allclose(floor.per_dim, [3.54, 3.47, 3.29, 2.75], atol=0.01)
