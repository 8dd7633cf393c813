"""Camera frames of environments: argument checks, MuJoCo's headless GL backend, and a start-up check.

MuJoCo fixes its OpenGL backend when ``mujoco`` is first imported (``mujoco.gl_context``
reads ``MUJOCO_GL`` then), so :func:`select_mujoco_gl` runs before Meta-World (which
imports ``mujoco``) is imported. It respects a user-set ``MUJOCO_GL``; otherwise it
picks the first of osmesa (software, needs only ``libOSMesa``), egl (GPU, needs
``libEGL`` and a driver) and glfw (needs a display) whose library is present. Worker
processes inherit the choice through the environment.
"""

from __future__ import annotations

import ctypes.util
import gc
import importlib
import importlib.util
import os
import sys
import warnings
from contextlib import contextmanager

from roboscale.errors import BadInputError

MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 512
"""Square image sizes (pixels) the renderers accept."""

GL_BACKENDS = ("osmesa", "egl", "glfw")
"""MuJoCo's headless-capable OpenGL backends, in the order tried."""

GL_FIXES = {
    "osmesa": "apt-get install libosmesa6",
    "egl": "apt-get install libegl1 and a GPU driver, or use MUJOCO_GL=osmesa with apt-get install libosmesa6",
    "glfw": "run under a display (set DISPLAY) with pip install glfw, or use MUJOCO_GL=osmesa",
}
"""Backend -> what makes it start."""


def check_camera_request(family: str, cameras: tuple[str, ...], camera: str, size: int) -> None:
    """Raise BadInputError unless ``camera`` is one of ``cameras`` and ``size`` (pixels) is in range."""
    if not cameras:
        raise BadInputError(f"env {family} has no cameras: generate it without --camera")
    if camera not in cameras:
        raise BadInputError(f"{family} has no camera {camera!r}: choose one of {', '.join(cameras)}")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise BadInputError(f"image size {size!r}: use an integer from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} pixels")


def _gl_library_present(backend: str) -> bool:
    if backend == "osmesa":
        return ctypes.util.find_library("OSMesa") is not None
    if backend == "egl":
        return ctypes.util.find_library("EGL") is not None
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return has_display and importlib.util.find_spec("glfw") is not None


def mujoco_gl_in_use() -> str:
    """The backend of the GL context class an already imported ``mujoco`` will use."""
    module = sys.modules["mujoco"].gl_context.GLContext.__module__  # mujoco.osmesa, mujoco.egl, ...
    return module.rsplit(".", 1)[-1]


def _first_present_backend() -> str:
    # With no backend library at all, osmesa is chosen: its fix is the smallest install.
    return next((name for name in GL_BACKENDS if _gl_library_present(name)), GL_BACKENDS[0])


def select_mujoco_gl() -> str:
    """Set ``MUJOCO_GL`` for MuJoCo's offscreen rendering unless the user set it, and return
    the backend rendering will use. Runs before ``mujoco`` is imported; when something
    imported ``mujoco`` earlier with ``MUJOCO_GL`` unset (MuJoCo then takes glfw, which
    needs a display), it switches ``mujoco``'s context class to the chosen backend while
    that is still possible (PyOpenGL, whose platform osmesa and egl fix, not yet loaded)."""
    user_choice = os.environ.get("MUJOCO_GL", "").strip().lower()
    if "mujoco" not in sys.modules:
        if user_choice:
            return user_choice
        os.environ["MUJOCO_GL"] = _first_present_backend()
        return os.environ["MUJOCO_GL"]
    gl_context = sys.modules["mujoco"].gl_context
    if gl_context._MUJOCO_GL or "OpenGL" in sys.modules:
        return mujoco_gl_in_use()  # chosen at import, or fixed by PyOpenGL already
    wanted = user_choice or _first_present_backend()
    if wanted in ("osmesa", "egl"):
        try:
            gl_context.GLContext = importlib.import_module(f"mujoco.{wanted}").GLContext
        except ImportError:
            return mujoco_gl_in_use()  # the error at the first frame names the backend and its fix
        os.environ["MUJOCO_GL"] = wanted  # worker processes inherit the choice
    return mujoco_gl_in_use()


def _check_user_gl() -> None:
    user_choice = os.environ.get("MUJOCO_GL", "").strip().lower()
    if user_choice and user_choice not in GL_BACKENDS and "mujoco" not in sys.modules:
        raise BadInputError(
            f"MUJOCO_GL={user_choice!r} is not a headless backend: unset it or use one of {', '.join(GL_BACKENDS)}"
        )


@contextmanager
def _quiet_gl_failures():
    """Silence what a GL library says on its way to failing (GLFW's warnings, the "Exception
    ignored" of a half-made renderer's destructor): the one-line error says it all."""
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda _unraisable: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.unraisablehook = previous_hook


def check_renderer(family: str, camera: str, size: int) -> str:
    """Start a renderer once (in the calling process) and return the backend name used
    ("numpy", "osmesa", "egl", "glfw"); raise BadInputError naming the backend tried and the
    package that fixes it when none starts. Builds one task environment (Meta-World: a few
    seconds) and renders one ``size`` x ``size`` frame from ``camera``."""
    from roboscale.data.envs import get_family

    _check_user_gl()
    environment_family = get_family(family)
    check_camera_request(family, environment_family.CAMERAS, camera, size)
    env = environment_family.make(environment_family.task_names("all")[0])
    try:
        env.reset(0)
        env.enable_camera(camera, size)
        backend = env.render_backend()
        failure = ""
        with _quiet_gl_failures():  # also while the failed renderer is freed, as the except clause ends
            try:
                frame = env.render_frame()
            except BadInputError:
                raise
            except Exception as error:  # noqa: BLE001 - any GL start-up failure (ImportError, mujoco.FatalError, ...)
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                failure = f"{type(error).__name__}: {first_line}"
            gc.collect()
        if failure:
            fix = GL_FIXES.get(backend, f"set MUJOCO_GL to one of {', '.join(GL_BACKENDS)}")
            raise BadInputError(f"the {backend} renderer for {family} cannot start ({failure}): {fix}")
    finally:
        env.close()
    if frame.shape != (size, size, 3):
        raise BadInputError(f"the {backend} renderer gave a frame of shape {frame.shape}, not ({size}, {size}, 3)")
    return backend
