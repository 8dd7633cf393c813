"""Camera frames: the numpy pointmass renderer, argument checks, and choosing MuJoCo's GL backend."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from roboscale.data.envs import get_family, render
from roboscale.data.envs.base import EnvSpec, TaskEnv
from roboscale.data.envs.pointmass import AGENT_RGB, BACKGROUND_RGB, BLOCK_RGB, GOAL_RGB, TopDownRenderer
from roboscale.data.envs.render import check_renderer, select_mujoco_gl
from roboscale.errors import BadInputError

SRC = Path(__file__).resolve().parents[2] / "src"


def pixel_of(x: float, y: float, size: int) -> tuple[int, int]:
    """(row, column) of the pixel holding arena point (x, y); row 0 is y = +1."""
    return int((1.0 - y) / 2.0 * size), int((x + 1.0) / 2.0 * size)


def state(agent=(0.0, 0.0), block=(0.5, -0.5), goal=(-0.5, 0.5)) -> np.ndarray:
    return np.array([*agent, 0.0, 0.0, *block, *goal], dtype=np.float32)


@pytest.mark.parametrize("size", [32, 64])
def test_pointmass_frame_shape_colours_and_places(size):
    frame = TopDownRenderer(size).draw(state(agent=(0.5, 0.5), block=(-0.5, -0.5), goal=(0.5, -0.5)))
    assert frame.shape == (size, size, 3) and frame.dtype == np.uint8
    # Each object's centre pixel is fully covered, so it has exactly the object's colour.
    assert tuple(frame[pixel_of(0.5, 0.5, size)]) == AGENT_RGB
    assert tuple(frame[pixel_of(-0.5, -0.5, size)]) == BLOCK_RGB
    assert tuple(frame[pixel_of(0.5, -0.5, size)]) == GOAL_RGB
    assert tuple(frame[0, 0]) == BACKGROUND_RGB and tuple(frame[size - 1, size // 2]) == BACKGROUND_RGB


def test_pointmass_objects_stay_visible_at_32_pixels():
    frame = TopDownRenderer(32).draw(state()).astype(int)
    for rgb, least in ((AGENT_RGB, 6), (BLOCK_RGB, 9), (GOAL_RGB, 9)):
        # Pixels at least half covered by the object (radius 1.6-1.9 px: ~8-11 px of area).
        near = np.abs(frame - np.array(rgb)).sum(axis=-1) < np.abs(np.array(BACKGROUND_RGB) - np.array(rgb)).sum() / 2
        assert near.sum() >= least


def test_pointmass_agent_move_changes_only_pixels_near_the_agent():
    env = get_family("pointmass").make("reach")
    observation = env.reset(4)
    env.enable_camera("top", 32)
    before = env.render_frame()
    for _ in range(3):
        observation, *_ = env.step(np.array([1.0, 0.0], dtype=np.float32))
    after = env.render_frame()
    assert np.array_equal(after, TopDownRenderer(32).draw(observation))
    rows, columns = np.nonzero(np.any(before != after, axis=-1))
    assert len(rows) > 4
    # Every changed pixel centre lies within the agent's radius plus one pixel of its old or new place.
    centres = np.stack([-1.0 + (columns + 0.5) / 16.0, 1.0 - (rows + 0.5) / 16.0], axis=1)
    start = env.reset(4)[0:2]
    distance = np.minimum(np.linalg.norm(centres - start, axis=1), np.linalg.norm(centres - observation[0:2], axis=1))
    assert distance.max() < 0.1 + 2.0 / 32


def test_pointmass_same_state_same_bytes_and_seed_determinism():
    frames = []
    for _ in range(2):
        env = get_family("pointmass").make("push")
        observation = env.reset(7)
        env.enable_camera("top", 64)
        episode = []
        for _ in range(5):
            episode.append(env.render_frame())
            observation, *_ = env.step(env.expert_action(observation))
        frames.append(np.stack(episode))
    assert frames[0].tobytes() == frames[1].tobytes()
    assert len({frame.tobytes() for frame in frames[0]}) == 5  # the agent moves every step


def test_windowed_drawing_equals_drawing_the_whole_image():
    renderer = TopDownRenderer(48)
    rng = np.random.default_rng(0)
    for _ in range(50):
        observation = rng.uniform(-1.1, 1.1, 8).astype(np.float32)  # also partly outside the image
        whole = renderer.background.copy()
        for centre, extent, rgb, square in (
            (observation[6:8], 0.12, GOAL_RGB, False),
            (observation[4:6], 0.1, BLOCK_RGB, True),
            (observation[0:2], 0.1, AGENT_RGB, False),
        ):
            dx, dy = np.abs(renderer.x - centre[0]), np.abs(renderer.y - centre[1])
            distance = np.maximum(dx, dy) if square else np.sqrt(dx * dx + dy * dy)
            coverage = np.clip(0.5 + (extent - distance) / renderer.pixel, 0.0, 1.0)
            whole += coverage[..., None] * (np.asarray(rgb, dtype=np.float32) - whole)
        assert np.array_equal(renderer.draw(observation), np.rint(whole).astype(np.uint8))


def test_camera_and_size_errors():
    env = get_family("pointmass").make("reach")
    with pytest.raises(BadInputError, match=r"pointmass has no camera 'corner2': choose one of top$"):
        env.enable_camera("corner2", 32)
    for size in (15, 513, 64.0, True):
        with pytest.raises(BadInputError, match="from 16 to 512 pixels"):
            env.enable_camera("top", size)
    with pytest.raises(RuntimeError, match="enable_camera"):
        env.render_frame()
    with pytest.raises(BadInputError, match="has no camera 'side'"):
        check_renderer("pointmass", "side", 32)
    with pytest.raises(BadInputError, match="unknown environment"):
        check_renderer("mujoco-sim", "top", 32)
    assert check_renderer("pointmass", "top", 32) == "numpy"
    assert get_family("pointmass").CAMERAS == ("top",)


def test_an_env_without_cameras_says_so():
    class Blind(TaskEnv):
        spec = EnvSpec("blind", "none", ("x",), ("a",), np.zeros(1), np.ones(1), 10.0, 5)

        def reset(self, config_seed):
            return np.zeros(1)

        def step(self, action):
            return np.zeros(1), 0.0, False, False, {"success": False}

        def expert_action(self, observation):
            return np.zeros(1)

    with pytest.raises(BadInputError, match="env blind has no cameras"):
        Blind().enable_camera("top", 32)
    with pytest.raises(BadInputError, match="env blind has no cameras"):
        Blind().render_frame()


def test_gl_backend_choice(monkeypatch):
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)  # as before mujoco is imported
    monkeypatch.setenv("MUJOCO_GL", " EGL ")
    assert select_mujoco_gl() == "egl"  # the user's choice stands
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(render, "_gl_library_present", lambda backend: backend in ("egl", "glfw"))
    assert select_mujoco_gl() == "egl" and os.environ["MUJOCO_GL"] == "egl"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(render, "_gl_library_present", lambda backend: True)
    assert select_mujoco_gl() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setattr(render, "_gl_library_present", lambda backend: False)
    assert select_mujoco_gl() == "osmesa"  # nothing present: the error will name libosmesa6


def run_check_renderer(env: dict[str, str], first: str = "") -> subprocess.CompletedProcess:
    """check_renderer('metaworld', 'corner2', 32) in a fresh process without a display,
    after the statement ``first``, with ``env`` in its environment (a None value unsets)."""
    code = (
        f"{first}\n"
        "import sys\n"
        "from roboscale.data.envs.render import check_renderer\n"
        "from roboscale.errors import BadInputError\n"
        "try:\n"
        "    print(check_renderer('metaworld', 'corner2', 32))\n"
        "except BadInputError as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment.update(env, PYTHONPATH=str(SRC))
    environment = {key: value for key, value in environment.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", code], check=False, env=environment, capture_output=True, text=True, timeout=120
    )


def test_a_renderer_that_cannot_start_names_backend_and_fix():
    # glfw needs a display; with none, MuJoCo cannot make a GL context.
    result = run_check_renderer({"MUJOCO_GL": "glfw"})
    assert result.returncode == 2, result.stderr
    message = result.stdout.strip()
    assert "\n" not in message
    assert message.startswith("the glfw renderer for metaworld cannot start (FatalError")
    assert "set DISPLAY" in message and "MUJOCO_GL=osmesa" in message


def test_mujoco_imported_first_still_renders_headless():
    # MuJoCo imported with MUJOCO_GL unset takes glfw, which has no display here; the
    # Meta-World env switches it to the backend render.py picks (osmesa on this machine).
    result = run_check_renderer({"MUJOCO_GL": None}, first="import mujoco")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() in ("osmesa", "egl")


def test_an_unknown_mujoco_gl_value_is_refused_before_mujoco_loads():
    result = run_check_renderer({"MUJOCO_GL": "vulkan"})
    assert result.returncode == 2, result.stderr
    assert result.stdout.strip() == (
        "MUJOCO_GL='vulkan' is not a headless backend: unset it or use one of osmesa, egl, glfw"
    )
