"""The report's strip of real vs predicted frames: the best (lowest-loss) image world model's frames,
from its open-loop result through the study's analysis to one inline PNG, every frame in its place."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
from PIL import Image

from roboscale.evaluate.images import png_base64
from roboscale.evaluate.world_model import HorizonError, WorldModelEvaluation
from roboscale.report.figures.frames import GAP_PIXELS, SHOWN_FRAME_PIXELS
from roboscale.report.page import render_html
from roboscale.study.world_models import open_loop_analysis

SIZE = 16
HORIZONS = (1, 5, 20)
RUNS = pd.DataFrame(
    {
        "run_id": ["small", "large"],
        "seed": [0, 0],
        "d_model": [32, 64],
        "N": [4e4, 1.7e5],
        "C": [1e10, 1e11],
        "budget": [1e10, 1e11],
        "loss": [3.0, 2.5],
    }
)


def solid(red: int, green: int, blue: int) -> np.ndarray:
    return np.broadcast_to(np.array([red, green, blue], dtype=np.uint8), (SIZE, SIZE, 3)).copy()


def result(shade: int) -> dict:
    """An image world model's open-loop result whose frames are solid colours: the last real frame
    (shade, 0, 0), real frame at horizon h (shade, h, 0), predicted (shade, 0, h)."""
    horizons = [
        HorizonError(
            h,
            8,
            0.5,
            0.01,
            0.8,
            psnr_db=20.0 - h / 10,
            persistence_psnr_db=15.0,
            reconstruction_psnr_db=30.0,
            code_accuracy=0.5,
            cross_entropy=1.25,
        )
        for h in HORIZONS
    ]
    evaluation = WorldModelEvaluation(
        run="runs/x",
        checkpoint_step=10,
        run_status="finished",
        split="validation",
        episodes=2,
        starts=[(7, 3), (8, 0)],
        horizons=horizons,
        seconds=1.0,
        observation="image",
        image_tokenizer="vq:64@16",
        frames={
            "episode": 7,
            "start": 3,
            "horizons": list(HORIZONS),
            "size": SIZE,
            "last_real": png_base64(solid(shade, 0, 0)),
            "real": [png_base64(solid(shade, h, 0)) for h in HORIZONS],
            "predicted": [png_base64(solid(shade, 0, h)) for h in HORIZONS],
        },
    )
    return evaluation.to_dict()


def analysis() -> dict:
    """A study analysis with one group of two image world models evaluated open loop."""
    group = {"task": "wm", "tokenizer": "vq:64@16", "label": "wm · vq:64@16"}
    group["open_loop"] = open_loop_analysis(RUNS, {"small": result(100), "large": result(200)}, group["label"])
    return {"title": "Image world models", "groups": [group], "runs": [], "curves": []}


def page() -> str:
    return render_html(analysis())


def strip_image(html: str) -> tuple[np.ndarray, dict]:
    figure = re.search(r'<figure id="frames-wm-vq6416"[^>]*>(.*?)</figure>', html, re.DOTALL).group(1)
    tag = re.search(r"<img [^>]*>", figure).group(0)
    attributes = dict(re.findall(r'(\w+)="([^"]*)"', tag))
    assert attributes["src"].startswith("data:image/png;base64,")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(attributes["src"].split(",", 1)[1]))).convert("RGB"))
    return pixels, attributes


def test_the_strip_shows_the_lowest_loss_model_real_on_top_predicted_below():
    pixels, attributes = strip_image(page())
    pitch = SIZE + GAP_PIXELS
    assert pixels.shape == (2 * SIZE + GAP_PIXELS, 4 * pitch - GAP_PIXELS, 3)
    centre = SIZE // 2
    top = [tuple(pixels[centre, column * pitch + centre]) for column in range(4)]
    bottom = [tuple(pixels[pitch + centre, column * pitch + centre]) for column in range(4)]
    assert top == [(200, 0, 0), (200, 1, 0), (200, 5, 0), (200, 20, 0)]  # "large" (loss 2.5), not "small"
    assert bottom == [(255, 255, 255), (200, 0, 1), (200, 0, 5), (200, 0, 20)]  # blank under the last real frame
    assert tuple(pixels[centre, SIZE]) == (255, 255, 255)  # the gap between columns
    scale = -(-SHOWN_FRAME_PIXELS // SIZE)
    assert (int(attributes["width"]), int(attributes["height"])) == (pixels.shape[1] * scale, pixels.shape[0] * scale)


def test_the_caption_names_the_run_and_the_psnr_and_the_table_has_every_model():
    html = page()
    assert "Best world model (large, d_model 64, lowest validation loss 2.5)" in html
    assert (
        "columns s, s+1, s+5, s+20" in html and "PSNR over all starts: 19.9 dB at 1, 19.5 dB at 5, 18 dB at 20" in html
    )
    start = html.index('<table class="image-open-loop">')
    table = html[start : html.index("</table>", start)]
    assert table.count("<tr>") == 1 + 2 * 3  # header, then 2 runs x 3 horizons
    assert "<td>30</td>" in table and "<td>50.0%</td>" in table and "<td>1.25</td>" in table


def test_no_strip_without_image_world_models():
    state_result = result(100)
    for key in ("image_tokenizer", "frames"):
        del state_result[key]
    group = {"task": "wm", "tokenizer": "uniform:256", "label": "wm · uniform:256"}
    group["open_loop"] = open_loop_analysis(RUNS, {"small": state_result}, group["label"])
    html = render_html({"groups": [group], "runs": [], "curves": []})
    assert "frames-wm" not in html and "image-open-loop" not in html and "data:image/png" not in html
