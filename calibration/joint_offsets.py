"""Joint-offset calibration: encoder offsets from /joint_states logged while the robot is held at a known pose.

Per joint, offset = median(measured angle) - reference angle (the encoder reads true angle + offset, the
convention of sim/robot_params.py). The median ignores the odd glitched sample; a joint whose readings
spread (robust std, `robust_std`) more than `max_std_rad` was not held still, and an offset beyond
`max_offset_rad` almost always means the robot was held in another pose than the reference, so both are
refused rather than written.

The log is an npz with `joint_names` (J,), `state_time_s` (M,) and `q_rad` (M, J): the arrays of the sysid
log ("simreal-sysid-log-1"); any npz that has those three works.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.robot_params import MAX_OFFSET_RAD, RobotParams, existing_or_empty, write_robot_params
from sim.robot_spec import RobotSpec, SpecError, compare_joint_names, load_robot_spec

from .board_io import read_yaml_mapping
from .errors import CalibrationError

LOG_ARRAYS = ("joint_names", "state_time_s", "q_rad")
MIN_SAMPLES = 10


@dataclass(frozen=True)
class JointOffsetConfig:
    max_std_rad: float = 0.01  # per-joint spread above this: the robot moved during the log
    max_offset_rad: float = MAX_OFFSET_RAD  # beyond this: probably the wrong reference pose


@dataclass(frozen=True)
class JointLog:
    """Joint readings in the log's own joint order."""

    joint_names: tuple[str, ...]
    state_time_s: np.ndarray
    q_rad: np.ndarray


