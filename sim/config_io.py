"""Dataclass configs to and from plain dicts / YAML, with overrides that name unknown keys."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import yaml

from sim.errors import SimrealError


class ConfigError(SimrealError):
    """A config file or override that does not fit the dataclass; the message names the key."""


def to_dict(config: Any) -> dict:
    """Plain nested dicts and lists (tuples become lists), safe for YAML, JSON and torch.save."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def apply_overrides(config: Any, overrides: dict, where: str = "") -> Any:
    """Set fields of a (nested) dataclass from a nested dict, in place; returns config."""
    hints = typing.get_type_hints(type(config))
    for key, value in overrides.items():
        path = f"{where}.{key}" if where else key
        if not dataclasses.is_dataclass(config) or key not in hints:
            known = ", ".join(f.name for f in dataclasses.fields(config))
            raise ConfigError(f"unknown config key '{path}'; known keys here: {known}")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            apply_overrides(current, value, path)
        else:
            setattr(config, key, _coerce(hints[key], value, path))
    return config


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build a dataclass from a dict written by to_dict (missing keys keep their defaults)."""
    hints = typing.get_type_hints(cls)
    required = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    absent = sorted(required - set(data))
    if absent:
        raise ConfigError(f"config key '{where or cls.__name__}' needs {', '.join(absent)}")
    prefix = f"{where}." if where else ""
    instance = cls(**{name: _coerce(hints[name], data[name], prefix + name) for name in required})
    return apply_overrides(instance, {k: v for k, v in data.items() if k not in required}, where)


def load_yaml_overrides(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_set_option(text: str) -> dict:
    """'rewards.torques=-1e-4' -> {'rewards': {'torques': -0.0001}} (value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got '{text}'")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    result: dict = {}
    node = result
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return result


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Convert YAML values to the field's type (lists to tuples, dicts to dataclasses)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            names = ", ".join(f.name for f in dataclasses.fields(hint))
            raise ConfigError(f"config key '{path}' is a group ({names}); give a mapping, got {value!r}")
        return from_dict(hint, value, path)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{path}' expects a list, got {value!r}")
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ConfigError(f"config key '{path}' expects a list of {len(items)} values, got {value!r}")
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, (item, v) in enumerate(zip(items, value, strict=True)))
    if hint is float:
        return _to_float(value, path)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"config key '{path}' expects an integer, got {value!r}")
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"config key '{path}' expects {hint.__name__}, got {value!r}")
    return value


def _to_float(value: Any, path: str) -> float:
    # YAML 1.1 reads '1e-4' (no dot) as a string: accept any number spelling
    if isinstance(value, bool):
        raise ConfigError(f"config key '{path}' expects a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{path}' expects a number, got {value!r}") from None
