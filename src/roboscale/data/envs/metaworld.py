"""Meta-World v3 (Sawyer arm, 50 manipulation tasks, MuJoCo) with its scripted experts.

Seeding: Meta-World ignores ``reset(seed=...)``; object and goal positions come
from a "rand vec" drawn at reset, by default from the global NumPy state. Here the
environment draws it from its own generator instead (``seeded_rand_vec``), seeded
with the episode's ``config_seed`` just before the reset, so one seed gives one
configuration, byte for byte, in any process, and the global NumPy state is never
touched. The goal is made observable (the experts need it), as in Meta-World's
"goal observable" setting.

Cameras (``CAMERAS``) are the model's own; frames come from a plain
``mujoco.Renderer`` on the environment's model and data (several times faster than
Meta-World's ``render()``), one per environment, created at the first frame. The
corner cameras are mounted upside down in Meta-World's model (their image-up axis
points down in the world), so their frames are turned 180 degrees to show the table
upright. Shadows and reflections are off: in software rendering (osmesa) they cost
most of the frame time (shadows alone ~5x at 64 px, see ``bench/render_speed.py``)
and add little at the image sizes a scaling study trains on.
"""

from __future__ import annotations

import pickle
import warnings
from importlib.metadata import version

import numpy as np

from roboscale.data.envs.render import check_camera_request, select_mujoco_gl

select_mujoco_gl()  # MuJoCo fixes its GL backend at import, and Meta-World imports it

import mujoco
from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3, MT50_V3
from metaworld.policies import ENV_POLICY_MAP
from metaworld.types import Task

from roboscale.data.envs.base import EnvFamily, EnvSpec, TaskEnv
from roboscale.errors import BadInputError

_OBJECT = ("x", "y", "z", "qw", "qx", "qy", "qz")
_FRAME = ("hand_x", "hand_y", "hand_z", "gripper", *(f"obj{i}_{c}" for i in (1, 2) for c in _OBJECT))
STATE_NAMES = (*_FRAME, *(f"prev_{name}" for name in _FRAME), "goal_x", "goal_y", "goal_z")
SPEC = EnvSpec(
    family="metaworld",
    robot_type="sawyer",
    state_names=STATE_NAMES,
    action_names=("dx", "dy", "dz", "gripper"),
    action_low=np.full(4, -1.0, dtype=np.float32),
    action_high=np.full(4, 1.0, dtype=np.float32),
    fps=80,  # frame_skip 5 x MuJoCo timestep 2.5 ms
    max_steps=500,  # Meta-World's max_path_length
)
CAMERAS = ("corner2", "corner", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
"""The cameras of Meta-World 3.1.1's Sawyer model; corner2 (the whole table, diagonally) is the default."""
RENDER_SHADOWS = False
RENDER_REFLECTIONS = False
"""Scene effects in camera frames (both off: the software renderer's dominant costs)."""
TASK_SETS = {"mt10": list(MT10_V3), "mt50": list(MT50_V3), "all": list(MT50_V3)}


class MetaWorldEnv(TaskEnv):
    """One Meta-World v3 task, its expert policy, configurations chosen by seed."""

    spec = SPEC

    def __init__(self, task: str) -> None:
        if task not in ALL_V3_ENVIRONMENTS:
            raise BadInputError(f"Meta-World has no task {task!r}: use a v3 name such as push-v3, or mt10 / mt50")
        self.task = task
        self.env = ALL_V3_ENVIRONMENTS[task]()
        self.policy = ENV_POLICY_MAP[task]()
        self._make_goal_observable()
        self._camera = ""
        self._size = 0
        self._renderer: mujoco.Renderer | None = None
        self._upside_down = False

    def _make_goal_observable(self) -> None:
        """Put the environment in Meta-World's goal-observable mode via its own
        ``set_task``, with a rand vec the environment drew itself (a hand-made one
        can violate a task's placement constraints and hang its reset)."""
        self._draw_configuration(0)
        data = {"env_cls": type(self.env), "rand_vec": self.env._last_rand_vec.copy(), "partially_observable": False}
        self.env.set_task(Task(env_name=self.task, data=pickle.dumps(data)))

    def _draw_configuration(self, config_seed: int) -> np.ndarray:
        env = self.env
        env.seed(int(config_seed))  # reseeds env.np_random, which draws the rand vec below
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        observation, _ = env.reset()
        env._freeze_rand_vec = True
        return observation

    def reset(self, config_seed: int) -> np.ndarray:
        return np.asarray(self._draw_configuration(config_seed), dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(np.asarray(action, dtype=np.float32))
        info = dict(info)
        info["success"] = bool(info.get("success", 0.0))
        return np.asarray(observation, dtype=np.float32), float(reward), bool(terminated), bool(truncated), info

    def expert_action(self, observation: np.ndarray) -> np.ndarray:
        # The experts' gains give actions beyond [-1, 1] and say so at every step;
        # clipping them is what the environment does anyway.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            action = self.policy.get_action(np.asarray(observation, dtype=np.float64))
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def enable_camera(self, camera: str, size: int) -> None:
        check_camera_request("metaworld", CAMERAS, camera, size)
        if self._renderer is not None and size != self._size:
            self._renderer.close()
            self._renderer = None
        self._camera, self._size = camera, size
        self._upside_down = _mounted_upside_down(self.env.model, camera)

    def render_frame(self) -> np.ndarray:
        if not self._camera:
            raise RuntimeError("metaworld: call enable_camera(camera, size) before render_frame()")
        if self._renderer is None:
            select_mujoco_gl()  # in case mujoco was imported before this module chose a backend
            self._renderer = mujoco.Renderer(self.env.model, self._size, self._size)
        self._renderer.update_scene(self.env.data, camera=self._camera)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = RENDER_SHADOWS
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = RENDER_REFLECTIONS
        frame = self._renderer.render()
        return np.ascontiguousarray(frame[::-1, ::-1]) if self._upside_down else frame

    def render_backend(self) -> str:
        return select_mujoco_gl()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.env.close()


def _mounted_upside_down(model: mujoco.MjModel, camera: str) -> bool:
    """Whether a camera fixed in the world has its image-up axis pointing down (its
    frames then need a 180-degree turn); cameras on moving bodies are left as they are."""
    camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if camera_id < 0 or model.cam_bodyid[camera_id] != 0:
        return False
    orientation = np.zeros(9)
    mujoco.mju_quat2Mat(orientation, model.cam_quat[camera_id])
    return bool(orientation.reshape(3, 3)[2, 1] < 0)  # world z of the camera's y (image up) axis


class MetaWorldFamily(EnvFamily):
    """Meta-World v3: single tasks, comma lists, or the sets mt10 and mt50 (= all)."""

    name = "metaworld"
    spec = SPEC
    CAMERAS = CAMERAS

    def task_names(self, selection: str) -> list[str]:
        key = selection.strip().lower()
        if key in TASK_SETS:
            return list(TASK_SETS[key])
        names = [name.strip() for name in selection.split(",") if name.strip()]
        names = [name if name.endswith("-v3") else f"{name}-v3" for name in names]
        unknown = [name for name in names if name not in ALL_V3_ENVIRONMENTS]
        if unknown or not names:
            raise BadInputError(
                f"unknown Meta-World task(s) {', '.join(unknown) or selection!r}: use mt10, mt50, "
                "or v3 names such as reach-v3,push-v3"
            )
        return names

    def make(self, task: str) -> TaskEnv:
        return MetaWorldEnv(task)

    def versions(self) -> dict[str, str]:
        import mujoco

        return {"metaworld": version("metaworld"), "mujoco": mujoco.__version__, "numpy": np.__version__}
