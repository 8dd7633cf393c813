"""Image tokenizers: spec parsing, the exact patch round trip, and a VQ-VAE that learns
synthetic frames, caches by content, repeats itself for a seed and counts its FLOPs."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.flop_counter import FlopCounterMode

import roboscale.tokenize.image as image_module
from roboscale.errors import BadInputError
from roboscale.tokenize import ImageTokenizer, ImageTokenizerSpec, fit_image_tokenizer, is_image_tokenizer, vqvae
from roboscale.tokenize.vqvae import VQVAE, VQTrainingSettings, training_flops_per_step, training_step

TINY = VQTrainingSettings(steps=200, batch_size=16, width=16)
"""A budget of about a second of CPU on 32x32 frames."""


def squares(n: int, seed: int, size: int = 32, side: int = 8) -> np.ndarray:
    """(n, size, size, 3) uint8: one red, green or blue square at a random place on grey."""
    rng = np.random.default_rng(seed)
    frames = np.full((n, size, size, 3), 30, np.uint8)
    colours = np.array([[230, 60, 60], [60, 200, 80], [70, 90, 240]], np.uint8)
    corners = rng.integers(0, size - side + 1, (n, 2))
    for frame, (y, x), colour in zip(frames, corners, rng.integers(0, 3, n), strict=True):
        frame[y : y + side, x : x + side] = colours[colour]
    return frames


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """vq:32@16 on 512 frames of squares, measured on 128 others (and the folder it is cached in)."""
    cache = tmp_path_factory.mktemp("image-tokenizers")
    train, heldout = squares(512, seed=0), squares(128, seed=1)
    return fit_image_tokenizer("vq:32@16", train, cache_dir=cache, heldout_frames=heldout, settings=TINY), cache


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("patch:8", ImageTokenizerSpec("patch", patch=8)),
        (" VQ:64@16 ", ImageTokenizerSpec("vq", codes=64, tokens=16)),
        ("vq:2@1", ImageTokenizerSpec("vq", codes=2, tokens=1)),
    ],
)
def test_specs_parse_and_print_back(text, spec):
    assert ImageTokenizerSpec.parse(text) == spec
    assert ImageTokenizerSpec.parse(str(spec)) == spec
    assert is_image_tokenizer(text)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("uniform:256", "that is a state tokenizer"),
        ("continuous", "that is a state tokenizer"),
        ("quantile:64@4", "that is a state tokenizer"),
        ("", "unknown kind ''"),
        ("pach:8", "unknown kind 'pach'"),
        ("patch", "patch size P '' is not an integer"),
        ("patch:0", "patch size P must be >= 1"),
        ("patch:8@4", "patch takes no @TOKENS"),
        ("vq:64", "vq needs tokens per frame"),
        ("vq:1@16", "codebook size K must be >= 2"),
        ("vq:x@16", "codebook size K 'x' is not an integer"),
        ("vq:64@15", "T=15 is not a square number"),
        ("vq:64@0", "tokens per frame T must be >= 1"),
    ],
)
def test_bad_specs_get_one_line_naming_the_problem(text, complaint):
    with pytest.raises(BadInputError) as caught:
        ImageTokenizerSpec.parse(text)
    message = str(caught.value)
    assert complaint in message and "; use " in message and "\n" not in message


def test_state_specs_are_not_image_tokenizers():
    assert [is_image_tokenizer(t) for t in ("uniform:256", "continuous", "quantile:8@2", "patch:4")] == [
        False,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("text", "size", "complaint"),
    [
        ("patch:5", 32, "patch size 5 does not divide the image size 32"),
        ("vq:64@36", 32, "a 6x6 token grid must divide the 32-pixel image by a power of 2"),
        ("vq:64@4096", 32, "a 64x64 token grid"),
        ("vq:64@16", 48, "a 4x4 token grid must divide the 48-pixel image by a power of 2"),
    ],
)
def test_a_spec_that_cannot_cut_the_image_fails_before_any_work(text, size, complaint, tmp_path):
    frames = np.zeros((4, size, size, 3), np.uint8)
    with pytest.raises(BadInputError, match=complaint):
        fit_image_tokenizer(text, frames, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_bad_frames_are_refused():
    with pytest.raises(BadInputError, match="uint8"):
        fit_image_tokenizer("patch:4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(BadInputError, match="only square images"):
        fit_image_tokenizer("patch:4", np.zeros((2, 8, 12, 3), np.uint8))
    tokenizer = fit_image_tokenizer("patch:4", np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(BadInputError, match="frames are 16x16x3, but it was fitted on 8x8x3"):
        tokenizer.encode(np.zeros((1, 16, 16, 3), np.uint8))


def test_patches_are_normalised_per_channel_and_decode_exactly():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    frames[..., 2] = 7  # a constant channel still round-trips
    tokenizer = fit_image_tokenizer("patch:4", frames)
    assert (tokenizer.tokens, tokenizer.group, tokenizer.bins) == (16, 48, 0)
    slots = tokenizer.encode(frames)
    assert slots.shape == (20, 16, 48) and slots.dtype == np.float32
    by_channel = slots.reshape(20, 16, 16, 3)  # (P, P, C) inside a patch: channel last
    np.testing.assert_allclose(by_channel[..., :2].mean(axis=(0, 1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(by_channel[..., :2].std(axis=(0, 1, 2)), 1, atol=1e-5)
    # token 1 is the patch at grid row 0, column 1, pixels row-major
    expected = (frames[3, 0:4, 4:8, 0] / 255.0 - tokenizer.mean[0]) / tokenizer.std[0]
    np.testing.assert_allclose(slots[3, 1].reshape(4, 4, 3)[..., 0], expected, rtol=1e-6)
    assert np.array_equal(tokenizer.decode(slots), frames)
    report = tokenizer.report()
    assert report["recon_mse"] == 0 and report["psnr_db"] is None and report["train_flops"] == 0


def test_vq_learns_the_frames_and_uses_its_codes(trained):
    tokenizer, _ = trained
    heldout = squares(128, seed=1)
    mean_frame = squares(512, seed=0).mean(axis=0)
    mean_frame_psnr = -10 * np.log10(np.mean(((heldout - mean_frame) / 255.0) ** 2))  # 18.9 dB
    report = tokenizer.report()
    # measured: 20.5 dB, all 32 codes used, perplexity 16.6 (200 steps of 16 frames)
    assert report["psnr_db"] > 20.0 and report["psnr_db"] > mean_frame_psnr + 1.0
    assert report["recon_mse"] == pytest.approx(10 ** (-report["psnr_db"] / 10))
    assert report["codebook_usage"] >= 0.75 and report["perplexity"] > 12
    assert report["evaluated_on"] == "heldout" and report["evaluated_frames"] == 128
    codes = tokenizer.encode(heldout)
    assert codes.shape == (128, 16, 1) and codes.dtype == np.int64 and 0 <= codes.min() and codes.max() < 32
    assert tokenizer.decode(codes).shape == heldout.shape


def test_vq_training_flops_equal_the_flop_counter():
    for tokens in (4, 16, 256, 1024):  # 4, 3, 1 and 0 halvings of a 32-pixel frame
        settings = VQTrainingSettings(batch_size=3, width=8, code_dim=4)
        model = VQVAE(3, 32, tokens, 8, settings)
        with FlopCounterMode(display=False) as counter:
            loss = training_step(model, torch.rand(3, 3, 32, 32), settings, torch.Generator().manual_seed(0), 0)
            loss.backward()
        assert counter.get_total_flops() == training_flops_per_step(model, 32, 3)
    # by hand for 4 tokens: 4 halvings 32->16->8->4->2 (width 8), 3x3 convs at 2x2, search 2*4*4*8 per frame
    encoder = 2 * 16 * (3 * 8 * 256 + 8 * 8 * 64 + 8 * 8 * 16 + 8 * 8 * 4) + 2 * 4 * (9 * 8 * 8 + 8 * 4)
    decoder = 2 * 4 * 9 * 4 * 8 + 2 * 16 * (8 * 8 * 4 + 8 * 8 * 16 + 8 * 8 * 64 + 8 * 3 * 256)
    first = 2 * 16 * 3 * 8 * 256
    model = VQVAE(3, 32, 4, 8, VQTrainingSettings(width=8, code_dim=4))
    assert training_flops_per_step(model, 32, 1) == 3 * (encoder + decoder) - first + 2 * 4 * 4 * 8


def test_a_second_fit_loads_from_the_cache(trained, monkeypatch):
    tokenizer, cache = trained
    assert tokenizer.report()["train_flops"] == 200 * training_flops_per_step(tokenizer.model, 32, 16)
    (entry,) = cache.iterdir()
    assert entry.name == tokenizer.cache_key and len(entry.name) == 64

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(image_module, "train_vqvae", no_training)
    again = fit_image_tokenizer("vq:32@16", squares(512, seed=0), cache_dir=cache, settings=TINY)
    frames = squares(64, seed=2)
    assert np.array_equal(again.encode(frames), tokenizer.encode(frames))
    assert again.report()["train_flops"] == tokenizer.report()["train_flops"]
    assert again.report()["evaluated_on"] == "train"
    assert again.report()["from_cache"] and not tokenizer.report()["from_cache"]
    for changed in ({"seed": 1}, {"settings": VQTrainingSettings(steps=201, batch_size=16, width=16)}):
        with pytest.raises(AssertionError, match="trained again"):
            fit_image_tokenizer("vq:32@16", squares(512, seed=0), cache_dir=cache, **{"settings": TINY, **changed})
    with pytest.raises(AssertionError, match="trained again"):  # other frames, same shape
        fit_image_tokenizer("vq:32@16", squares(512, seed=3), cache_dir=cache, settings=TINY)
    assert [path.name for path in cache.iterdir()] == [entry.name]  # nothing half-written left


def test_save_and_load_give_identical_codes_and_frames(trained, tmp_path):
    tokenizer, _ = trained
    tokenizer.save(tmp_path / "image_tokenizer")
    loaded = ImageTokenizer.load(tmp_path / "image_tokenizer")
    frames = squares(64, seed=4)
    codes = tokenizer.encode(frames)
    assert np.array_equal(loaded.encode(frames), codes)
    assert np.array_equal(loaded.decode(codes), tokenizer.decode(codes))
    assert loaded.report() == {**tokenizer.report(), "from_cache": False}
    json.loads((tmp_path / "image_tokenizer" / "tokenizer.json").read_text())  # plain JSON
    (tmp_path / "image_tokenizer" / "tokenizer.json").write_text("{}")
    with pytest.raises(BadInputError, match="not a readable image tokenizer"):
        ImageTokenizer.load(tmp_path / "image_tokenizer")


def test_the_same_seed_trains_the_same_bytes(tmp_path):
    frames, settings = squares(64, seed=5), VQTrainingSettings(steps=20, batch_size=8, width=8)
    first = fit_image_tokenizer("vq:16@16", frames, seed=3, cache_dir=tmp_path / "a", settings=settings)
    second = fit_image_tokenizer("vq:16@16", frames, seed=3, cache_dir=tmp_path / "b", settings=settings)
    other = fit_image_tokenizer("vq:16@16", frames, seed=4, cache_dir=tmp_path / "c", settings=settings)
    weights = [
        load_file(tmp_path / name / t.cache_key / "weights.safetensors")
        for name, t in (("a", first), ("b", second), ("c", other))
    ]
    assert first.cache_key == second.cache_key != other.cache_key
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not torch.equal(weights[0]["codebook"], weights[2]["codebook"])
    assert np.array_equal(first.encode(frames), second.encode(frames))


def test_a_damaged_cache_entry_is_trained_again(tmp_path):
    frames, settings = squares(16, seed=6), VQTrainingSettings(steps=5, batch_size=4, width=8)
    first = fit_image_tokenizer("vq:8@4", frames, cache_dir=tmp_path, settings=settings)
    (tmp_path / first.cache_key / "weights.safetensors").write_bytes(b"not weights")
    again = fit_image_tokenizer("vq:8@4", frames, cache_dir=tmp_path, settings=settings)
    assert not again.from_cache and np.array_equal(again.encode(frames), first.encode(frames))
    assert fit_image_tokenizer("vq:8@4", frames, cache_dir=tmp_path, settings=settings).from_cache


def test_dead_codes_restart_at_the_worst_fitted_encodings():
    settings = VQTrainingSettings(steps=10, batch_size=2, width=8, code_dim=2, dead_code_threshold=0.5)
    model = VQVAE(3, 8, 4, 3, settings)
    model.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
    model.ema_count.copy_(torch.tensor([5.0, 5.0, 0.1]))  # code 2 is dead
    model.ema_sum.copy_(model.codebook * model.ema_count[:, None])
    vectors = torch.tensor([[1.0, 0.0]] * 99 + [[-1.0, 0.0]])  # 99 fit code 0, one fits nothing
    misfit = (vectors - model.codebook[model.nearest_codes(vectors)]).pow(2).sum(1)
    vqvae._restart(model, model.ema_count < 0.5, vectors, misfit, torch.Generator().manual_seed(0))
    assert model.codebook[2].tolist() == [-1.0, 0.0] and model.ema_count[2] == 1.0
    assert model.ema_sum[2].tolist() == [-1.0, 0.0] and model.codebook[0].tolist() == [1.0, 0.0]
