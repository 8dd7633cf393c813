"""A study on camera frames, end to end: tokens per frame as the study's factor (one IsoFLOP
family per image tokenizer), image world models evaluated open loop, and the report's strip of
real against predicted frames. Patch tokenizers keep it fast (nothing to train before the runs)."""

import dataclasses
import json

import pytest

from roboscale.study import RunStore, run_study, study_from_dict

pytestmark = pytest.mark.slow

IMAGE_DATA = {"env": "pointmass", "episodes": 40, "quality": "noise:0.1", "seed": 0, "camera": "top", "image_size": 16}


def image_study(out, **sweep_changes):
    sweep = {
        "tasks": ["wm"],
        "observation": "image",
        "tokenizers": ["patch:8", "patch:4"],  # 4 and 16 tokens per frame
        "widths": [8, 16],
        "budgets": [2e9],
        "sizes_per_budget": 2,
        "max_epochs": 100.0,
        "min_steps": 5,
        **sweep_changes,
    }
    return study_from_dict(
        {
            "name": "images",
            "out": str(out),
            "data": {"generate": dict(IMAGE_DATA)},
            "sweep": sweep,
            "train": {"eval_points": 2, "eval_windows": 32, "batch_size": 16, "context_steps": 4},
            "evaluate": {"world_models": "all"},
            "executor": {"workers": 1, "threads": 1},
        }
    )


def test_an_image_study_groups_runs_by_image_tokenizer_and_shows_predicted_frames(tmp_path):
    from roboscale.report import write_report

    spec = image_study(tmp_path / "images")
    result = run_study(spec, bootstrap=0, write=False)
    assert result.counts == {"finished": 4, "failed": 0}
    runs = RunStore(spec.folder() / "study.db").runs()
    assert sorted(set(runs["tokenizer"])) == ["patch:4", "patch:8"]
    # Tokens per frame set the sequence: 4 steps x (16 image + 2 action) tokens against 4 x (4 + 2).
    for run_id, tokenizer in zip(runs["run_id"], runs["tokenizer"], strict=True):
        record = json.loads((spec.folder() / "runs" / run_id / "record.json").read_text())
        expected = 16 if tokenizer == "patch:4" else 4
        assert record["config"]["observation"] == "image" and record["config"]["image_tokenizer"] == tokenizer
        assert record["model"]["image_tokens"] == expected, record["model"]
        assert record["image_tokenizer"]["tokens_per_frame"] == expected
    stored = RunStore(spec.folder() / "study.db").open_loop()
    assert len(stored) == 4 and all("psnr_db" in json.dumps(entry) for entry in stored.values())
    groups = {group["tokenizer"] for group in result.analysis["groups"]}
    assert groups == {"patch:4", "patch:8"}
    page = write_report(result.analysis, spec.folder() / "report").read_text()
    assert "data:image/png;base64," in page  # the strip of real against predicted frames


def test_an_image_study_on_state_only_data_is_refused_before_training(tmp_path):
    from roboscale.errors import BadInputError

    spec = image_study(tmp_path / "no-camera")
    state_only = {key: value for key, value in IMAGE_DATA.items() if key not in ("camera", "image_size")}
    spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, generate=state_only))
    with pytest.raises(BadInputError, match="no observation.images"):
        run_study(spec, bootstrap=0, write=False)
    assert not (spec.folder() / "runs").exists() or not any((spec.folder() / "runs").iterdir())
