"""Robot spec: the YAML beside a robot's MJCF (DESIGN.md §2), validated against it.

Everything a task needs to know about a robot (joint order, default pose, gains,
limits, the bodies and sites it reads) comes from here, addressed by name, so no
other code hard-codes joint counts or names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

from sim.errors import SimrealError

ROBOTS_DIR = Path(__file__).parent / "robots"
REQUIRED_FIELDS = (
    "name",
    "mjcf",
    "joint_names",
    "default_joint_pos",
    "actuators",
    "action_scale",
    "physics_dt",
    "decimation",
)
ACTUATOR_FIELDS = ("kp", "kd", "effort_limit", "velocity_limit")
# a floating-base (legged) robot names all three; a fixed-base arm none of them
FLOATING_BASE_FIELDS = ("base_body", "imu_site", "feet")


class SpecError(SimrealError):
    """A robot spec that does not match its MJCF or is malformed; the message names the entry."""


@dataclass(frozen=True)
class RobotSpec:
    """A validated robot spec; per-joint arrays are in policy joint order."""

    name: str
    spec_path: Path
    mjcf_path: Path
    joint_names: tuple[str, ...]
    default_joint_pos: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    effort_limit: np.ndarray
    velocity_limit: np.ndarray
    action_scale: float
    physics_dt: float
    decimation: int
    base_body: str | None = None  # floating base only
    imu_site: str | None = None
    feet: tuple[str, ...] = ()
    ee_site: str | None = None  # manipulators: the end-effector (tool centre point) site
    cameras: tuple[str, ...] = ()

    @property
    def floating_base(self) -> bool:
        return self.base_body is not None

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def control_dt(self) -> float:
        """Policy period in seconds."""
        return self.physics_dt * self.decimation

    def load_model(self) -> mujoco.MjModel:
        return mujoco.MjModel.from_xml_path(str(self.mjcf_path))


def known_robots() -> list[str]:
    return sorted(p.name for p in ROBOTS_DIR.iterdir() if (p / f"{p.name}.yaml").is_file())


def resolve_spec_path(robot: str | Path) -> Path:
    """A robot name (folder under sim/robots) or a path to a spec YAML."""
    path = Path(robot)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SpecError(f"robot spec {path} does not exist")
        return path
    candidate = ROBOTS_DIR / str(robot) / f"{robot}.yaml"
    if not candidate.is_file():
        raise SpecError(f"unknown robot '{robot}'; known robots: {', '.join(known_robots())}")
    return candidate


def load_robot_spec(robot: str | Path) -> RobotSpec:
    """Load and validate a robot spec; raises SpecError naming the offending entry."""
    spec_path = resolve_spec_path(robot)
    try:
        raw = yaml.safe_load(spec_path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(f"{spec_path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{spec_path}: expected a mapping at the top level")
    missing = [field for field in REQUIRED_FIELDS if field not in raw]
    if missing:
        raise SpecError(f"{spec_path}: missing field(s) {', '.join(missing)}")

    mjcf_path = spec_path.parent / raw["mjcf"]
    if not mjcf_path.is_file():
        raise SpecError(f"{spec_path}: field 'mjcf' names {mjcf_path}, which does not exist")
    try:
        model = mujoco.MjModel.from_xml_path(str(mjcf_path))
    except ValueError as error:
        raise SpecError(f"{mjcf_path}: MuJoCo cannot compile it: {error}") from None

    joint_names = tuple(raw["joint_names"])
    _check_names(spec_path, "joint_names", joint_names, model, mujoco.mjtObj.mjOBJ_JOINT, "joint")
    if len(set(joint_names)) != len(joint_names):
        raise SpecError(f"{spec_path}: joint_names lists a joint twice")
    for name in joint_names:
        joint_type = model.jnt_type[model.joint(name).id]
        if int(joint_type) not in (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE)):
            raise SpecError(f"{spec_path}: joint_names: '{name}' is not a hinge or slide joint")
        actuator = _actuator_for_joint(model, name)
        if actuator is None:
            raise SpecError(f"{spec_path}: joint_names: no actuator drives joint '{name}' in {mjcf_path.name}")
        _check_position_servo(mjcf_path, model, actuator, name)

    default = raw["default_joint_pos"]
    if not isinstance(default, dict):
        raise SpecError(f"{spec_path}: default_joint_pos must map joint names to angles, never a list")
    extra = sorted(set(default) - set(joint_names))
    absent = [name for name in joint_names if name not in default]
    if extra or absent:
        raise SpecError(
            f"{spec_path}: default_joint_pos: missing {absent or 'none'}, not in joint_names {extra or 'none'}"
        )
    actuators = raw["actuators"]
    if not isinstance(actuators, dict):
        raise SpecError(f"{spec_path}: actuators must be a mapping with {', '.join(ACTUATOR_FIELDS)}")
    per_joint = {
        field: _per_joint(spec_path, f"actuators.{field}", actuators.get(field), joint_names)
        for field in ACTUATOR_FIELDS
    }
    floating = _floating_base_fields(spec_path, raw, model)
    ee_site = raw.get("ee_site")
    if ee_site is not None:
        _check_names(spec_path, "ee_site", [ee_site], model, mujoco.mjtObj.mjOBJ_SITE, "site")
    cameras = raw.get("cameras", [])
    if not isinstance(cameras, list):
        raise SpecError(f"{spec_path}: cameras must be a list of camera names, got {cameras!r}")
    _check_names(spec_path, "cameras", cameras, model, mujoco.mjtObj.mjOBJ_CAMERA, "camera")

    physics_dt = float(raw["physics_dt"])
    if abs(physics_dt - model.opt.timestep) > 1e-12:
        raise SpecError(f"{spec_path}: physics_dt {physics_dt} differs from the MJCF timestep {model.opt.timestep}")
    decimation = raw["decimation"]
    if not isinstance(decimation, int) or decimation < 1:
        raise SpecError(f"{spec_path}: decimation must be a positive integer, got {decimation!r}")

    return RobotSpec(
        name=str(raw["name"]),
        spec_path=spec_path,
        mjcf_path=mjcf_path,
        joint_names=joint_names,
        default_joint_pos=np.array([float(default[name]) for name in joint_names]),
        kp=per_joint["kp"],
        kd=per_joint["kd"],
        effort_limit=per_joint["effort_limit"],
        velocity_limit=per_joint["velocity_limit"],
        action_scale=float(raw["action_scale"]),
        physics_dt=physics_dt,
        decimation=decimation,
        ee_site=None if ee_site is None else str(ee_site),
        cameras=tuple(str(c) for c in cameras),
        **floating,
    )


def _floating_base_fields(spec_path: Path, raw: dict, model: mujoco.MjModel) -> dict:
    """base_body, imu_site and feet: all three (legged robot) or none (fixed-base arm)."""
    present = [field for field in FLOATING_BASE_FIELDS if field in raw]
    if not present:
        return {}
    if len(present) != len(FLOATING_BASE_FIELDS):
        absent = [field for field in FLOATING_BASE_FIELDS if field not in raw]
        raise SpecError(
            f"{spec_path}: a floating-base robot names {', '.join(FLOATING_BASE_FIELDS)}; missing {', '.join(absent)}"
        )
    _check_names(spec_path, "base_body", [raw["base_body"]], model, mujoco.mjtObj.mjOBJ_BODY, "body")
    _check_names(spec_path, "imu_site", [raw["imu_site"]], model, mujoco.mjtObj.mjOBJ_SITE, "site")
    feet = tuple(raw["feet"])
    _check_names(spec_path, "feet", feet, model, mujoco.mjtObj.mjOBJ_GEOM, "geom")
    _check_names(spec_path, "feet", feet, model, mujoco.mjtObj.mjOBJ_SITE, "site")
    return {"base_body": str(raw["base_body"]), "imu_site": str(raw["imu_site"]), "feet": feet}


def _check_names(
    spec_path: Path, field: str, names: Any, model: mujoco.MjModel, kind: mujoco.mjtObj, noun: str
) -> None:
    for name in names:
        if mujoco.mj_name2id(model, kind, str(name)) < 0:
            raise SpecError(f"{spec_path}: {field}: the MJCF has no {noun} named '{name}'")


def _per_joint(spec_path: Path, field: str, value: Any, joint_names: tuple[str, ...]) -> np.ndarray:
    """A scalar for every joint, or a mapping by joint name."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.full(len(joint_names), float(value))
    if isinstance(value, dict):
        absent = [name for name in joint_names if name not in value]
        extra = sorted(set(value) - set(joint_names))
        if absent or extra:
            raise SpecError(f"{spec_path}: {field}: missing {absent or 'none'}, not in joint_names {extra or 'none'}")
        return np.array([float(value[name]) for name in joint_names])
    raise SpecError(f"{spec_path}: {field} must be a number or a mapping by joint name, got {value!r}")


