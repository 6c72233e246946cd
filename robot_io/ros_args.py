"""The ROS 2 command line of our nodes: `--ros-args --params-file F -p name:=value ...`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


def ros_value(value: object) -> str:
    """A value as rcl reads `-p name:=value` back (as YAML): JSON keeps strings, bools, numbers and lists typed."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def ros_arguments(params_file: Path | None, overrides: Mapping[str, object]) -> list[str]:
    """`--ros-args [--params-file F] [-p name:=value ...]`; later sources win, as in rcl."""
    args = ["--ros-args"]
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for name, value in overrides.items():
        args += ["-p", f"{name}:={ros_value(value)}"]
    return args
