"""Pick an offscreen OpenGL backend for MuJoCo: EGL if it works, else OSMesa.

MuJoCo reads MUJOCO_GL when its GL context module is imported, so this must run
before anything imports mujoco; it imports nothing heavy itself.
"""

from __future__ import annotations

import os
import subprocess
import sys


def choose_gl_backend() -> str:
    """Use MUJOCO_GL if set; otherwise the first offscreen backend that creates a context."""
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    for backend in ("egl", "osmesa"):
        os.environ["MUJOCO_GL"] = backend
        os.environ["PYOPENGL_PLATFORM"] = backend
        try:
            _probe_context()
            return backend
        except Exception:  # each backend fails in its own way when its library is absent
            continue
    raise RuntimeError("no offscreen OpenGL: install libegl1 (EGL) or libosmesa6 (OSMesa), or set MUJOCO_GL")


def _probe_context() -> None:
    probe = "import mujoco; c = mujoco.GLContext(16, 16); c.make_current(); c.free()"
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, timeout=60)