def load_joint_log(path: str | Path) -> JointLog:
    """The three arrays of a joint-state log; CalibrationError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"joint log {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in LOG_ARRAYS if name not in archive.files]
            if missing:
                raise CalibrationError(f"{path}: missing array(s) {', '.join(missing)}; a joint log needs {LOG_ARRAYS}")
            names, time_s, q_rad = (archive[name] for name in LOG_ARRAYS)
    except (ValueError, OSError) as error:
        raise CalibrationError(f"{path}: not a readable npz joint log (no pickled arrays allowed): {error}") from None
    if names.ndim != 1 or names.dtype.kind != "U":
        raise CalibrationError(f"{path}: joint_names must be a 1-D array of strings")
    if q_rad.ndim != 2 or q_rad.shape != (len(time_s), len(names)):
        raise CalibrationError(
            f"{path}: q_rad has shape {q_rad.shape}; expected (samples, joints) = ({len(time_s)}, {len(names)})"
        )
    if len(time_s) < MIN_SAMPLES:
        raise CalibrationError(f"{path}: {len(time_s)} samples; log at least {MIN_SAMPLES} while the robot is held")
    return JointLog(tuple(str(n) for n in names), np.asarray(time_s, float), np.asarray(q_rad, float))


def load_reference_pose(reference: str | Path, spec: RobotSpec) -> np.ndarray:
    """'default' (the spec's default_joint_pos) or a YAML mapping joint name -> rad; spec joint order."""
    if str(reference) == "default":
        return spec.default_joint_pos.copy()
    path = Path(reference)
    pose = read_yaml_mapping(path, "reference pose (give 'default' or a YAML of joint name -> rad)")
    _check_joint_names(str(path), list(pose), spec)
    values = []
    for name in spec.joint_names:
        value = pose[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise CalibrationError(f"{path}: {name} must be a finite angle in rad, got {value!r}")
        values.append(float(value))
    return np.array(values)


def estimate_joint_offsets(
    log: JointLog, reference_rad: np.ndarray, spec: RobotSpec, cfg: JointOffsetConfig, source: str = "log"
) -> tuple[np.ndarray, np.ndarray]:
    """(offset, spread) per joint in spec order: median(measured) - reference, and the std of the readings."""
    _check_joint_names(source, list(log.joint_names), spec)
    columns = [log.joint_names.index(name) for name in spec.joint_names]
    q_rad = log.q_rad[:, columns]
    bad = [name for name, ok in zip(spec.joint_names, np.isfinite(q_rad).all(axis=0), strict=True) if not ok]
    if bad:
        raise CalibrationError(f"{source}: non-finite readings of joint(s) {', '.join(bad)}")
    median_rad = np.median(q_rad, axis=0)
    spread_rad = robust_std(q_rad, median_rad)
    moved = [f"{n} ({s:.4f} rad)" for n, s in zip(spec.joint_names, spread_rad, strict=True) if s > cfg.max_std_rad]
    if moved:
        raise CalibrationError(
            f"{source}: the robot moved during the log: std of {', '.join(moved)} exceeds {cfg.max_std_rad} rad; "
            "hold it still at the reference pose and log again"
        )
    offsets_rad = median_rad - reference_rad
    far = [
        f"{n} ({o:+.3f} rad)" for n, o in zip(spec.joint_names, offsets_rad, strict=True) if abs(o) > cfg.max_offset_rad
    ]
    if far:
        raise CalibrationError(
            f"{source}: offsets beyond ±{cfg.max_offset_rad} rad: {', '.join(far)}; probably the wrong reference "
            "pose (--reference) for how the robot was held"
        )
    return offsets_rad, spread_rad


def calibrate_joint_offsets(
    robot: str,
    log_path: str | Path,
    out: str | Path,
    reference: str | Path = "default",
    cfg: JointOffsetConfig = JointOffsetConfig(),
) -> dict:
    """Estimate the offsets and write them into `out` (merged into it when it exists: other sections kept)."""
    spec = load_robot_spec(robot)
    log = load_joint_log(log_path)
    reference_rad = load_reference_pose(reference, spec)
    offsets_rad, spread_rad = estimate_joint_offsets(log, reference_rad, spec, cfg, str(log_path))
    out = Path(out)
    base = _existing_params(out, spec)
    fit = dict(base.fit or {})
    fit["joint_offsets"] = {
        "log": str(log_path),
        "reference": str(reference),
        "samples": len(log.state_time_s),
        "max_std_rad": float(spread_rad.max()),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_robot_params(out, base.with_offsets(offsets_rad, fit))
    return {
        "robot": spec.name,
        "out": str(out),
        "samples": len(log.state_time_s),
        "offsets_rad": dict(zip(spec.joint_names, offsets_rad.tolist(), strict=True)),
        "std_rad": dict(zip(spec.joint_names, spread_rad.tolist(), strict=True)),
    }


def robust_std(q_rad: np.ndarray, median_rad: np.ndarray) -> np.ndarray:
    """Per-joint spread as 1.4826 x the median absolute deviation: the std of Gaussian noise, blind to the odd
    glitched sample as the median offset is, yet as large as half a step when the joint moved mid-log."""
    return 1.4826 * np.median(np.abs(q_rad - median_rad), axis=0)


def _existing_params(out: Path, spec: RobotSpec) -> RobotParams:
    """The file being merged into, or an empty one for `spec`."""
    try:
        return existing_or_empty(out, spec)
    except SpecError as error:
        raise CalibrationError(f"cannot merge into {out}: {error}") from None


def _check_joint_names(source: str, names: list, spec: RobotSpec) -> None:
    """Every joint of the robot present, none it does not have; the message names them."""
    mismatch = compare_joint_names(spec.joint_names, names)
    if mismatch.repeated:
        raise CalibrationError(f"{source}: joint(s) {', '.join(mismatch.repeated)} listed more than once")
    if mismatch.unknown:
        raise CalibrationError(f"{source}: joint(s) {', '.join(mismatch.unknown)} unknown to robot '{spec.name}'")
    if mismatch.missing:
        raise CalibrationError(f"{source}: joint(s) {', '.join(mismatch.missing)} of robot '{spec.name}' missing")
