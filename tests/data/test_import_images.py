"""Importing LeRobot camera features: PNG images in the parquet and AV1 video files.

The fixtures were written by LeRobot 0.4.4 itself (tests/fixtures/make_lerobot_media.py):
3 episodes x 8 frames of 32x32 RGB, every frame ``fixture_frame(episode, frame)``.
"""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roboscale.data import import_lerobot, open_dataset
from roboscale.data.layout import encode_png
from roboscale.data.video import decode_video_frames
from roboscale.errors import BadInputError

SIZE, EPISODES, FRAMES, FPS = 32, 3, 8, 10
VIDEO = "videos/observation.images.top/chunk-000/file-000.mp4"
DATA = "data/chunk-000/file-000.parquet"


def fixture_frame(episode: int, frame: int) -> np.ndarray:
    """The frame the fixture script drew (same function as in make_lerobot_media.py)."""
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image[..., 2] = 40 + 60 * episode
    top, left = 4 + 2 * episode, 2 + 3 * frame
    image[top : top + 8, left : left + 8] = (230, 200, 30)
    return image


def drawn(episode: int) -> np.ndarray:
    return np.stack([fixture_frame(episode, frame) for frame in range(FRAMES)])


def imported_frames(root) -> dict[int, np.ndarray]:
    """Source episode index -> its imported (frames, H, W, 3) images."""
    dataset = open_dataset(root)
    images = dataset.frames(["observation.images.top"])["observation.images.top"]
    return {
        int(row.source_episode_index): images[row.dataset_from_index : row.dataset_to_index]
        for row in dataset.episodes.itertuples()
    }


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per frame mean absolute pixel difference (0-255 scale)."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=(1, 2, 3))


def copy_fixture(fixtures_dir, tmp_path, name: str):
    return shutil.copytree(fixtures_dir / name, tmp_path / name)


def test_png_image_feature_is_imported_pixel_for_pixel(fixtures_dir, tmp_path):
    out = import_lerobot(fixtures_dir / "lerobot_images", tmp_path / "out", validation_fraction=0.34)
    dataset = open_dataset(out)
    assert dataset.image_keys == ["observation.images.top"]
    assert dataset.features["observation.images.top"].shape == (SIZE, SIZE, 3)
    assert dataset.total_frames == EPISODES * FRAMES
    assert len(dataset.episode_indices("validation")) == 1
    frames = imported_frames(out)
    assert sorted(frames) == list(range(EPISODES))
    for episode, images in frames.items():
        np.testing.assert_array_equal(images, drawn(episode))
    assert dataset.provenance["cameras"] == {
        "top": {"source_feature": "observation.images.top", "stored_as": "image", "size": SIZE}
    }
    assert dataset.provenance["dropped_features"] == []
    # LeRobot image stats (per channel, [0, 1], shape (3, 1, 1)): the blue channel's mean over all frames.
    blue = np.mean([drawn(e)[..., 2].mean() for e in range(EPISODES)]) / 255
    assert np.asarray(dataset.stats["observation.images.top"]["mean"]).shape == (3, 1, 1)
    assert np.asarray(dataset.stats["observation.images.top"]["mean"])[2, 0, 0] == pytest.approx(blue, abs=1e-6)


def test_av1_video_feature_is_imported_frame_by_frame(fixtures_dir, tmp_path):
    out = import_lerobot(fixtures_dir / "lerobot_video", tmp_path / "out", validation_fraction=0.34)
    dataset = open_dataset(out)
    assert dataset.image_keys == ["observation.images.top"]
    assert dataset.total_frames == EPISODES * FRAMES
    assert dataset.provenance["cameras"]["top"]["stored_as"] == "video"
    frames = imported_frames(out)
    for episode, images in frames.items():
        truth = drawn(episode)
        errors = mean_abs_error(images, truth)
        assert errors.max() < 8, errors  # AV1 at LeRobot's crf 30 is lossy: measured <= 4.5
        # each decoded frame is its own frame, not a neighbour (the square moves 3 px per frame)
        assert np.all(errors[1:] < mean_abs_error(images[1:], truth[:-1]) / 2)
        assert np.all(errors[:-1] < mean_abs_error(images[:-1], truth[1:]) / 2)


