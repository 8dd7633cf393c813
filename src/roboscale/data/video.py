"""Decode the frames of a LeRobot video file (AV1/H.264 mp4) at given timestamps, with PyAV.

LeRobot v3 concatenates the episodes of one camera into shared mp4 files; an episode's
frames are the frames at ``from_timestamp + timestamp`` of its file. A query is answered
by the decoded frame nearest in time, which must lie within ``tolerance_s`` (LeRobot's
rule). One call seeks once, to the key frame before the first query, then decodes
forward until the last query: decoding is sequential, never one seek per frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from roboscale.errors import BadInputError

DEFAULT_TOLERANCE_S = 1e-4
"""Largest gap between a query and its frame's timestamp (seconds): LeRobot's default."""

_FIX = "re-download or re-encode the dataset's videos (LeRobot writes them with its own encoder)"


def decode_video_frames(
    path: str | Path, timestamps: Sequence[float] | np.ndarray, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB frames of video ``path`` at ``timestamps`` (seconds from the
    file's start, any order, repeats allowed).

    Raises BadInputError naming the file and the frame (timestamp and frame number) when
    the file is missing or does not decode, or when no frame lies within ``tolerance_s``
    seconds of a timestamp.
    """
    path = Path(path)
    queries = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if queries.size == 0:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    first, last = float(queries.min()), float(queries.max())
    with _open_video(path, f" (needed for the frame at {first:.3f} s)") as (container, stream):
        fps = float(stream.average_rate or stream.guessed_rate or 0) or None
        times, frames = _decode_span(container, stream, first - tolerance_s, last + tolerance_s, path, fps)
    return _nearest_frames(times, frames, queries, tolerance_s, path, fps)


def video_frame_size(path: str | Path) -> tuple[int, int]:
    """(height, width) in pixels of the first video stream of ``path``, read from its header;
    BadInputError naming the file when it is missing, does not open or has no video."""
    with _open_video(Path(path), "") as (_, stream):
        return int(stream.codec_context.height), int(stream.codec_context.width)


@contextmanager
def _open_video(path: Path, needed: str) -> Iterator[tuple]:
    """(container, first video stream) of ``path``, closed on exit; BadInputError naming the
    file (and ``needed``, what it was opened for) when it is missing, does not open or has no video."""
    import av

    if not path.is_file():
        raise BadInputError(
            f"video file {path} is missing{needed}: copy the dataset's videos/ folder with it "
            "(LeRobot downloads it unless download_videos=False)"
        )
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise BadInputError(f"{path} does not open as a video ({error}){needed}: {_FIX}") from None
    with container:
        if not container.streams.video:
            raise BadInputError(f"{path} holds no video stream{needed}: {_FIX}")
        yield container, container.streams.video[0]


def _decode_span(container, stream, start: float, stop: float, path: Path, fps: float | None):
    """Timestamps (s) and RGB arrays of the decoded frames in [start, stop], plus the
    nearest frame on either side (for error messages): one seek to the key frame at or
    before ``start``, then sequential decoding."""
    import av
    from av.video.reformatter import VideoReformatter

    # One reformatter for the call: frame.to_ndarray(format=...) builds a new converter per
    # frame, which made RGB conversion ~3x slower than decoding (1000 64x64 AV1 frames).
    to_rgb = VideoReformatter()
    if start > 0 and stream.time_base is not None:
        container.seek(int(start / stream.time_base), stream=stream, backward=True, any_frame=False)
    times: list[float] = []
    frames: list[np.ndarray] = []
    before = None  # the latest frame before the span, converted to RGB only if it is kept
    previous = None
    try:
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            previous = float(frame.time)
            if previous < start:
                before = frame
                continue
            times.append(previous)
            frames.append(to_rgb.reformat(frame, format="rgb24").to_ndarray())
            if previous > stop:
                break
    except av.FFmpegError as error:
        # The frame that failed is the one after the last decoded frame (or the first one).
        failed = max(start, 0.0) if previous is None else previous + (1.0 / fps if fps else 0.0)
        raise BadInputError(
            f"{path}: frame{_frame_number(failed, fps)} (at {failed:.3f} s) does not decode ({error}): {_FIX}"
        ) from None
    if before is not None:
        times.insert(0, float(before.time))
        frames.insert(0, to_rgb.reformat(before, format="rgb24").to_ndarray())
    return np.asarray(times), frames


def _nearest_frames(
    times: np.ndarray, frames: list[np.ndarray], queries: np.ndarray, tolerance_s: float, path: Path, fps: float | None
) -> np.ndarray:
    """For each query the decoded frame nearest in time (BadInputError when none is within tolerance)."""
    if len(times) == 0:
        query = float(queries.min())
        raise BadInputError(
            f"{path} has no frame at {query:.3f} s (frame{_frame_number(query, fps)}): the video is shorter than "
            f"the dataset says or damaged; {_FIX}"
        )
    order = np.argsort(times, kind="stable")  # decode order is presentation order for LeRobot's files; be sure
    times = times[order]
    after = np.searchsorted(times, queries)  # first frame at or after each query
    left, right = np.clip(after - 1, 0, len(times) - 1), np.clip(after, 0, len(times) - 1)
    nearest = np.where(np.abs(times[left] - queries) <= np.abs(times[right] - queries), left, right)
    gaps = np.abs(times[nearest] - queries)
    if np.any(gaps > tolerance_s):
        bad = int(np.argmax(gaps > tolerance_s))
        query = float(queries[bad])
        raise BadInputError(
            f"{path} has no frame within {tolerance_s} s of {query:.4f} s (frame{_frame_number(query, fps)}; "
            f"nearest decoded frame at {times[nearest[bad]]:.4f} s): the video is shorter than the dataset says, "
            f"damaged, or at another frame rate; {_FIX}"
        )
    return np.stack([frames[order[i]] for i in nearest])


def _frame_number(time: float, fps: float | None) -> str:
    """' 12' (the frame number at ``time`` seconds) when the frame rate is known, else ''."""
    return f" {round(time * fps)}" if fps else ""
