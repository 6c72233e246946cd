"""Robot parameter overrides: what system identification and joint-offset calibration learned about one robot.

The file (YAML) moves the simulator's nominal robot towards the real one; every section but `robot` is
optional, and a per-joint value is a scalar for every joint or a mapping by joint name (joints left out of
a mapping keep their nominal value):

    robot: quadruped
    actuators: {kp_scale: 0.8, kd_scale: 1.5, delay_s: 0.0105}   # x the spec's PD gains; actuation delay, s
    joints: {damping: 0.1, armature: 0.01, frictionloss: 0.2}     # the MJCF's joint properties, SI units
    joint_offsets_rad: {FR_hip: 0.012, FL_calf: -0.02}            # encoder reading = true angle + offset
    fit: {...}                                                    # provenance, free-form, ignored by loaders

Training uses `actuators` and `joints` (see `centre_randomization` for how the randomization ranges follow);
`joint_offsets_rad` is for the deploy side (the robot's encoders), so training ignores it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

from sim.atomic_file import atomic_write_bytes
from sim.robot_spec import RobotSpec, SpecError, joint_dof_ids
from sim.tasks.config import RandomizationConfig, Range

SECTIONS = ("robot", "actuators", "joints", "joint_offsets_rad", "fit")
ACTUATOR_SCALES = ("kp_scale", "kd_scale")
ACTUATOR_KEYS = (*ACTUATOR_SCALES, "delay_s")
JOINT_PROPERTIES = ("damping", "armature", "frictionloss")
MAX_DELAY_S = 0.1
MAX_OFFSET_RAD = 0.5


class RobotParamsError(SpecError):
    """A parameter-override file that is malformed or does not fit the robot; the message names the entry."""


@dataclass(frozen=True, eq=False)
class RobotParams:
    """Validated overrides; per-joint arrays are in the spec's joint order, NaN where the file gives no value."""

    robot: str
    joint_names: tuple[str, ...]
    kp_scale: np.ndarray
    kd_scale: np.ndarray
    damping: np.ndarray
    armature: np.ndarray
    frictionloss: np.ndarray
    joint_offsets_rad: np.ndarray
    delay_s: float | None = None
    fit: dict | None = None

    @classmethod
    def empty(cls, spec: RobotSpec) -> RobotParams:
        """Overrides for `spec` that change nothing (a file with only `robot`)."""
        nothing = np.full(spec.num_joints, np.nan)
        per_joint = {key: nothing.copy() for key in (*ACTUATOR_SCALES, *JOINT_PROPERTIES, "joint_offsets_rad")}
        return cls(robot=spec.name, joint_names=spec.joint_names, **per_joint)

    def nominal_gains(self, spec: RobotSpec) -> tuple[np.ndarray, np.ndarray]:
        """(kp, kd) per joint: the spec's gains times the fitted scales."""
        return spec.kp * _or(self.kp_scale, 1.0), spec.kd * _or(self.kd_scale, 1.0)

    def offsets_rad(self) -> np.ndarray:
        """Encoder offsets per joint, 0 where the file gives none."""
        return _or(self.joint_offsets_rad, 0.0)

    def apply_to_model(self, model: mujoco.MjModel, spec: RobotSpec) -> None:
        """Write the fitted damping, armature and friction loss into the spec's joints (others keep the MJCF's)."""
        dofs = joint_dof_ids(model, spec)
        for name in JOINT_PROPERTIES:
            values = getattr(self, name)
            given = ~np.isnan(values)
            getattr(model, f"dof_{name}")[dofs[given]] = values[given]
        # armature feeds constants (dof_invweight0, ...) that mj_setConst derives
        mujoco.mj_setConst(model, mujoco.MjData(model))

    def with_dynamics(self, values: dict[str, float], fit: dict | None) -> RobotParams:
        """The same overrides with these actuator and joint values (each for every joint) and provenance."""
        n = len(self.joint_names)
        per_joint = {key: np.full(n, float(values[key])) for key in (*ACTUATOR_SCALES, *JOINT_PROPERTIES)}
        return dataclasses.replace(self, **per_joint, delay_s=float(values["delay_s"]), fit=fit)

    def with_offsets(self, offsets_rad: np.ndarray, fit: dict | None = None) -> RobotParams:
        """The same overrides with new joint offsets (every joint) and provenance."""
        return dataclasses.replace(self, joint_offsets_rad=np.asarray(offsets_rad, dtype=float).copy(), fit=fit)

    def to_yaml_dict(self) -> dict:
        """The file's content: only the sections and joints given; a scalar when every joint has one value."""
        data: dict[str, Any] = {"robot": self.robot}
        actuators = {key: self._per_joint_yaml(getattr(self, key)) for key in ACTUATOR_SCALES}
        actuators = {key: value for key, value in actuators.items() if value is not None}
        if self.delay_s is not None:
            actuators["delay_s"] = float(self.delay_s)
        joints = {key: self._per_joint_yaml(getattr(self, key)) for key in JOINT_PROPERTIES}
        joints = {key: value for key, value in joints.items() if value is not None}
        offsets = self._per_joint_yaml(self.joint_offsets_rad, mapping=True)
        for section, value in (("actuators", actuators), ("joints", joints), ("joint_offsets_rad", offsets)):
            if value:
                data[section] = value
        if self.fit is not None:
            data["fit"] = self.fit
        return data

    def _per_joint_yaml(self, values: np.ndarray, mapping: bool = False) -> float | dict | None:
        given = ~np.isnan(values)
        if not given.any():
            return None
        if not mapping and given.all() and np.ptp(values) == 0.0:
            return float(values[0])
        return {name: float(v) for name, v, ok in zip(self.joint_names, values, given, strict=True) if ok}


