"""A 2-D point mass that reaches a goal or pushes a block to it: pure numpy, no MuJoCo.

Small and fast enough for tests and for the tiny default dataset, yet a real
control problem: damped double-integrator dynamics, contact pushing, a scripted
expert (PD control to the goal, or to a spot behind the block and then through
it). State: agent position and velocity, block position, goal position (8 dims,
arena [-1, 1]^2); action: a force in [-1, 1]^2.

Camera ``top`` (:class:`TopDownRenderer`): the arena seen from above, drawn with
numpy: a green goal disc, a blue block square and a red agent disc on a light
background, edges anti-aliased over one pixel, +y up.
"""

from __future__ import annotations

import numpy as np

from roboscale.data.envs.base import EnvFamily, EnvSpec, TaskEnv
from roboscale.data.envs.render import check_camera_request
from roboscale.errors import BadInputError

TASKS = ("reach", "push")
SPEC = EnvSpec(
    family="pointmass",
    robot_type="pointmass",
    state_names=("agent_x", "agent_y", "agent_vx", "agent_vy", "block_x", "block_y", "goal_x", "goal_y"),
    action_names=("force_x", "force_y"),
    action_low=np.array([-1.0, -1.0], dtype=np.float32),
    action_high=np.array([1.0, 1.0], dtype=np.float32),
    fps=10.0,
    max_steps=150,
)
DT = 1.0 / SPEC.fps
DAMPING = 0.8  # velocity kept per step
GAIN = 3.0  # velocity gained per unit force per second
CONTACT = 0.08  # agent-block distance at which the agent pushes the block
REACH_TOLERANCE = 0.05
PUSH_TOLERANCE = 0.06

CAMERAS = ("top",)
BACKGROUND_RGB = (236.0, 236.0, 228.0)
GOAL_RGB = (40.0, 170.0, 70.0)
BLOCK_RGB = (40.0, 90.0, 220.0)
AGENT_RGB = (220.0, 50.0, 40.0)
GOAL_RADIUS = 0.12
BLOCK_HALF_SIDE = 0.1
AGENT_RADIUS = 0.1
"""Drawn sizes in arena units (the arena is 2 wide): at 32 px a pixel is 0.0625, so the
agent's radius is 1.6 px. Larger than the contact distance, so at contact the agent
(drawn last) covers part of the block."""


