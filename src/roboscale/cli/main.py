"""Entry point of the `roboscale` command: sub-commands per stage, one-line errors."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from roboscale import __version__
from roboscale.cli import data, fit, study
from roboscale.cli.eval import eval_command
from roboscale.cli.train import train_command
from roboscale.cli.tune import tune_command
from roboscale.errors import RoboscaleError

app = typer.Typer(
    name="roboscale",
    help="Measure, fit and forecast scaling laws for robot learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Commands in pipeline order: the demo, then data -> train -> eval -> study -> runs -> fit -> report.
app.command("demo", help="Run the built-in scaling study (Meta-World BC and WM, fits, report) in minutes.")(
    study.demo_command
)
app.add_typer(data.app, name="data", help="Generate, inspect and import demonstration datasets (LeRobot v3).")
app.command("train", help="Train a world model or behaviour-cloning policy; writes a run record and checkpoint.")(
    train_command
)
app.command("eval", help="Evaluate a run: closed-loop success of a policy, open-loop error of a world model.")(
    eval_command
)
app.add_typer(study.app, name="study", help="Scaling studies: write, plan and run a study file.")
app.command(
    "tune",
    help="Sweep learning rates at a study's base width; writes tune.json for lr = \"tuned\" in the study file's train section.",
)(tune_command)
app.add_typer(study.runs_app, name="runs", help="List a study's runs or export them for `roboscale fit` and pandas.")
app.add_typer(fit.app, name="fit", help="Fit scaling laws (parametric, IsoFLOP, frontier, power law) to a runs table.")
app.command("report", help="Fit a study's runs and write its HTML report and JSON of every number.")(
    study.report_command
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"roboscale {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Measure, fit and forecast scaling laws for robot learning."""


def command_tree() -> typer.core.TyperGroup:
    """The click command behind `roboscale`, with no "<bool>" type beside any flag in
    --help (``--help``, ``--json``, ``--overwrite``...): a flag takes no value."""
    root = typer.main.get_command(app)
    _hide_flag_types(root)
    return root


def _hide_flag_types(command) -> None:
    help_option = command.get_help_option(typer.Context(command))
    for parameter in [*command.params, help_option]:
        if parameter is not None and getattr(parameter, "is_flag", False) and not parameter.metavar:
            parameter.metavar = ""
    for subcommand in getattr(command, "commands", {}).values():
        _hide_flag_types(subcommand)


INTERRUPTED = "interrupted: what was finished is kept; run the same command again to resume"
INTERRUPTED_BY_COMMAND = {
    "eval": "interrupted: nothing was written (an evaluation writes its results when it ends); run it again",
}
"""Commands whose interrupted work is not kept, with what Ctrl-C means for them instead."""
INTERRUPTED_EXIT_CODE = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl-C."""


def main() -> None:
    """Run the CLI; a RoboscaleError becomes one line on stderr and its exit code, Ctrl-C exit code 130."""
    try:
        # Without standalone mode typer returns the exit code instead of exiting, and turns
        # Ctrl-C into exit code 130 before it reaches us.
        exit_code = command_tree()(standalone_mode=False)
    except RoboscaleError as error:
        # Text, not markup: messages name keys like [sweep] that markup would swallow.
        message = Text.assemble(("error: ", "bold red"), str(error))
        Console(stderr=True).print(message, highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        exit_code = INTERRUPTED_EXIT_CODE
    except Exception as error:  # click usage errors carry their own exit code
        exit_code = getattr(error, "exit_code", None)
        if exit_code is not None and hasattr(error, "show"):
            error.show()
            sys.exit(exit_code)
        raise
    if exit_code == INTERRUPTED_EXIT_CODE:
        # train resumes from its checkpoint, study run from its store; data generate starts again cleanly.
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        message = INTERRUPTED_BY_COMMAND.get(command, INTERRUPTED)
        Console(stderr=True).print(message, highlight=False, soft_wrap=True, markup=False)
    sys.exit(exit_code if isinstance(exit_code, int) else 0)


if __name__ == "__main__":
    main()