def load_robot_params(path: str | Path, spec: RobotSpec) -> RobotParams:
    """Read and validate a parameter-override YAML against `spec`; RobotParamsError names the file and entry."""
    path = Path(path)
    if not path.is_file():
        raise RobotParamsError(f"robot parameter file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise RobotParamsError(f"{path}: not valid YAML: {error}") from None
    except OSError as error:
        raise RobotParamsError(f"{path}: cannot read it: {error.strerror}") from None
    return robot_params_from_dict(data, spec, str(path))


def existing_or_empty(path: str | Path, spec: RobotSpec) -> RobotParams:
    """The parameter file at `path` (to merge a new result into, keeping its other sections), or an empty one."""
    return load_robot_params(path, spec) if Path(path).is_file() else RobotParams.empty(spec)


def write_robot_params(path: str | Path, params: RobotParams) -> Path:
    """Write atomically (temp file, then rename): a crash never leaves a half-written file under its name."""
    path = Path(path)
    # block style throughout: the layout this module's docstring shows
    text = yaml.safe_dump(params.to_yaml_dict(), sort_keys=False, default_flow_style=False, width=120)
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as error:
        raise RobotParamsError(f"cannot write robot parameter file {path}: {error.strerror or error}") from None
    return path


def robot_params_from_dict(data: Any, spec: RobotSpec, source: str) -> RobotParams:
    """Validate the content of a parameter-override file; `source` (a path) starts every message."""
    if not isinstance(data, dict):
        raise RobotParamsError(f"{source}: expected a mapping with 'robot' and optional {', '.join(SECTIONS[1:])}")
    _refuse_unknown(source, "top level", data, SECTIONS)
    if "robot" not in data:
        raise RobotParamsError(f"{source}: missing 'robot' (the robot these parameters are for)")
    if data["robot"] != spec.name:
        raise RobotParamsError(f"{source}: the parameters are for robot '{data['robot']}', not '{spec.name}'")
    actuators = _section(source, data, "actuators", ACTUATOR_KEYS)
    joints = _section(source, data, "joints", JOINT_PROPERTIES)
    fit = data.get("fit")
    if fit is not None and not isinstance(fit, dict):
        raise RobotParamsError(f"{source}: fit must be a mapping (free-form provenance), got {fit!r}")
    if fit is not None:
        # plain JSON types only (YAML dates become strings), so run configs and checkpoints can hold it
        fit = json.loads(json.dumps(fit, default=str))
    delay_s = actuators.get("delay_s")
    if delay_s is not None:
        delay_s = _number(
            source, "actuators.delay_s", delay_s, lambda v: 0.0 <= v < MAX_DELAY_S, f"in [0, {MAX_DELAY_S})"
        )
    scale = (lambda v: v > 0.0, "> 0")
    non_negative = (lambda v: v >= 0.0, ">= 0")
    offset = (lambda v: abs(v) <= MAX_OFFSET_RAD, f"within ±{MAX_OFFSET_RAD} rad")
    return RobotParams(
        robot=spec.name,
        joint_names=spec.joint_names,
        **{key: _per_joint(source, f"actuators.{key}", actuators.get(key), spec, *scale) for key in ACTUATOR_SCALES},
        **{key: _per_joint(source, f"joints.{key}", joints.get(key), spec, *non_negative) for key in JOINT_PROPERTIES},
        joint_offsets_rad=_per_joint(source, "joint_offsets_rad", data.get("joint_offsets_rad"), spec, *offset),
        delay_s=delay_s,
        fit=fit,
    )


def centre_randomization(cfg: RandomizationConfig, params: RobotParams | None) -> RandomizationConfig:
    """The randomization ranges around the fitted robot instead of the nominal one.

    Rule: every range keeps its width and moves its centre onto the fitted value. The scale terms
    (kp_scale, kd_scale, joint_damping/armature/friction_loss_scale) multiply the fitted nominal
    (kp = spec kp x fitted kp_scale x U(low, high)), so U(0.9, 1.1) around a fitted 0.8 is
    U(0.72, 0.88) of the spec's gain and their numbers stay as they are. The action latency is
    absolute: U(low, high) becomes delay_s + U(low - mid, high - mid), floored at 0 s (a delay
    cannot be negative). A disabled term stays disabled; the env then uses the fitted value itself.
    """
    if params is None or params.delay_s is None or not cfg.action_latency_s.enabled:
        return cfg
    term = cfg.action_latency_s
    half = 0.5 * (term.high - term.low)
    centred = Range(True, max(0.0, params.delay_s - half), params.delay_s + half)
    return dataclasses.replace(cfg, action_latency_s=centred)


def _refuse_unknown(source: str, where: str, data: dict, known: tuple[str, ...]) -> None:
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        raise RobotParamsError(f"{source}: {where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")


def _section(source: str, data: dict, name: str, known: tuple[str, ...]) -> dict:
    section = data.get(name)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise RobotParamsError(f"{source}: {name} must be a mapping with {', '.join(known)}, got {section!r}")
    _refuse_unknown(source, name, section, known)
    return section


def _number(source: str, field: str, value: Any, check, expected: str) -> float:
    """A finite number that passes `check`; the message names the field and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RobotParamsError(f"{source}: {field} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or not check(value):
        raise RobotParamsError(f"{source}: {field} must be finite and {expected}, got {value!r}")
    return value


def _per_joint(source: str, field: str, value: Any, spec: RobotSpec, check, expected: str) -> np.ndarray:
    """A scalar for every joint or a mapping by joint name, as an array in spec order (NaN: not given)."""
    values = np.full(spec.num_joints, np.nan)
    if value is None:
        return values
    if not isinstance(value, dict):
        values[:] = _number(source, field, value, check, expected)
        return values
    unknown = [str(name) for name in value if name not in spec.joint_names]
    if unknown:
        raise RobotParamsError(
            f"{source}: {field}: robot '{spec.name}' has no joint(s) {', '.join(unknown)}; "
            f"its joints: {', '.join(spec.joint_names)}"
        )
    for name, number in value.items():
        values[spec.joint_names.index(name)] = _number(source, f"{field}.{name}", number, check, expected)
    return values


def _or(values: np.ndarray, neutral: float) -> np.ndarray:
    return np.where(np.isnan(values), neutral, values)