class TopDownRenderer:
    """Draws pointmass states as (size, size, 3) uint8 images of the arena [-1, 1]^2 seen
    from above; pixel-centre coordinates are computed once, each frame is a few
    vectorised array operations (deterministic: the same state gives the same bytes)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pixel = 2.0 / size
        """Arena units per pixel."""
        centres = (-1.0 + (np.arange(size) + 0.5) * self.pixel).astype(np.float32)
        self.x = centres[None, :]
        self.y = centres[::-1, None].copy()  # row 0 is the top of the arena (y = +1)
        self.background = np.empty((size, size, 3), dtype=np.float32)
        self.background[:] = BACKGROUND_RGB

    def draw(self, observation: np.ndarray) -> np.ndarray:
        """The image of a state vector (agent x, y, vx, vy, block x, y, goal x, y)."""
        state = np.asarray(observation, dtype=np.float32)
        image = self.background.copy()
        self._paint(image, state[6:8], GOAL_RADIUS, GOAL_RGB, square=False)
        self._paint(image, state[4:6], BLOCK_HALF_SIDE, BLOCK_RGB, square=True)
        self._paint(image, state[0:2], AGENT_RADIUS, AGENT_RGB, square=False)
        return np.rint(image).astype(np.uint8)

    def _paint(self, image: np.ndarray, centre: np.ndarray, extent: float, rgb: tuple, square: bool) -> None:
        """Blend a disc of radius ``extent`` (or an axis-aligned square of half side
        ``extent``, arena units) into ``image``, weighting ``rgb`` by the fraction of each
        pixel it covers (a ramp from 1 to 0 over one pixel at the edge). Only the pixels
        the shape can touch are computed; the others would get coverage 0."""
        rows, columns = self._window(float(centre[0]), float(centre[1]), extent)
        dx = np.abs(self.x[:, columns] - centre[0])
        dy = np.abs(self.y[rows, :] - centre[1])
        distance = np.maximum(dx, dy) if square else np.sqrt(dx * dx + dy * dy)
        coverage = np.clip(0.5 + (extent - distance) / self.pixel, 0.0, 1.0)
        patch = image[rows, columns]
        patch += coverage[..., None] * (np.asarray(rgb, dtype=np.float32) - patch)

    def _window(self, x: float, y: float, extent: float) -> tuple[slice, slice]:
        """Row and column slices of the pixels within ``extent`` plus one pixel of (x, y)."""
        reach = extent + self.pixel
        first_column = int(np.floor((x - reach + 1.0) / self.pixel))
        last_column = int(np.ceil((x + reach + 1.0) / self.pixel))
        first_row = int(np.floor((1.0 - y - reach) / self.pixel))
        last_row = int(np.ceil((1.0 - y + reach) / self.pixel))
        return (
            slice(min(max(first_row, 0), self.size), min(max(last_row, 0), self.size)),
            slice(min(max(first_column, 0), self.size), min(max(last_column, 0), self.size)),
        )


class PointMassEnv(TaskEnv):
    """``reach``: bring the agent to the goal; ``push``: bring the block to the goal."""

    spec = SPEC

    def __init__(self, task: str) -> None:
        if task not in TASKS:
            raise BadInputError(f"pointmass has no task {task!r}: choose from {', '.join(TASKS)}")
        self.task = task
        self.agent = np.zeros(2)
        self.velocity = np.zeros(2)
        self.block = np.zeros(2)
        self.goal = np.zeros(2)
        self._renderer: TopDownRenderer | None = None

    def reset(self, config_seed: int) -> np.ndarray:
        rng = np.random.default_rng(config_seed)
        self.agent = rng.uniform(-0.8, 0.8, 2)
        self.velocity = np.zeros(2)
        self.goal = rng.uniform(-0.7, 0.7, 2)
        # The block starts away from both the agent and the goal.
        while True:
            self.block = rng.uniform(-0.5, 0.5, 2)
            if np.linalg.norm(self.block - self.agent) > 0.25 and np.linalg.norm(self.block - self.goal) > 0.25:
                break
        return self._observation()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        force = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.velocity = DAMPING * self.velocity + GAIN * DT * force
        self.agent = np.clip(self.agent + DT * self.velocity, -1.0, 1.0)
        self._push()
        distance = np.linalg.norm((self.agent if self.task == "reach" else self.block) - self.goal)
        success = distance < (REACH_TOLERANCE if self.task == "reach" else PUSH_TOLERANCE)
        reward = -distance if self.task == "reach" else -distance - 0.1 * np.linalg.norm(self.agent - self.block)
        return self._observation(), float(reward), False, False, {"success": bool(success)}

    def _push(self) -> None:
        offset = self.block - self.agent
        gap = np.linalg.norm(offset)
        if gap >= CONTACT:
            return
        normal = offset / gap if gap > 1e-9 else np.array([1.0, 0.0])
        # The block is pushed out to contact distance along the contact normal.
        self.block = np.clip(self.agent + CONTACT * normal, -1.0, 1.0)

    def expert_action(self, observation: np.ndarray) -> np.ndarray:
        agent, velocity, block, goal = observation[0:2], observation[2:4], observation[4:6], observation[6:8]
        if self.task == "reach":
            target = goal
        else:
            to_goal = goal - block
            direction = to_goal / max(np.linalg.norm(to_goal), 1e-9)
            offset = block - agent
            behind = np.dot(direction, offset / max(np.linalg.norm(offset), 1e-9)) > 0.5
            if behind:
                # A point just inside the contact circle, behind the block: chasing it
                # keeps pushing the block while the lateral error closes.
                target = block - direction * CONTACT * 0.5
            else:
                target = self._around_block(agent, block, block - direction * (CONTACT + 0.1))
        force = 4.0 * (target - agent) - 1.2 * velocity
        return np.clip(force, -1.0, 1.0).astype(np.float32)

    @staticmethod
    def _around_block(agent: np.ndarray, block: np.ndarray, behind: np.ndarray) -> np.ndarray:
        """Head for the spot behind the block, side-stepping the block if it is in the way."""
        path = behind - agent
        length = np.linalg.norm(path)
        if length < 1e-9:
            return behind
        along = np.clip(np.dot(block - agent, path) / length, 0.0, length)
        closest = agent + path / length * along
        if np.linalg.norm(block - closest) < CONTACT + 0.04 and along < length:
            side = np.array([-path[1], path[0]]) / length
            if np.dot(side, closest - block) < 0:
                side = -side
            return block + side * (CONTACT + 0.08)
        return behind

    def enable_camera(self, camera: str, size: int) -> None:
        check_camera_request("pointmass", CAMERAS, camera, size)
        self._renderer = TopDownRenderer(size)

    def render_frame(self) -> np.ndarray:
        if self._renderer is None:
            raise RuntimeError("pointmass: call enable_camera(camera, size) before render_frame()")
        return self._renderer.draw(self._observation())

    def render_backend(self) -> str:
        return "numpy"

    def _observation(self) -> np.ndarray:
        return np.concatenate([self.agent, self.velocity, self.block, self.goal]).astype(np.float32)


class PointMassFamily(EnvFamily):
    """Tasks ``reach`` and ``push``; the set ``all`` names both."""

    name = "pointmass"
    spec = SPEC
    CAMERAS = CAMERAS

    def task_names(self, selection: str) -> list[str]:
        names = list(TASKS) if selection.strip().lower() in ("all", "") else [t.strip() for t in selection.split(",")]
        unknown = [t for t in names if t not in TASKS]
        if unknown:
            raise BadInputError(f"pointmass has no task(s) {', '.join(unknown)}: choose from {', '.join(TASKS)} or all")
        return names

    def make(self, task: str) -> TaskEnv:
        return PointMassEnv(task)

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}
