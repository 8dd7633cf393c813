"""Meta-World camera frames through a plain mujoco.Renderer (headless, MUJOCO_GL chosen by render.py)."""

import mujoco
import numpy as np
import pytest

from roboscale.data.envs import get_family
from roboscale.data.envs.metaworld import CAMERAS, _mounted_upside_down
from roboscale.data.envs.render import GL_BACKENDS, check_renderer
from roboscale.errors import BadInputError


@pytest.fixture(scope="module")
def env():
    environment = get_family("metaworld").make("push-v3")
    yield environment
    environment.close()


def test_frame_shape_content_and_determinism(env):
    env.reset(0)
    env.enable_camera("corner2", 32)
    frame = env.render_frame()
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # a scene, not a blank image
    env.reset(0)
    assert env.render_frame().tobytes() == frame.tobytes()
    env.reset(1)  # another object and goal placement
    changed = np.any(env.render_frame() != frame, axis=-1).sum()
    assert 0 < changed < 32 * 32 // 4  # the objects moved, the arm and table did not


def test_rendering_leaves_the_trajectory_unchanged(env):
    def trajectory(render: bool) -> np.ndarray:
        observation = env.reset(2)
        observations = [observation]
        for _ in range(4):
            if render:
                env.render_frame()
            observation, *_ = env.step(env.expert_action(observation))
            observations.append(observation)
        return np.stack(observations)

    env.enable_camera("corner", 16)
    assert np.array_equal(trajectory(render=False), trajectory(render=True))


def test_corner_cameras_are_turned_upright(env):
    model = env.env.model
    upside_down = {camera for camera in CAMERAS if _mounted_upside_down(model, camera)}
    assert upside_down == {"corner", "corner2", "corner3", "corner4"}
    env.reset(0)
    env.enable_camera("corner3", 24)
    raw = mujoco.Renderer(model, 24, 24)
    raw.update_scene(env.env.data, camera="corner3")
    raw.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    raw.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    assert np.array_equal(env.render_frame(), raw.render()[::-1, ::-1])
    raw.close()


def test_cameras_exist_and_errors(env):
    names = {mujoco.mj_id2name(env.env.model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(env.env.model.ncam)}
    assert set(CAMERAS) == names and CAMERAS[0] == "corner2"
    with pytest.raises(BadInputError, match=r"metaworld has no camera 'top': choose one of corner2, corner, "):
        env.enable_camera("top", 32)
    with pytest.raises(BadInputError, match="from 16 to 512"):
        env.enable_camera("corner2", 8)
    assert env.render_backend() in GL_BACKENDS


def test_check_renderer_starts_one_renderer():
    assert check_renderer("metaworld", "topview", 16) in GL_BACKENDS
