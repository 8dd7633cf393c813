"""The run folder: its layout, its strict JSON reader, its tokenizers file, its checkpoint."""

import json

import pytest
import torch

from roboscale.errors import BadInputError
from roboscale.runfolder import (
    RunLayout,
    checkpoint_step,
    has_checkpoint,
    load_checkpoint,
    read_json,
    save_checkpoint,
    tokenizer_payload,
    tokenizers_from_payload,
)
from roboscale.tokenize import TokenizerSpec, fit_tokenizer


def test_the_layout_names_every_file(tmp_path):
    layout = RunLayout.of(str(tmp_path / "run"))
    relative = {name: str(path.relative_to(tmp_path / "run")) for name, path in vars(layout).items() if name != "root"}
    assert relative == {
        "config": "config.json",
        "tokenizers": "tokenizers.json",
        "record": "record.json",
        "checkpoint": "checkpoint",
        "checkpoint_state": "checkpoint/state.json",
        "evaluations": "eval",
    }


@pytest.mark.parametrize(
    "content, message", [(None, "is missing"), ("{not json", "not valid JSON"), ("[1, 2]", "holds a list")]
)
def test_a_damaged_run_file_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "record.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInputError, match=message):
        read_json(path)


def test_tokenizers_round_trip_through_their_file():
    stats = {"min": [-1.0, 0.0], "max": [1.0, 3.0], "mean": [0.0, 1.5], "std": [0.5, 1.0]}
    state = fit_tokenizer(TokenizerSpec("uniform", 8), stats)
    action = fit_tokenizer(TokenizerSpec("continuous", 0), stats)
    payload = json.loads(json.dumps(tokenizer_payload(state, action)))
    restored = tokenizers_from_payload(payload)
    assert [t.to_dict() for t in restored] == [state.to_dict(), action.to_dict()]


def test_a_stacked_models_checkpoint_is_its_own_slice(tmp_path):
    stacked = torch.nn.Linear(3, 2)  # stand-in for a stack of 2 models: leading axis = model
    with torch.no_grad():
        stacked.weight.copy_(torch.arange(6.0).reshape(2, 3))
        stacked.bias.copy_(torch.tensor([10.0, 20.0]))
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, stacked, torch.optim.AdamW(stacked.parameters()), {"step": 7}, index=1)
    assert has_checkpoint(folder) and checkpoint_step(folder) == 7
    single = torch.nn.Linear(3, 1)
    single.weight.data = torch.zeros(1, 3)
    single.bias.data = torch.zeros(1)
    assert load_checkpoint(folder, single, None)["step"] == 7
    assert single.weight.tolist() == [[3.0, 4.0, 5.0]] and single.bias.tolist() == [20.0]