def _check_position_servo(mjcf_path: Path, model: mujoco.MjModel, actuator: int, joint: str) -> None:
    """kp/kd from the spec are written as a position servo's gain and bias: nothing else fits."""
    fixed_gain = int(model.actuator_gaintype[actuator]) == int(mujoco.mjtGain.mjGAIN_FIXED)
    affine_bias = int(model.actuator_biastype[actuator]) == int(mujoco.mjtBias.mjBIAS_AFFINE)
    servo = abs(model.actuator_biasprm[actuator, 1] + model.actuator_gainprm[actuator, 0]) < 1e-9
    unit_gear = abs(model.actuator_gear[actuator, 0] - 1.0) < 1e-12
    if not (fixed_gain and affine_bias and servo and unit_gear):
        raise SpecError(
            f"{mjcf_path}: actuator '{model.actuator(actuator).name}' driving joint '{joint}' must be a "
            "<position> servo with gear 1 (fixed gain kp, bias -kp q - kd qdot)"
        )


def _actuator_for_joint(model: mujoco.MjModel, joint_name: str) -> int | None:
    joint_id = model.joint(joint_name).id
    for actuator_id in range(model.nu):
        if (
            model.actuator_trntype[actuator_id] == mujoco.mjtTrn.mjTRN_JOINT
            and model.actuator_trnid[actuator_id, 0] == joint_id
        ):
            return actuator_id
    return None


