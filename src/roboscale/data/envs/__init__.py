"""Simulators with scripted experts, found by name and imported only when used."""

from __future__ import annotations

from importlib import import_module

from roboscale.data.envs.base import EnvConformanceError, EnvFamily, EnvSpec, TaskEnv, check_env
from roboscale.data.envs.render import check_renderer
from roboscale.errors import BadInputError

FAMILIES = {
    "pointmass": ("roboscale.data.envs.pointmass", "PointMassFamily", None),
    "metaworld": ("roboscale.data.envs.metaworld", "MetaWorldFamily", "pip install metaworld mujoco==3.3.0"),
}
"""name -> (module, class, how to install its simulator)."""


def get_family(name: str) -> EnvFamily:
    """The environment family called ``name`` (its simulator is imported now)."""
    if name not in FAMILIES:
        raise BadInputError(f"unknown environment {name!r}: choose one of {', '.join(FAMILIES)}")
    module_name, class_name, install = FAMILIES[name]
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        hint = f": {install}" if install else ""
        raise BadInputError(f"the {name} simulator is not installed ({error.name} is missing){hint}") from None
    return getattr(module, class_name)()


__all__ = [
    "FAMILIES",
    "EnvConformanceError",
    "EnvFamily",
    "EnvSpec",
    "TaskEnv",
    "check_env",
    "check_renderer",
    "get_family",
]
