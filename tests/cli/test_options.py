"""Options made from dataclasses: names, types, defaults and help come from the fields."""

import dataclasses
import typing
from dataclasses import dataclass, field

import typer
from typer.testing import CliRunner

from roboscale.cli.options import fields_of, options_from
from roboscale.cli.train import TRAIN_CONFIG_FIELDS
from roboscale.train import TrainConfig


@dataclass(frozen=True)
class Settings:
    width: int = 64
    """Model width in dimensions."""
    rate: float | None = None
    """Learning rate (default: a rule)."""
    as_json: bool = field(default=False, metadata={"flag": "--json"})
    """Print JSON."""
    name: str = "run"


def test_train_options_read_from_source_match_the_dataclass():
    declared = dataclasses.fields(TrainConfig)
    types = typing.get_type_hints(TrainConfig)
    assert [option.name for option in TRAIN_CONFIG_FIELDS] == [f.name for f in declared]
    for option, declared_field in zip(TRAIN_CONFIG_FIELDS, declared, strict=True):
        assert option.default == declared_field.default
        assert option.type == types[declared_field.name], option.name
        assert option.flag == "--" + declared_field.name.replace("_", "-")


def test_every_train_config_field_has_a_one_line_help():
    for option in TRAIN_CONFIG_FIELDS:
        assert option.help, f"TrainConfig.{option.name} has no docstring"
        assert "\n" not in option.help and len(option.help) < 120, option.name


def test_fields_of_reads_types_defaults_docstrings_and_flags():
    options = {option.name: option for option in fields_of(Settings)}
    assert options["width"].type is int and options["width"].default == 64
    assert options["width"].help == "Model width in dimensions."
    assert options["rate"].type == float | None
    assert options["as_json"].flag == "--json"
    assert options["name"].help is None


def make_app(**overrides) -> typer.Typer:
    app = typer.Typer()
    seen = []

    @app.command()
    @options_from(fields_of(Settings), into="settings", build=Settings, **overrides)
    def command(path: str, *, settings: Settings) -> None:
        seen.append((path, settings))

    app.seen = seen
    return app


def test_a_command_receives_the_built_dataclass_and_its_own_arguments():
    app = make_app()
    result = CliRunner().invoke(app, ["here", "--width", "32", "--rate", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    assert app.seen == [("here", Settings(width=32, rate=0.5, as_json=True))]


def test_defaults_and_skip_per_command():
    app = make_app(defaults={"width": 16}, skip=("name",))
    assert CliRunner().invoke(app, ["x"]).exit_code == 0
    assert app.seen == [("x", Settings(width=16))]
    assert CliRunner().invoke(app, ["x", "--name", "other"]).exit_code == 2


def test_help_shows_field_docs_and_a_flag_without_a_negative_twin():
    text = CliRunner().invoke(make_app(), ["--help"], env={"COLUMNS": "160"}).output
    assert "Model width in dimensions." in text and "[default: 64]" in text
    assert "--json" in text and "--no-json" not in text and "--as-json" not in text
