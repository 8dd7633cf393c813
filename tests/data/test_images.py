"""Image features: PNG-in-parquet storage, LeRobot image stats, decoding, bad input, generation."""

import json
import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from roboscale.data import GenerationSpec, generate, open_dataset
from roboscale.data.envs import get_family
from roboscale.data.generate import default_out
from roboscale.data.layout import data_file, frame_features, image_feature
from roboscale.data.stats import image_episode_stats, image_sample_indices
from roboscale.data.writer import DatasetWriter, Episode
from roboscale.errors import BadInputError

SIZE = 16


def episode(rng, frames: int, size: int = SIZE, camera: str = "top", task: str = "t") -> Episode:
    return Episode(
        task=task,
        states=rng.normal(size=(frames, 2)).astype(np.float32),
        actions=rng.normal(size=(frames, 1)).astype(np.float32),
        rewards=np.zeros(frames, np.float32),
        successes=np.zeros(frames, bool),
        expert_actions=rng.normal(size=(frames, 1)).astype(np.float32),
        images={camera: rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)},
    )


def write(root, episodes, splits=None, size: int = SIZE):
    features = frame_features(("x", "y"), ("a",), cameras={"top": size})
    with DatasetWriter(root, features=features, tasks=["t"], fps=10, robot_type="r", provenance={"by": "test"}) as w:
        for i, ep in enumerate(episodes):
            w.add(ep, (splits or ["train"] * len(episodes))[i])
    return open_dataset(root)


def test_image_feature_layout_matches_lerobot():
    feature = image_feature("corner2", 64)
    assert feature.name == "observation.images.corner2"
    assert feature.to_info() == {"dtype": "image", "shape": [64, 64, 3], "names": ["height", "width", "channels"]}
    assert feature.to_hf() == {"_type": "Image"}
    assert feature.arrow_type() == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    names = [f.name for f in frame_features(("x",), ("a",), cameras={"top": 32})]
    assert names[:3] == ["observation.state", "observation.images.top", "action"]
    # Without cameras the features are exactly the state-only ones.
    assert [f.name for f in frame_features(("x",), ("a",))] == [n for n in names if "images" not in n]


