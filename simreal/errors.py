"""Exceptions that mean a user mistake: shown as one clear line, never as a traceback."""

from __future__ import annotations

from policies.run_dir import RunDirError
from sim.config_io import ConfigError
from sim.robot_spec import SpecError
from sim.tasks import UnknownTaskError

USER_ERRORS: tuple[type[BaseException], ...] = (
    RunDirError,
    ConfigError,
    SpecError,
    UnknownTaskError,
    FileNotFoundError,
    ValueError,
)
