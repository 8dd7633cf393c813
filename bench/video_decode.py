"""Benchmark: decoding LeRobot-style AV1 video into RGB frames (roboscale.data.video) against
the two obvious PyAV alternatives, in the same run.

The video is made here as LeRobot 0.4.4 encodes it (libsvtav1, yuv420p, GOP 2, CRF 30):
``--frames`` frames of ``--size`` px, a square moving on a tinted background. Measured, in
frames per second (best of ``--repeats``):

- ``decode_video_frames``, one call for all frames (one seek, sequential decode, one RGB
  converter for the call);
- ``decode_video_frames``, one call per episode of ``--episode`` frames (what the importer does);
- PyAV with ``frame.to_ndarray(format="rgb24")`` per frame (a new converter per frame);
- one seek per requested frame (random access, what a per-item dataset loader does).

One process, one core. Run:
    python bench/video_decode.py [--frames 1000] [--size 64] [--episode 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from roboscale.data.video import decode_video_frames

FPS = 10


def frame(index: int, size: int) -> np.ndarray:
    image = np.zeros((size, size, 3), dtype=np.uint8)
    image[..., 2] = (index // 50) * 10 % 256
    left = (index * 3) % (size - 8)
    image[size // 4 : size // 4 + 8, left : left + 8] = (230, 200, 30)
    return image


def encode(path: Path, frames: int, size: int) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libsvtav1", rate=FPS)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "2", "crf": "30", "preset": "12"}
        for index in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame(index, size), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def per_frame_converter(path: Path, times: np.ndarray) -> None:
    with av.open(str(path)) as container:
        for decoded in container.decode(video=0):
            decoded.to_ndarray(format="rgb24")


def seek_per_frame(path: Path, times: np.ndarray) -> None:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for time_s in times:
            container.seek(int(time_s / stream.time_base), stream=stream, backward=True)
            for decoded in container.decode(stream):
                if decoded.time >= time_s - 1e-4:
                    decoded.to_ndarray(format="rgb24")
                    break


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--episode", type=int, default=50, help="frames per episode (one call each)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        encode(path, args.frames, args.size)
        times = np.arange(args.frames) / FPS
        episodes = [times[i : i + args.episode] for i in range(0, args.frames, args.episode)]
        decoded = decode_video_frames(path, times)
        truth = np.stack([frame(i, args.size) for i in range(args.frames)])
        error = float(np.abs(decoded.astype(np.int16) - truth).mean())
        rows = {
            "decode_video_frames, one call": lambda: decode_video_frames(path, times),
            f"decode_video_frames, per {args.episode}-frame episode": lambda: [
                decode_video_frames(path, part) for part in episodes
            ],
            "PyAV, to_ndarray(rgb24) per frame": lambda: per_frame_converter(path, times),
            "PyAV, one seek per frame": lambda: seek_per_frame(path, times),
        }
        print(
            f"{args.frames} frames {args.size}x{args.size} AV1 ({path.stat().st_size} bytes), "
            f"mean abs error {error:.2f} / 255"
        )
        print(f"{'method':<48} {'frames/s':>10}")
        for name, run in rows.items():
            print(f"{name:<48} {args.frames / best_seconds(run, args.repeats):>10.0f}")


if __name__ == "__main__":
    main()
