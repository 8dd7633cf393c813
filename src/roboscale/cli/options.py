"""Command-line options made from a dataclass, so that a setting is declared once.

Every field of the dataclass becomes an option: ``d_model: int = 64`` becomes
``--d-model <int> [default: 64]``, and the field's docstring (the string literal
right after it, as in CleanRL's argument dataclasses) becomes its help. A command
asks for all of them as one parameter::

    @options_from(fields_of(FitOptions), into="options", build=FitOptions)
    def parametric(runs: ..., options: FitOptions) -> None: ...

typer sees one option per field in its place; the command receives
``build(**values)``. A boolean field is a single flag (``--json``, ``--no-offset``),
without the ``--no-`` twin a True/False pair would add.

:func:`fields_in_source` reads the fields from the dataclass's source instead of
the class, for a dataclass whose package is slow to import (``TrainConfig``
lives beside the trainer, which loads torch): ``roboscale --help`` stays fast.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core

REQUIRED = dataclasses.MISSING
"""The default of a field that has none: its option is required."""


@dataclass(frozen=True)
class OptionField:
    """One dataclass field as a command-line option."""

    name: str
    type: Any
    default: Any
    help: str | None
    flag: str
    """The option's name on the command line, e.g. ``--d-model``."""


def fields_of(cls: type) -> list[OptionField]:
    """The fields of dataclass ``cls`` as options; ``field(metadata={"flag": "--json"})``
    names an option whose field name would not read well on the command line."""
    return list(_read_fields(cls))


@functools.cache
def _read_fields(cls: type) -> tuple[OptionField, ...]:
    """:func:`fields_of`, read once per class: finding a class's source parses its whole
    module (about 30 ms for cli/fit.py), and every `roboscale` start builds each fit command."""
    types = typing.get_type_hints(cls)
    docs = _docstrings(ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0])
    return tuple(
        OptionField(
            name=field.name,
            type=types[field.name],
            default=field.default,
            help=docs.get(field.name),
            flag=field.metadata.get("flag", _flag(field.name)),
        )
        for field in dataclasses.fields(cls)
    )


def fields_in_source(path: Path, class_name: str) -> list[OptionField]:
    """The fields of dataclass ``class_name`` in the Python file ``path``, read without
    importing it. Types must be built-in scalars (``int``, ``float | None``, ...) and
    defaults literals, as a configuration's are."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    docs = _docstrings(node)
    scalars = {"int": int, "float": float, "str": str, "bool": bool, "None": None}
    return [
        OptionField(
            name=statement.target.id,
            type=eval(ast.unparse(statement.annotation), {"__builtins__": {}}, scalars),
            default=REQUIRED if statement.value is None else ast.literal_eval(statement.value),
            help=docs.get(statement.target.id),
            flag=_flag(statement.target.id),
        )
        for statement in node.body
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
    ]


def options_from(
    fields: list[OptionField],
    *,
    into: str,
    build: Callable[..., Any] = dict,
    skip: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
) -> Callable[[Callable], Callable]:
    """Decorate a command so that its parameter ``into`` becomes one option per field
    (except ``skip``), and receives ``build(**their values)``. ``defaults`` overrides
    the fields' defaults for this command."""
    made = [_parameter(field, (defaults or {}).get(field.name, field.default)) for field in fields]
    made = [parameter for parameter in made if parameter.name not in set(skip)]
    names = [parameter.name for parameter in made]

    def decorate(command: Callable) -> Callable:
        own = inspect.signature(command, eval_str=True).parameters
        clashes = sorted(set(names) & (set(own) - {into}))
        if clashes:  # a programming error, raised when the module is imported
            raise TypeError(f"{command.__name__}: parameters {clashes} clash with option fields")

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            settings = {name: values.pop(name) for name in names}
            return command(**values, **{into: build(**settings)})

        kept = [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for parameter in own.values()]
        position = list(own).index(into)
        parameters = kept[:position] + made + kept[position + 1 :]
        run.__signature__ = inspect.Signature(parameters)
        # typer must read these parameters, already resolved, not the command's own annotations.
        run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        del run.__wrapped__
        return run

    return decorate


def _parameter(field: OptionField, default: Any) -> inspect.Parameter:
    # One name, even for a flag: no --no-FLAG twin (cli.main hides the "<bool>" beside flags).
    option = typer.Option(field.flag, help=field.help)
    return inspect.Parameter(
        field.name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[field.type, option],
        default=inspect.Parameter.empty if default is REQUIRED else default,
    )


def _docstrings(class_node: ast.ClassDef) -> dict[str, str]:
    """The string literal right after each annotated field, whitespace collapsed, by field name."""
    body = class_node.body
    docs = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