def test_frames_round_trip_exactly_and_by_split(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [episode(rng, n) for n in (7, 3, 5)]
    dataset = write(tmp_path / "ds", episodes, ["train", "train", "validation"])
    assert dataset.image_keys == ["observation.images.top"]
    frames = dataset.frames(["observation.images.top", "index"])["observation.images.top"]
    assert frames.dtype == np.uint8 and frames.shape == (15, SIZE, SIZE, 3)
    np.testing.assert_array_equal(frames, np.concatenate([e.images["top"] for e in episodes]))
    validation = dataset.frames(["observation.images.top"], split="validation")["observation.images.top"]
    np.testing.assert_array_equal(validation, episodes[2].images["top"])
    # Stored as HF datasets / LeRobot store an embedded Image, with the file name LeRobot gives a frame.
    table = pq.read_table(data_file(dataset.root, 0, 0))
    metadata = json.loads(table.schema.metadata[b"huggingface"])
    assert metadata["info"]["features"]["observation.images.top"] == {"_type": "Image"}
    cells = table.column("observation.images.top").to_pylist()
    assert cells[8]["path"] == "frame-000001.png" and cells[8]["bytes"][:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((dataset.root / "meta/info.json").read_text())
    assert info["features"]["observation.images.top"]["shape"] == [SIZE, SIZE, 3]


def test_image_stats_are_lerobots_per_channel_numbers(tmp_path):
    rng = np.random.default_rng(1)
    episodes = [episode(rng, 40), episode(rng, 4)]
    dataset = write(tmp_path / "ds", episodes)
    stats = dataset.stats["observation.images.top"]
    for name in ("min", "max", "mean", "std", "q01", "q50", "q99"):
        assert stats[name].shape == (3, 1, 1), name
    pixels = np.concatenate([e.images["top"] for e in episodes]).reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(stats["mean"][:, 0, 0], pixels.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"][:, 0, 0], pixels.std(0), rtol=1e-9)
    np.testing.assert_array_equal(stats["min"][:, 0, 0], pixels.min(0))
    np.testing.assert_array_equal(stats["max"][:, 0, 0], pixels.max(0))
    assert stats["count"].tolist() == [44]
    # Quantiles: count-weighted mean of each episode's exact rank quantile (LeRobot's aggregation).
    first = np.sort(episodes[0].images["top"].reshape(-1, 3), axis=0)
    rank = int(np.ceil(0.5 * len(first)))
    one = image_episode_stats(episodes[0].images["top"])
    np.testing.assert_array_equal(one["q50"][:, 0, 0], first[rank - 1] / 255)


def test_image_stats_sample_frames_as_lerobot_does():
    assert image_sample_indices(60).tolist() == list(range(60))  # up to 100 frames: every one
    picked = image_sample_indices(1000)
    assert len(picked) == 177 and picked[0] == 0 and picked[-1] == 999  # int(1000 ** 0.75)
    frames = np.zeros((1000, 4, 4, 3), np.uint8)
    frames[picked] = 255  # only sampled frames are white: the stats see nothing else
    stats = image_episode_stats(frames)
    assert stats["count"].tolist() == [177] and stats["min"].min() == 1.0


def test_frames_of_another_size_are_refused_when_written(tmp_path):
    rng = np.random.default_rng(2)
    bad = episode(rng, 4, size=SIZE * 2)
    with pytest.raises(BadInputError, match=r"episode 1 .*frame 0: observation.images.top is 32x32x3 but .* 16x16x3"):
        write(tmp_path / "ds", [episode(rng, 3), bad])
    assert not (tmp_path / "ds").exists()
    listed = episode(rng, 3)
    listed.images["top"] = [listed.images["top"][0], listed.images["top"][1], np.zeros((SIZE, SIZE, 4), np.uint8)]
    with pytest.raises(BadInputError, match=r"frame 2: observation.images.top is 16x16x4"):
        write(tmp_path / "ds2", [listed])


def _replace_image(root, row: int, frame: np.ndarray) -> None:
    """Put a PNG of ``frame`` into data row ``row`` (as a dataset of mixed sizes would have)."""
    from roboscale.data.layout import encode_png

    path = data_file(root, 0, 0)
    table = pq.read_table(path)
    cells = table.column("observation.images.top").to_pylist()
    cells[row] = {"bytes": encode_png(frame), "path": cells[row]["path"]}
    index = table.schema.get_field_index("observation.images.top")
    column = pa.array(cells, type=table.schema.field(index).type)
    pq.write_table(table.set_column(index, table.schema.field(index), column), path)


def test_mixed_sizes_or_channels_in_a_dataset_are_refused(tmp_path):
    rng = np.random.default_rng(3)
    root = write(tmp_path / "ds", [episode(rng, 5)]).root
    _replace_image(root, 3, np.zeros((8, 8, 3), np.uint8))
    dataset = open_dataset(root)  # the first image of the file is fine
    with pytest.raises(BadInputError, match=r"file-000.parquet: observation.images.top row 3 is a 8x8x3 image .*16x16x3"):
        dataset.frames(["observation.images.top"])
    _replace_image(root, 0, np.zeros((SIZE, SIZE, 1), np.uint8))
    with pytest.raises(BadInputError, match=r"observation.images.top row 0 is a 16x16x1 image"):
        open_dataset(root)  # opening checks each file's first image


@pytest.fixture
def pointmass_camera(monkeypatch):
    """The pointmass camera: the render helper's when merged, else a small stand-in
    (a deterministic top-down drawing of agent, block and goal) for these tests only."""
    from roboscale.data.envs import pointmass

    if hasattr(pointmass.PointMassFamily, "CAMERAS"):
        return
    render = types.ModuleType("roboscale.data.envs.render")
    render.check_renderer = lambda family, camera, size: "numpy"
    monkeypatch.setitem(sys.modules, "roboscale.data.envs.render", render)
    monkeypatch.setattr(pointmass.PointMassFamily, "CAMERAS", ("top",), raising=False)

    def enable_camera(self, camera: str, size: int) -> None:
        self.camera_size = size

    def render_frame(self) -> np.ndarray:
        size = self.camera_size
        frame = np.full((size, size, 3), 40, np.uint8)
        for position, colour in ((self.goal, (0, 200, 0)), (self.block, (0, 0, 220)), (self.agent, (230, 0, 0))):
            col, row = np.clip(((position + 1) / 2 * (size - 1)).round().astype(int), 0, size - 1)
            frame[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = colour
        return frame

    monkeypatch.setattr(pointmass.PointMassEnv, "enable_camera", enable_camera, raising=False)
    monkeypatch.setattr(pointmass.PointMassEnv, "render_frame", render_frame, raising=False)


def test_generation_records_a_frame_before_each_action_same_bytes_for_a_seed(tmp_path, pointmass_camera):
    spec = GenerationSpec(env="pointmass", episodes=6, camera="default", image_size=16, seed=3)
    one = open_dataset(generate(spec, tmp_path / "one").out)
    two = open_dataset(generate(spec, tmp_path / "two", workers=2).out)
    assert one.fingerprint() == two.fingerprint()
    assert one.image_keys == ["observation.images.top"]
    assert one.provenance["image"]["camera"] == "top" and one.provenance["image"]["size"] == 16
    assert one.provenance["spec"]["camera"] == "default" and one.provenance["spec"]["image_size"] == 16
    frames = one.frames(["observation.images.top", "observation.state"])
    images, states = frames["observation.images.top"], frames["observation.state"]
    assert images.shape == (one.total_frames, 16, 16, 3)
    # The frame before each action shows the state before it: re-render the first state of episode 0.
    env = get_family("pointmass").make(one.tasks[0])
    env.enable_camera("top", 16)
    env.agent, env.velocity, env.block, env.goal = (states[0, i : i + 2].astype(np.float64) for i in (0, 2, 4, 6))
    np.testing.assert_array_equal(images[0], env.render_frame())
    # State-only generation is unchanged: no image keys in the spec, no image feature.
    plain = GenerationSpec(env="pointmass", episodes=6, seed=3)
    assert "camera" not in plain.to_dict() and "image_size" not in plain.to_dict()
    assert default_out(spec).name == "pointmass-all-6ep-s3-top16"
    assert default_out(plain).name == "pointmass-all-6ep-s3"


def test_generation_refuses_bad_image_settings(tmp_path, pointmass_camera):
    with pytest.raises(BadInputError, match=r"no camera 'side': choose one of top"):
        generate(GenerationSpec(env="pointmass", episodes=2, camera="side"), tmp_path / "a")
    with pytest.raises(BadInputError, match=r"image_size=4: .*\[8, 512\]"):
        GenerationSpec(env="pointmass", episodes=2, camera="top", image_size=4).validate()
    with pytest.raises(BadInputError, match=r"image_size=32 without a camera"):
        GenerationSpec(env="pointmass", episodes=2, image_size=32).validate()
    assert not (tmp_path / "a").exists()


def test_data_generate_camera_cli(tmp_path, pointmass_camera):
    from roboscale.cli.main import app

    out = tmp_path / "cli"
    args = ["data", "generate", "--episodes", "4", "--camera", "top", "--image-size", "8", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    dataset = open_dataset(out)
    assert dataset.features["observation.images.top"].shape == (8, 8, 3)
    assert dataset.frames(["observation.images.top"])["observation.images.top"].shape == (dataset.total_frames, 8, 8, 3)
    refused = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "other"), "--image-size", "3"])
    assert isinstance(refused.exception, BadInputError) and "image_size=3" in str(refused.exception)  # main(): exit 2
