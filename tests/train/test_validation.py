"""The validation loss's standard error: clustered by episode, per stacked model."""

import math

import numpy as np
import pytest

from roboscale.train import TrainConfig, train, train_batch
from roboscale.train.validation import clustered_mean


def test_identical_windows_in_an_episode_give_the_se_of_the_episode_means():
    rng = np.random.default_rng(0)
    episode_means = rng.normal(2.0, 0.3, size=40)
    windows_per_episode, dims = 7, 12.0
    losses = np.repeat(episode_means, windows_per_episode)
    clusters = np.repeat(np.arange(40) * 100 + 5, windows_per_episode)  # any labels
    mean, se = clustered_mean(losses * dims, np.full_like(losses, dims), clusters)
    assert mean == pytest.approx(episode_means.mean(), rel=1e-12)
    assert se == pytest.approx(episode_means.std(ddof=1) / math.sqrt(40), rel=1e-12)
    naive = losses.std(ddof=1) / math.sqrt(losses.size)  # treats the 280 windows as independent
    assert se / naive == pytest.approx(math.sqrt(windows_per_episode), rel=0.02)


def test_unequal_episodes_match_a_bootstrap_over_episodes():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 9, size=150)  # windows per episode
    clusters = np.repeat(np.arange(150), sizes)
    dims = rng.integers(5, 20, size=clusters.size).astype(float)  # dims per window (episode ends pad)
    losses = rng.normal(1.0, 0.5, size=150)[clusters] + rng.normal(0.0, 0.4, size=clusters.size)
    sums = losses * dims
    mean, se = clustered_mean(sums, dims, clusters)
    assert mean == pytest.approx(sums.sum() / dims.sum(), rel=1e-12)
    per_episode_sum = np.bincount(clusters, sums)
    per_episode_dims = np.bincount(clusters, dims)
    draws = rng.integers(0, 150, size=(4000, 150))
    bootstrap = per_episode_sum[draws].sum(axis=1) / per_episode_dims[draws].sum(axis=1)
    assert se == pytest.approx(bootstrap.std(), rel=0.05)  # 4000 draws: about 1% Monte-Carlo error


def test_stacked_rows_are_measured_on_their_own_and_one_episode_has_no_se():
    rng = np.random.default_rng(2)
    clusters = np.repeat(np.arange(10), 3)
    sums, dims = rng.uniform(1, 3, size=(2, 30)), np.full((2, 30), 1.0)
    mean, se = clustered_mean(sums, dims, clusters)
    for row in range(2):
        alone_mean, alone_se = clustered_mean(sums[row], dims[row], clusters)
        assert mean[row] == pytest.approx(alone_mean) and se[row] == pytest.approx(alone_se)
    assert se[0] != se[1]
    _, single = clustered_mean(sums[0], dims[0], np.zeros(30))
    assert math.isnan(single)


def test_runs_record_the_se_of_each_stacked_model(pointmass_dataset, tmp_path):
    def config(seed):
        return TrainConfig(
            data=str(pointmass_dataset),
            tokenizer="uniform:32",
            d_model=16,
            steps=20,
            batch_size=16,
            threads=1,
            eval_windows=128,
            eval_points=4,
            seed=seed,
        )

    stacked = train_batch([config(0), config(1)], [tmp_path / "s0", tmp_path / "s1"])
    alone = train(config(1), tmp_path / "alone")
    for record in (*stacked, alone):
        errors = [point["val_loss_se"] for point in record["learning_curve"]]
        assert all(
            math.isfinite(e) and 0 < e < 0.2 * point["val_loss"] for e, point in zip(errors, record["learning_curve"])
        )
        assert record["final"]["val_loss_se"] == errors[-1]
    assert stacked[0]["final"]["val_loss_se"] != stacked[1]["final"]["val_loss_se"]
    assert stacked[1]["final"]["val_loss_se"] == pytest.approx(alone["final"]["val_loss_se"], rel=1e-4)
