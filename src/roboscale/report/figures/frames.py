"""Real against predicted camera frames of a study's best image world model, and its errors.

A wm group whose world models see images carries, per evaluated run of its
``open_loop`` section (from ``roboscale eval``'s open-loop result), the errors by
horizon in pixel and token space and ``frames``: the first validation start's last
real frame and its real and predicted frames at each horizon, as base64 PNG.

:func:`frames_part` shows, for the run with the lowest validation loss among those
with frames (the best world model):

- ``frames-SLUG``: a strip, one PNG as an inline data URI (no external file): top
  row the real frames (the last real frame s, then s+h for each horizon h), bottom
  row the predicted ones (blank under s), scaled up without smoothing;
- a table of every evaluated run's PSNR by horizon beside the tokenizer's
  reconstruction PSNR (the ceiling) and predicting no change, with the token-space
  error (code accuracy and cross-entropy for vq tokens, patch MSE for patches).
"""

from __future__ import annotations

import base64
import io

import numpy as np

from roboscale.report.analysis import GroupData
from roboscale.report.formatting import as_float, integer, number, percent
from roboscale.report.markup import Html, element, table

PSNR_CAP_DB = 100.0
"""Evaluation reports identical frames (e.g. through a lossless patch tokenizer) as 100 dB."""
GAP_PIXELS = 2
"""White space between frames in the strip (source pixels)."""
SHOWN_FRAME_PIXELS = 96
"""Each frame is shown at least this wide (CSS pixels), scaled up by a whole factor."""


def best_with_frames(group: dict) -> dict | None:
    """The evaluated run with frames and the lowest validation loss, or None."""
    runs = [run for run in (group.get("open_loop") or {}).get("runs") or [] if run.get("frames")]
    finite = [run for run in runs if np.isfinite(as_float(run.get("loss")))]
    return min(finite, key=lambda run: as_float(run.get("loss"))) if finite else None


def decode_png(text: str) -> np.ndarray:
    """A base64 PNG as an (H, W, 3) uint8 array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB"))


def strip_pixels(frames: dict) -> np.ndarray:
    """The strip as one image (2 x size + gap, columns x (size + gap) - gap, 3) uint8: real
    frames on top (last real, then each horizon), predicted below (blank under the last real)."""
    real = [decode_png(text) for text in [frames["last_real"], *frames["real"]]]
    predicted = [decode_png(text) for text in frames["predicted"]]
    size = real[0].shape[0]
    columns = len(real)
    pitch = size + GAP_PIXELS
    strip = np.full((2 * size + GAP_PIXELS, columns * pitch - GAP_PIXELS, 3), 255, dtype=np.uint8)
    for column, frame in enumerate(real):
        strip[:size, column * pitch : column * pitch + size] = frame
    for column, frame in enumerate(predicted, start=1):
        strip[pitch:, column * pitch : column * pitch + size] = frame
    return strip


def png_data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of an (H, W, 3) uint8 image."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def psnr_text(value) -> str:
    """A PSNR in dB to 3 digits, "exact" for identical frames (the cap)."""
    return "exact" if as_float(value) >= PSNR_CAP_DB else number(value, 3)


def _with_unit(text: str) -> str:
    return text if text == "exact" else f"{text} dB"


def frame_strip(data: GroupData) -> Html | None:
    """The ``<figure>`` of the best world model's strip, or None when no run has frames."""
    run = best_with_frames(data.group)
    if run is None:
        return None
    frames = run["frames"]
    pixels = strip_pixels(frames)
    scale = max(1, -(-SHOWN_FRAME_PIXELS // int(frames.get("size") or pixels.shape[0])))
    height, width = pixels.shape[:2]
    horizons = ", ".join(f"s+{h}" for h in frames["horizons"])
    image = element(
        "img",
        src=png_data_uri(pixels),
        width=width * scale,
        height=height * scale,
        alt=f"real (top) and predicted (bottom) frames at {horizons}",
        style="image-rendering: pixelated; max-width: 100%; height: auto",
    )
    psnr = ", ".join(
        f"{_with_unit(psnr_text(error.get('psnr_db')))} at {integer(error.get('horizon'))}"
        for error in run.get("horizons") or []
    )
    caption = (
        f"Best world model ({run.get('run_id')}, d_model {integer(run.get('d_model'))}, lowest validation loss "
        f"{number(run.get('loss'), 4)}): top row real frames, bottom row predicted open loop from the real frames "
        f"up to s (validation episode {frames.get('episode')}, s = frame {frames.get('start')}) and the recorded "
        f"actions; columns s, {horizons}. PSNR over all starts: {psnr}."
    )
    return element(
        "figure",
        element("p", "Real vs predicted frames", class_="figure-title"),
        image,
        element("figcaption", caption),
        id=f"frames-{data.slug}",
        class_="frame-strip",
    )


def image_error_table(group: dict) -> Html | None:
    """Every evaluated image world model's errors by horizon, or None when none sees images."""
    runs = [run for run in (group.get("open_loop") or {}).get("runs") or [] if run.get("image_tokenizer")]
    if not runs:
        return None
    headers = [
        "run",
        "d_model",
        "validation loss",
        "horizon",
        "PSNR (dB)",
        "tokenizer PSNR (dB)",
        "persistence PSNR (dB)",
        "code accuracy",
        "code cross-entropy (nats)",
        "patch MSE",
    ]
    rows = [
        [
            run.get("run_id"),
            integer(run.get("d_model")),
            number(run.get("loss"), 4),
            integer(error.get("horizon")),
            psnr_text(error.get("psnr_db")),
            psnr_text(error.get("reconstruction_psnr_db")),
            psnr_text(error.get("persistence_psnr_db")),
            percent(error.get("code_accuracy"), 1),
            number(error.get("cross_entropy"), 3),
            number(error.get("patch_mse"), 3),
        ]
        for run in runs
        for error in run.get("horizons") or []
    ]
    caption = (
        "Open-loop prediction of camera frames on validation episodes. PSNR of the predicted frames decoded by the "
        "run's image tokenizer against the real ones (pixel values in [0, 1]); tokenizer PSNR: the real frames "
        "through the tokenizer and back, the best a model with this tokenizer can do; persistence: frame s's tokens for s+h."
    )
    return table(headers, rows, caption=caption, class_="image-open-loop")


def frames_part(data: GroupData) -> list[Html]:
    """A wm group's image world models: the strip of the best and the table of errors (nothing
    for groups without image world models)."""
    strip, errors = frame_strip(data), image_error_table(data.group)
    if strip is None and errors is None:
        return []
    parts = [element("h3", "Camera frames: real vs predicted (open loop)")]
    if strip is not None:
        parts.append(element("div", strip, class_="figures"))
    if errors is not None:
        parts.append(element("div", errors, class_="table-wrap"))
    return parts
