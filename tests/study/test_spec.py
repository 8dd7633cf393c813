import pytest

from roboscale.errors import BadInputError
from roboscale.study import EXAMPLE, load_study, study_from_dict


def test_the_example_file_is_a_valid_study(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(EXAMPLE)
    spec = load_study(path)
    assert spec.name == "my-study" and spec.folder() == tmp_path / "studies" / "my-study"
    assert spec.sweep.tokenizers == ["uniform:64"] and spec.executor.kind == "local"
    assert spec.budgets() == pytest.approx([2.5e10, 6e10, 1.5e11])  # see tests/study/test_template.py


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"nmae": "x"}, "unknown key 'nmae'"),
        ({"sweep": {"widhts": [8]}}, "unknown key 'widhts' in \\[sweep\\]; known keys: tasks"),
        ({"sweep": {"widths": []}}, "widths \\(the model ladder\\) is empty"),
        ({"sweep": {"widths": "16,32"}}, "\\[sweep\\] widths must be a list of int"),
        ({"sweep": {"budgets": [1e11, -5]}}, "budgets must be positive"),
        ({"sweep": {"tasks": ["rl"]}}, "use bc and/or wm"),
        ({"sweep": {"tokenizers": ["bins:8"]}}, "unknown kind"),
        ({"sweep": {"min_steps": "many"}}, "min_steps must be a int"),
        ({"train": {"batch_size": 0}}, "batch_size must be >= 1"),
        ({"train": {"wm_target": "x"}}, "wm_target 'x': use absolute or delta"),
        ({"executor": {"kind": "slurm"}}, "use local or ray"),
        ({"data": {}}, "needs a path or a generate table"),
        ({"evaluate": {"policies": "best"}}, "use none, all or optimal"),
        ({"evaluate": {"policies": "all"}, "sweep": {"tasks": ["wm"]}}, "add bc to \\[sweep\\] tasks"),
        ({"evaluate": {"episodes": 0}}, "episodes and envs must be >= 1"),
        ({"evaluate": {"world_models": "best"}}, "world_models 'best': use none, all or optimal"),
        ({"evaluate": {"world_models": "all"}}, "add wm to \\[sweep\\] tasks or set world_models = none"),
        ({"executor": {"stack": 0}}, "stack must be >= 1"),
        ({"sweep": {"observation": "pixels"}}, "observation 'pixels': choose state, image, image\\+state"),
        ({"sweep": {"observation": "image"}}, "state tokenizer 'uniform:256' but observation is 'image'"),
        ({"sweep": {"tokenizers": ["vq:64@16"]}}, "image tokenizer 'vq:64@16' but observation is \"state\""),
        ({"sweep": {"observation": "image", "tokenizers": ["vq:64@15"]}}, "T=15 is not a square number"),
        ({"sweep": {"observation": "image+state", "tokenizers": ["patch:8"], "state_tokenizer": "vq:8@4"}}, "kind"),
    ],
)
def test_malformed_studies_name_the_key(raw, message):
    valid = {"data": {"path": "somewhere"}}
    assert study_from_dict(valid).data.path == "somewhere"  # so the error below is the bad entry's
    with pytest.raises(BadInputError, match=message):
        study_from_dict({**valid, **raw})  # each bad section replaces the valid one


def test_bad_toml_and_missing_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(BadInputError, match="not valid TOML"):
        load_study(path)
    with pytest.raises(BadInputError, match="roboscale study init"):
        load_study(tmp_path / "missing.toml")


def test_seeds_are_stacked_only_where_stacking_pays():
    from roboscale.study.plan import stack_size

    assert stack_size(32 * 16, 16) == 16  # continuous tokens: 16 positions per sequence
    assert stack_size(32 * 40, 16) == 12  # uniform:256@1
    assert stack_size(32 * 344, 16) == 1  # the demo's one token per dimension: alone
    assert stack_size(32 * 16, 1) == 1  # stack = 1 turns stacking off
