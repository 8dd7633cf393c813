"""Benchmark: camera frames stored as PNG inside the parquet (roboscale) against AV1 video (LeRobot's default).

For a generated pointmass-image dataset and, when Meta-World renders here, a small
Meta-World image dataset, the script measures per frame:

- PNG in parquet (ours): bytes on disk (the image column's compressed size in the data
  files), encode frames/s, and decode frames/s of ``Dataset.frames`` (parquet read + PNG
  decode into one (n, H, W, C) array), which is lossless;
- AV1 mp4 as LeRobot 0.4.4 writes it (PyAV, libsvtav1, yuv420p, GOP 2, CRF 30, every
  episode of the dataset in one file): bytes, encode frames/s, decode frames/s of one
  sequential pass (PyAV, rgb24), and its loss as PSNR (dB) against the original frames.

Training decodes every frame once per run, so decode speed and fidelity count, not
random access. One process, one core. Measured here (2 shared cores, 64x64, 2026-11-30):
pointmass 500 B/frame PNG vs 128 AV1 (0.26x), Meta-World 5,015 vs 524 (0.10x); AV1 decodes
at 0.45-0.62x PNG's speed (PNG 3.8k-5.1k frames/s) and loses detail (PSNR 34.8 / 32.9 dB).
roboscale keeps PNG: lossless, byte-reproducible, twice as fast to decode. Run:
    python bench/image_storage.py [--episodes 40] [--size 64] [--metaworld-episodes 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from roboscale.data import GenerationSpec, generate, open_dataset
from roboscale.data.dataset import Dataset
from roboscale.data.layout import encode_png
from roboscale.errors import BadInputError

LEROBOT_VIDEO = {"codec": "libsvtav1", "pix_fmt": "yuv420p", "options": {"g": "2", "crf": "30"}}
"""LeRobot 0.4.4's encode_video_frames defaults."""


def make_dataset(folder: Path, env: str, tasks: str, episodes: int, size: int) -> Dataset:
    spec = GenerationSpec(env=env, tasks=tasks, episodes=episodes, camera="default", image_size=size, seed=0)
    return open_dataset(generate(spec, folder / env, workers=1).out)


def best_seconds(action, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``action()`` (s)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def parquet_image_bytes(dataset: Dataset, key: str) -> int:
    """Compressed bytes of the image column (its ``bytes`` and ``path`` leaves) in every data file."""
    total = 0
    for path in dataset.data_files():
        metadata = pq.read_metadata(path)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for column in range(row_group.num_columns):
                chunk = row_group.column(column)
                if chunk.path_in_schema.startswith(key + "."):
                    total += chunk.total_compressed_size
    return total


def encode_av1(frames: np.ndarray, fps: float, path: Path) -> None:
    """All ``frames`` into one mp4, as LeRobot's encode_video_frames does."""
    import av

    with av.open(str(path), "w") as output:
        stream = output.add_stream(LEROBOT_VIDEO["codec"], round(fps), options=LEROBOT_VIDEO["options"])
        stream.pix_fmt = LEROBOT_VIDEO["pix_fmt"]
        stream.height, stream.width = frames.shape[1:3]
        for frame in frames:
            output.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        output.mux(stream.encode())


def decode_av1(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Every frame of ``path`` as (n, H, W, 3) uint8, in one sequential pass."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return np.stack(decoded).reshape(len(decoded), *shape)


def psnr_db(original: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio of ``decoded`` against ``original`` (uint8 pixels), dB."""
    mse = float(np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def measure(dataset: Dataset, folder: Path, repeats: int) -> dict:
    key = dataset.image_keys[0]
    frames = dataset.frames([key])[key]
    n = len(frames)
    png = {
        "bytes_per_frame": parquet_image_bytes(dataset, key) / n,
        "encode_fps": n / best_seconds(lambda: [encode_png(f) for f in frames], repeats),
        "decode_fps": n / best_seconds(lambda: dataset.frames([key]), repeats),
        "psnr_db": float("inf"),
    }
    video_path = folder / f"{dataset.root.name}.mp4"
    video = {"encode_fps": n / best_seconds(lambda: encode_av1(frames, dataset.fps, video_path), 1)}
    video["bytes_per_frame"] = video_path.stat().st_size / n
    video["decode_fps"] = n / best_seconds(lambda: decode_av1(video_path, frames.shape[1:]), repeats)
    decoded = decode_av1(video_path, frames.shape[1:])
    video["psnr_db"] = psnr_db(frames, decoded) if len(decoded) == n else float("nan")
    return {
        "frames": n,
        "shape": list(frames.shape[1:]),
        "raw_bytes_per_frame": frames[0].nbytes,
        "png": png,
        "av1": video,
    }


def report(name: str, result: dict) -> None:
    png, av1 = result["png"], result["av1"]
    print(
        f"\n{name}: {result['frames']} frames of {'x'.join(map(str, result['shape']))} "
        f"({result['raw_bytes_per_frame']} raw bytes each)"
    )
    print(f"{'storage':<22}{'bytes/frame':>12}{'encode fr/s':>13}{'decode fr/s':>13}{'PSNR dB':>9}")
    for label, row in (("PNG in parquet (ours)", png), ("AV1 mp4 (LeRobot)", av1)):
        print(
            f"{label:<22}{row['bytes_per_frame']:>12.0f}{row['encode_fps']:>13.0f}{row['decode_fps']:>13.0f}"
            f"{row['psnr_db']:>9.1f}"
        )
    print(
        f"AV1 / PNG: size {av1['bytes_per_frame'] / png['bytes_per_frame']:.3f}x, "
        f"decode speed {av1['decode_fps'] / png['decode_fps']:.2f}x, "
        f"encode speed {av1['encode_fps'] / png['encode_fps']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40, help="pointmass episodes")
    parser.add_argument("--metaworld-episodes", type=int, default=6, help="Meta-World episodes (0: skip)")
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (SVT-AV1 needs >= 64)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pointmass = make_dataset(folder, "pointmass", "all", args.episodes, args.size)
        report("pointmass (camera top)", measure(pointmass, folder, args.repeats))
        if args.metaworld_episodes:
            try:
                metaworld = make_dataset(folder, "metaworld", "reach-v3,push-v3", args.metaworld_episodes, args.size)
            except BadInputError as error:
                print(f"\nMeta-World skipped: {error}")
                return
            report("metaworld reach-v3,push-v3 (camera corner2)", measure(metaworld, folder, args.repeats))


if __name__ == "__main__":
    main()