def actuator_ids(model: mujoco.MjModel, spec: RobotSpec) -> np.ndarray:
    """Actuator index per policy joint."""
    return np.array([_actuator_for_joint(model, name) for name in spec.joint_names])


@dataclass(frozen=True)
class JointNameMismatch:
    """How a list of joint names differs from the robot's: each in its list's order."""

    missing: list[str]  # the robot's joints the list lacks
    unknown: list[str]  # names in the list the robot does not have
    repeated: list[str]  # names the list holds more than once (sorted)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unknown or self.repeated)


def compare_joint_names(expected: Sequence[str], given: Sequence[str]) -> JointNameMismatch:
    """How `given` differs from `expected` (the robot's joint names)."""
    given = [str(name) for name in given]
    expected_set, given_set = set(expected), set(given)
    return JointNameMismatch(
        missing=[name for name in expected if name not in given_set],
        unknown=[name for name in given if name not in expected_set],
        repeated=sorted({name for name in given if given.count(name) > 1}),
    )


def fixed_base_body(model: mujoco.MjModel, spec: RobotSpec) -> int:
    """The body a fixed-base robot's chain hangs from (the root of its first joint's body)."""
    return int(model.body_rootid[model.jnt_bodyid[model.joint(spec.joint_names[0]).id]])


def joint_qpos_ids(model: mujoco.MjModel, spec: RobotSpec) -> np.ndarray:
    return np.array([model.jnt_qposadr[model.joint(name).id] for name in spec.joint_names])


def joint_dof_ids(model: mujoco.MjModel, spec: RobotSpec) -> np.ndarray:
    return np.array([model.jnt_dofadr[model.joint(name).id] for name in spec.joint_names])
