"""Every `--help` of the real command tree: a flag shows no "<bool>" type and no doubled negation."""

from roboscale.cli.main import command_tree


def every_command_path(command, path=()) -> list[tuple[str, ...]]:
    """The argv prefix of the root, each group and each command under ``command``."""
    paths = [path]
    for name, subcommand in getattr(command, "commands", {}).items():
        paths += every_command_path(subcommand, (*path, name))
    return paths


def test_no_help_shows_a_type_beside_a_flag(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    paths = every_command_path(command_tree())
    # root, demo, train, eval, tune, report; data (generate, info, floor, derive, import lerobot/minari);
    # study (init, plan, run); runs (list, export); fit (parametric, isoflop, frontier, power-law, audit,
    # data-constrained, mixture, effective-data, joint-data).
    assert len(paths) == 31
    for path in paths:
        command_tree().main([*path, "--help"], prog_name="roboscale", standalone_mode=False)
        text = capsys.readouterr().out
        assert f"Usage: roboscale {' '.join(path)}".rstrip() in text
        assert "--help" in text and "<bool>" not in text and "--no-no-" not in text, path
    # Options that take a value still show their type.
    command_tree().main(["fit", "power-law", "--help"], prog_name="roboscale", standalone_mode=False)
    text = capsys.readouterr().out
    assert "<float>" in text and "--no-offset" in text
