"""How the emulated robot differs from the nominal model: the "reality" parameters of `simreal_sim_robot`.

The field names are the emulator's ROS parameter names (launch/params/<robot>.yaml, section simreal_sim_robot),
so a reality file, the node's parameters and `simreal sim-robot --friction ...` all speak the same keys.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from sim.errors import SimrealError


class RealityError(SimrealError):
    """A reality file or value that cannot be used; the message names the key (and the file)."""


@dataclass(frozen=True)
class Reality:
    """Physical mismatch of the emulated robot; the defaults are the nominal model."""

    friction: float = 0.8  # foot sliding friction coefficient (the MJCF's value)
    added_mass_kg: float = 0.0  # added to the trunk (base body)
    kp_scale: float = 1.0  # motor gain mismatch: the PD gains actually applied
    kd_scale: float = 1.0
    latency_ms: float = 0.0  # commands take effect this long after they arrive
    imu_noise: float = 0.0  # std of gyro noise (rad/s) and of orientation noise (rad)
    drop_rate: float = 0.0  # probability that a /joint_states or /imu/data message is lost
    seed: int = 0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            object.__setattr__(self, item.name, _coerce(item.name, value, int if item.name == "seed" else float))
        self.validate()

    def validate(self, source: str = "") -> None:
        """Raise RealityError naming the first out-of-range key."""
        where = f"{source}: " if source else ""
        checks = (
            ("friction", self.friction > 0.0, "must be > 0"),
            ("kp_scale", self.kp_scale >= 0.0, "must be >= 0"),
            ("kd_scale", self.kd_scale >= 0.0, "must be >= 0"),
            ("latency_ms", self.latency_ms >= 0.0, "must be >= 0"),
            ("imu_noise", self.imu_noise >= 0.0, "must be >= 0"),
            ("drop_rate", 0.0 <= self.drop_rate < 1.0, "must be in [0, 1)"),
            ("seed", self.seed >= 0, "must be >= 0"),
        )
        for key, ok, requirement in checks:
            if not ok:
                raise RealityError(f"{where}{key} {requirement}, got {getattr(self, key)!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in fields(cls))

    @classmethod
    def from_yaml(cls, path: Path | str) -> Reality:
        """A flat YAML mapping with some of the keys of this class; absent keys keep the nominal defaults."""
        return cls(**load_reality_overrides(path))

    def to_overrides(self) -> dict[str, object]:
        """Every field as an emulator parameter override (`-p key:=value`)."""
        return asdict(self)


def load_reality_overrides(path: Path | str) -> dict[str, object]:
    """Only the keys a reality file sets, validated: for layering over a parameter file without resetting the rest."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise RealityError(f"reality file {path}: cannot read it: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RealityError(f"reality file {path}: not valid YAML: {error}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RealityError(f"reality file {path}: expected a flat mapping of {', '.join(Reality.field_names())}")
    known = Reality.field_names()
    for key in raw:
        if key not in known:
            raise RealityError(f"reality file {path}: unknown key {key!r}; known keys: {', '.join(known)}")
    overrides = {key: _coerce(f"{path}: {key}", value, int if key == "seed" else float) for key, value in raw.items()}
    try:
        Reality(**overrides)  # range checks, reported against the file
    except RealityError as error:
        raise RealityError(f"reality file {path}: {error}") from None
    return overrides


def _coerce(key: str, value: object, kind: type) -> float | int:
    """A finite number of the field's kind; bools and strings are mistakes, not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RealityError(f"{key} must be a number, got {value!r}")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise RealityError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if not math.isfinite(value):
        raise RealityError(f"{key} must be finite, got {value!r}")
    return float(value)