def test_decode_video_frames_by_timestamp(fixtures_dir):
    path = fixtures_dir / "lerobot_video" / VIDEO
    # episode 1 starts at 0.8 s in the shared file; any order and repeats
    times = np.array([0.8 + 0.1 * 5, 0.8, 0.8 + 0.1 * 5, 2.3])
    frames = decode_video_frames(path, times)
    assert frames.shape == (4, SIZE, SIZE, 3) and frames.dtype == np.uint8
    truth = np.stack([fixture_frame(1, 5), fixture_frame(1, 0), fixture_frame(1, 5), fixture_frame(2, 7)])
    assert mean_abs_error(frames, truth).max() < 8
    np.testing.assert_array_equal(frames[0], frames[2])
    with pytest.raises(BadInputError, match=r"file-000.mp4 has no frame within 0.0001 s of 0.8500 s \(frame 8"):
        decode_video_frames(path, [0.85])
    with pytest.raises(
        BadInputError,
        match=r"file-000.mp4 has no frame within 0.0001 s of 2.4000 s \(frame 24; nearest decoded frame at 2.3000 s\)",
    ):
        decode_video_frames(path, [2.4])


def test_a_missing_video_file_is_named_before_any_work(fixtures_dir, tmp_path):
    source = copy_fixture(fixtures_dir, tmp_path, "lerobot_video")
    (source / VIDEO).unlink()
    with pytest.raises(BadInputError, match=r"video file .*observation.images.top/chunk-000/file-000.mp4 is missing"):
        import_lerobot(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BadInputError, match=r"file-000.mp4 is missing \(needed for the frame at 0.800 s\)"):
        decode_video_frames(source / VIDEO, [0.8, 0.9])


def test_an_undecodable_video_names_the_file_and_the_frame(fixtures_dir, tmp_path):
    source = copy_fixture(fixtures_dir, tmp_path, "lerobot_video")
    video = source / VIDEO
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # the header (moov first) opens; frames past the cut do not
    with pytest.raises(BadInputError, match=r"file-000.mp4: frame \d+ \(at \d\.\d00 s\) does not decode"):
        import_lerobot(source, tmp_path / "out", validation_fraction=0)
    assert not (tmp_path / "out").exists()  # the writer's partial folder is never renamed into place
    video.write_bytes(b"not a video" * 50)  # no header at all: refused before any work
    with pytest.raises(BadInputError, match=r"file-000.mp4 does not open as a video"):
        import_lerobot(source, tmp_path / "out")


def test_images_of_different_sizes_are_refused(fixtures_dir, tmp_path):
    source = copy_fixture(fixtures_dir, tmp_path, "lerobot_images")
    table = pq.read_table(source / DATA)
    column = table.column("observation.images.top").combine_chunks()
    cells = column.to_pylist()
    cells[11] = {"bytes": encode_png(np.zeros((16, 16, 3), np.uint8)), "path": cells[11]["path"]}
    table = table.set_column(0, table.schema.field(0), pa.array(cells, type=column.type))
    pq.write_table(table, source / DATA)
    with pytest.raises(BadInputError, match=r"observation.images.top row 11 is a 16x16x3 image .*32x32x3"):
        import_lerobot(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    video = copy_fixture(fixtures_dir, tmp_path, "lerobot_video")
    info = json.loads((video / "meta/info.json").read_text())
    info["features"]["observation.images.top"]["shape"] = [48, 48, 3]
    (video / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(BadInputError, match=r"file-000.mp4: frames are 32x32 but info.json declares .* 48x48"):
        import_lerobot(video, tmp_path / "out")


def test_camera_choice_and_non_square_cameras(fixtures_dir, tmp_path):
    none = open_dataset(import_lerobot(fixtures_dir / "lerobot_images", tmp_path / "none", cameras=[]))
    assert none.image_keys == []
    assert none.provenance["dropped_features"] == ["observation.images.top"]
    with pytest.raises(BadInputError, match=r"has no camera 'wrist'; its cameras are top"):
        import_lerobot(fixtures_dir / "lerobot_images", tmp_path / "out", cameras=["wrist"])
    source = copy_fixture(fixtures_dir, tmp_path, "lerobot_video")
    info = json.loads((source / "meta/info.json").read_text())
    info["features"]["observation.images.top"]["shape"] = [32, 48, 3]
    (source / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(BadInputError, match=r"observation.images.top is 32x48x3 .* square RGB images"):
        import_lerobot(source, tmp_path / "out")


def test_cli_reports_a_missing_video_in_one_line_with_exit_code_2(fixtures_dir, tmp_path, run_cli):
    source = copy_fixture(fixtures_dir, tmp_path, "lerobot_video")
    (source / VIDEO).unlink()
    result = run_cli("data", "import", "lerobot", str(source), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "file-000.mp4 is missing" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_same_video_import_gives_the_same_bytes(fixtures_dir, tmp_path):
    first = open_dataset(import_lerobot(fixtures_dir / "lerobot_video", tmp_path / "a", seed=3))
    second = open_dataset(import_lerobot(fixtures_dir / "lerobot_video", tmp_path / "b", seed=3))
    assert first.fingerprint() == second.fingerprint()
