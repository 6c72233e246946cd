"""Atomic YAML writes (sim.atomic_file underneath) and YAML reading with errors that name the file, shared by the
calibration steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from calibration.errors import CalibrationError
from sim.atomic_file import atomic_write_bytes


def atomic_write_yaml(path: Path, mapping: dict[str, Any]) -> Path:
    """Write a mapping as block-style YAML in insertion order (the order a person reads it in)."""
    text = yaml.safe_dump(mapping, sort_keys=False, default_flow_style=None, width=120)
    return atomic_write_bytes(path, text.encode())


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; `what` names the file's role in the error messages."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{what} {path} does not exist: check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{what} {path} is not valid YAML ({exc}): fix or regenerate it") from exc
    if not isinstance(data, dict):
        raise CalibrationError(f"{what} {path} must hold a YAML mapping of fields: fix or regenerate it")
    return data
