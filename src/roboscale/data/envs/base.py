"""The environment interface: one task of a simulator, together with its scripted expert.

Modelled on Gymnasium (``reset`` / ``step`` returning ``(obs, reward, terminated,
truncated, info)``), with two additions a demonstration generator needs: the
initial configuration (object and goal positions) is chosen by an explicit
``config_seed``, and ``expert_action`` gives the scripted expert's action. A new
simulator is one module with a :class:`EnvFamily` subclass, registered by name in
:mod:`roboscale.data.envs`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from roboscale.errors import BadInputError


@dataclass(frozen=True)
class EnvSpec:
    """What every task of a family shares: spaces, control rate and horizon."""

    family: str
    robot_type: str
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_low: np.ndarray
    action_high: np.ndarray
    fps: float
    """Control steps per second of simulated time."""
    max_steps: int
    """Episode horizon (steps) when the task is not solved earlier."""

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)


class TaskEnv(ABC):
    """One task of a simulator with its scripted expert."""

    spec: EnvSpec
    task: str

    @abstractmethod
    def reset(self, config_seed: int) -> np.ndarray:
        """Set the initial configuration drawn from ``config_seed`` (the same seed
        always gives the same configuration) and return the first observation."""

    @abstractmethod
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply ``action``; returns (observation, reward, terminated, truncated, info)
        with ``info["success"]`` true once the task is solved."""

    @abstractmethod
    def expert_action(self, observation: np.ndarray) -> np.ndarray:
        """The scripted expert's action for ``observation`` (deterministic)."""

    def enable_camera(self, camera: str, size: int) -> None:
        """Render ``size`` x ``size`` pixel frames from ``camera`` (one of the family's
        ``CAMERAS``) from now on; environments without cameras refuse."""
        raise BadInputError(f"env {self.spec.family} has no cameras: generate it without --camera")

    def render_frame(self) -> np.ndarray:
        """The current state seen by the enabled camera: (size, size, 3) uint8 RGB, row 0 at the top."""
        raise BadInputError(f"env {self.spec.family} has no cameras: generate it without --camera")

    def render_backend(self) -> str:
        """What draws the frames: "numpy", or MuJoCo's OpenGL backend ("osmesa", "egl", "glfw")."""
        raise BadInputError(f"env {self.spec.family} has no cameras: generate it without --camera")

    def close(self) -> None:  # an optional hook: nothing to release by default
        """Release simulator resources."""


class EnvFamily(ABC):
    """A simulator: its task names, named task sets and how to build a task."""

    name: str
    spec: EnvSpec
    """Spaces, control rate and horizon shared by all its tasks."""
    CAMERAS: tuple[str, ...] = ()
    """Camera names its tasks can render (``TaskEnv.enable_camera``); the first is the default."""

    @abstractmethod
    def task_names(self, selection: str) -> list[str]:
        """Tasks named by ``selection``: a set name (e.g. ``mt10``) or a comma list."""

    @abstractmethod
    def make(self, task: str) -> TaskEnv:
        """A ready environment for one task."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Versions of the simulator packages, recorded with every dataset."""


class EnvConformanceError(AssertionError):
    """An environment broke the interface contract (a bug in the simulator wrapper).
    Raised explicitly, never by ``assert``, so ``python -O`` still checks."""


def _require(condition, message: str) -> None:
    if not condition:
        raise EnvConformanceError(message)


def check_env(env: TaskEnv, config_seeds=(0, 1), steps: int = 20) -> None:
    """Conformance checks any environment must pass (raises EnvConformanceError):
    observation shape and finiteness, reset and step determinism given the seed,
    distinct seeds giving distinct configurations, expert actions inside bounds."""
    first = {}
    for seed in config_seeds:
        observations = [_trace(env, seed, steps) for _ in range(2)]
        _require(np.array_equal(observations[0], observations[1]), f"config_seed {seed} is not deterministic")
        first[seed] = observations[0][0]
    values = list(first.values())
    _require(any(not np.array_equal(values[0], v) for v in values[1:]), "different config seeds give the same start")


def _trace(env: TaskEnv, config_seed: int, steps: int) -> np.ndarray:
    """Observations of ``steps`` expert steps from ``config_seed``, checking each step."""
    spec = env.spec
    obs = env.reset(config_seed)
    trace = [obs]
    for _ in range(steps):
        action = env.expert_action(obs)
        _require(action.shape == (spec.action_dim,), f"expert action shape {action.shape}, not ({spec.action_dim},)")
        inside = np.all(action >= spec.action_low - 1e-6) and np.all(action <= spec.action_high + 1e-6)
        _require(inside, f"expert action {action} outside [{spec.action_low}, {spec.action_high}]")
        obs, reward, _terminated, _truncated, info = env.step(action)
        _require(obs.shape == (spec.state_dim,), f"observation shape {obs.shape}, not ({spec.state_dim},)")
        _require(np.all(np.isfinite(obs)) and np.isfinite(reward), f"non-finite observation or reward {reward}")
        _require("success" in info, "step info has no 'success' key")
        trace.append(obs)
    return np.stack(trace)
