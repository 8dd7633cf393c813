"""Every study in examples/ is valid: it parses, its data section is a real generation
spec (or a path), and its budgets are positive and increasing."""

from pathlib import Path

import pytest

from roboscale.errors import BadInputError
from roboscale.study import load_study
from roboscale.study.demo import demo_spec
from roboscale.study.run import generation_spec

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path):
    spec = load_study(path)
    if spec.data.generate:
        generation, workers = generation_spec(spec)
        assert workers >= 1 and generation.env in ("metaworld", "pointmass")
    elif spec.data.sources:  # a data-axes study: every level's source is generated (or given)
        from roboscale.study.data_levels import data_levels, study_sources

        assert spec.axes is not None and len(data_levels(spec)) >= 3
        assert all(source.generate or source.path for source in study_sources(spec).values())
    else:
        assert spec.data.path
    budgets = spec.budgets()
    assert budgets == sorted(budgets) and budgets[0] > 0


def test_demo_example_is_the_builtin_demo():
    from dataclasses import replace

    from_file = replace(load_study(Path(__file__).parents[2] / "examples" / "demo.toml"), source="", out="x")
    assert from_file == replace(demo_spec("x"), source="")


def test_unknown_generate_key_is_refused(tmp_path):
    file = tmp_path / "s.toml"
    file.write_text('[data]\ngenerate = { env = "pointmass", episodez = 10 }\n')
    with pytest.raises(BadInputError, match="episodez"):
        generation_spec(load_study(file))


def test_wrong_type_in_generate_is_refused(tmp_path):
    file = tmp_path / "s.toml"
    file.write_text('[data]\ngenerate = { env = "pointmass", episodes = "many" }\n')
    with pytest.raises(BadInputError, match="episodes='many': must be a whole number"):
        generation_spec(load_study(file))
