"""Package attributes that import their module on first use.

A package whose ``__init__`` imported every submodule would make every ``roboscale``
command pay for pandas, the fitters or torch at start-up; :func:`lazy_exports` gives
a package a module ``__getattr__`` (PEP 562) that imports the defining submodule only
when one of its names is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, sources: Mapping[str, str]) -> Callable[[str], object]:
    """The ``__getattr__`` of ``package``: name -> the attribute of the module
    ``sources[name]`` names, imported on first use (and kept in the package)."""

    def __getattr__(name: str):
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(sources[name]), name)
        setattr(import_module(package), name, value)
        return value

    return __getattr__
