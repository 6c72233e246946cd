"""A system-identification log (commands sent, joint states measured) read from npz or rosbag2 and validated.

Two sources give the same `SysidLog`, every per-joint column in the robot spec's joint order:

* npz ("simreal-sysid-log-1", written by `simreal sysid excite`): loaded with allow_pickle=False.
* rosbag2 (a bag directory, or its .mcap / .db3 file): /joint_states (sensor_msgs/JointState, columns matched
  by name, times = header stamps) and /joint_pd_command (std_msgs/Float64MultiArray in the layout of
  robot_io/topics.py::pack_pd_command, times = the bag's receive stamps). calibration may not import robot_io,
  so `_unpack_pd_command` re-implements that decoding; keep the two in step.

Every problem is a CalibrationError naming the file and what is wrong with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.robot_spec import JointNameMismatch, RobotSpec, compare_joint_names

from .errors import CalibrationError

LOG_FORMAT = "simreal-sysid-log-1"
MIN_OVERLAP_S = 2.0  # commands and states must overlap this long to fit anything
JOINT_STATES_TOPIC = "/joint_states"
PD_COMMAND_TOPIC = "/joint_pd_command"
PD_ROWS = ("q_target_rad", "dq_target_rad_s", "tau_ff_nm", "kp", "kd")  # robot_io/topics.py PD_ROWS
STATE_ARRAYS = ("q_rad", "dq_rad_s")
COMMAND_ARRAYS = PD_ROWS
REQUIRED_ARRAYS = ("format", "robot", "joint_names", "fixed_base", "state_time_s", *STATE_ARRAYS, "command_time_s")


@dataclass(frozen=True)
class SysidLog:
    """Commands and measured joint states of one excitation run, per-joint columns in spec joint order."""

    robot: str
    joint_names: tuple[str, ...]
    fixed_base: bool
    state_time_s: np.ndarray  # (M,)
    q_rad: np.ndarray  # (M, J)
    dq_rad_s: np.ndarray  # (M, J)
    command_time_s: np.ndarray  # (N,)
    q_target_rad: np.ndarray  # (N, J)
    dq_target_rad_s: np.ndarray  # (N, J)
    tau_ff_nm: np.ndarray  # (N, J)
    kp: np.ndarray  # (N, J)
    kd: np.ndarray  # (N, J)

    @property
    def overlap_s(self) -> tuple[float, float]:
        """The time span covered by both commands and states."""
        start = max(float(self.state_time_s[0]), float(self.command_time_s[0]))
        end = min(float(self.state_time_s[-1]), float(self.command_time_s[-1]))
        return start, end


def load_sysid_log(path: Path | str, spec: RobotSpec) -> SysidLog:
    """Read and validate a sysid log (npz, or a rosbag2 directory / .mcap / .db3) for the robot `spec`."""
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"sysid log {path} does not exist: check the path")
    is_bag = path.is_dir() or path.suffix in (".mcap", ".db3")
    arrays = _read_rosbag(path, spec) if is_bag else _read_npz(path)
    return _validated(path, arrays, spec)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an npz file (never unpickled)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CalibrationError(
            f"sysid log {path} is not a readable npz file ({exc}): pass an npz from `simreal sysid excite` or a rosbag2"
        ) from exc


def _validated(path: Path, arrays: dict[str, np.ndarray], spec: RobotSpec) -> SysidLog:
    missing = [name for name in (*REQUIRED_ARRAYS, *COMMAND_ARRAYS) if name not in arrays]
    if "format" in arrays and str(arrays["format"]) != LOG_FORMAT:
        raise CalibrationError(
            f"sysid log {path} has format {str(arrays['format'])!r}, expected {LOG_FORMAT!r}: record it again with "
            f"`simreal sysid excite`"
        )
    if missing:
        raise CalibrationError(f"sysid log {path} lacks array(s) {', '.join(missing)}: it is truncated or not a log")
    joint_names = tuple(str(name) for name in np.atleast_1d(arrays["joint_names"]))
    _check_joint_names(path, joint_names, str(arrays["robot"]), spec)
    order = np.array([joint_names.index(name) for name in spec.joint_names])
    num_joints = len(joint_names)
    state_time_s = _times(path, arrays, "state_time_s")
    command_time_s = _times(path, arrays, "command_time_s")
    columns: dict[str, np.ndarray] = {}
    for names, times_name, count in (
        (STATE_ARRAYS, "state_time_s", len(state_time_s)),
        (COMMAND_ARRAYS, "command_time_s", len(command_time_s)),
    ):
        for name in names:
            values = np.asarray(arrays[name], dtype=np.float64)
            if values.shape != (count, num_joints):
                raise CalibrationError(
                    f"sysid log {path}: {name} has shape {values.shape}, expected ({count}, {num_joints}) "
                    f"({times_name} x joints): the log is truncated or corrupt"
                )
            _check_finite(path, name, values)
            columns[name] = values[:, order]
    if (columns["kp"] < 0.0).any() or (columns["kd"] < 0.0).any():
        raise CalibrationError(f"sysid log {path}: negative kp or kd in the commands: the log is corrupt")
    log = SysidLog(
        robot=spec.name,
        joint_names=spec.joint_names,
        fixed_base=bool(arrays["fixed_base"]),
        state_time_s=state_time_s,
        command_time_s=command_time_s,
        **columns,
    )
    start, end = log.overlap_s
    if end - start < MIN_OVERLAP_S:
        raise CalibrationError(
            f"sysid log {path}: commands and states overlap for {max(0.0, end - start):.2f} s, at least "
            f"{MIN_OVERLAP_S} s is needed: record a longer excitation"
        )
    return log


def _check_joint_names(path: Path, joint_names: tuple[str, ...], robot: str, spec: RobotSpec) -> None:
    """The log must name each of the spec's joints exactly once."""
    mismatch = compare_joint_names(spec.joint_names, joint_names)
    if mismatch.repeated:
        twice = ", ".join(mismatch.repeated)
        raise CalibrationError(f"sysid log {path} names joint(s) {twice} twice: the log is corrupt")
    if mismatch:
        raise CalibrationError(
            f"sysid log {path} (recorded on robot {robot!r}) does not match robot {spec.name!r}: "
            f"{_missing_and_unknown(mismatch)}. "
            f"Pass the robot the log was taken on (--robot {robot}), or record it again with --robot {spec.name}"
        )


def _missing_and_unknown(mismatch: JointNameMismatch) -> str:
    return (
        f"missing joint(s) {', '.join(mismatch.missing) or 'none'}; "
        f"unknown joint(s) {', '.join(mismatch.unknown) or 'none'}"
    )


def _times(path: Path, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    times = np.asarray(arrays[name], dtype=np.float64)
    if times.ndim != 1 or len(times) < 2:
        raise CalibrationError(f"sysid log {path}: {name} must be a 1-D array of 2 or more stamps, got {times.shape}")
    _check_finite(path, name, times)
    if not (np.diff(times) > 0.0).all():
        bad = int(np.argmin(np.diff(times) > 0.0)) + 1
        raise CalibrationError(
            f"sysid log {path}: {name} does not increase at sample {bad} ({times[bad - 1]!r} -> {times[bad]!r}): "
            f"stamps must be strictly increasing"
        )
    return times


def _check_finite(path: Path, name: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        count = int((~np.isfinite(values)).sum())
        raise CalibrationError(f"sysid log {path}: {name} holds {count} non-finite value(s): the log is corrupt")


# ---- rosbag2 ----


def _read_rosbag(path: Path, spec: RobotSpec) -> dict[str, np.ndarray]:
    """The npz arrays from a bag's /joint_states and /joint_pd_command (columns in spec order)."""
    from rosbags.rosbag2 import Reader  # optional at import time: only bags need it
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.LATEST)
    states: list[tuple[float, np.ndarray, np.ndarray]] = []
    commands: list[tuple[float, np.ndarray]] = []
    names = spec.joint_names
    try:
        with Reader(path) as reader:
            wanted = [c for c in reader.connections if c.topic in (JOINT_STATES_TOPIC, PD_COMMAND_TOPIC)]
            for connection, receive_ns, raw in reader.messages(connections=wanted):
                message = typestore.deserialize_cdr(raw, connection.msgtype)
                if connection.topic == JOINT_STATES_TOPIC:
                    stamp_s = message.header.stamp.sec + 1e-9 * message.header.stamp.nanosec
                    order = _bag_order(path, JOINT_STATES_TOPIC, list(message.name), spec)
                    position = np.asarray(message.position, dtype=np.float64)
                    velocity = np.asarray(message.velocity, dtype=np.float64)
                    if len(position) != len(order) or len(velocity) != len(order):
                        raise CalibrationError(
                            f"sysid log {path}: a {JOINT_STATES_TOPIC} message has {len(message.name)} names, "
                            f"{len(position)} positions and {len(velocity)} velocities: the bag is corrupt"
                        )
                    states.append((stamp_s, position[order], velocity[order]))
                else:
                    command_names, rows = _unpack_pd_command(path, message)
                    order = _bag_order(path, PD_COMMAND_TOPIC, command_names, spec)
                    commands.append((receive_ns * 1e-9, rows[:, order]))
    except CalibrationError:
        raise
    except Exception as exc:  # rosbags raises many types for unreadable bags
        raise CalibrationError(f"sysid log {path} is not a readable rosbag2 ({exc}): check the path") from exc
    for topic, messages in ((JOINT_STATES_TOPIC, states), (PD_COMMAND_TOPIC, commands)):
        if not messages:
            raise CalibrationError(f"sysid log {path} has no {topic} messages: record both topics")
    states.sort(key=lambda item: item[0])
    commands.sort(key=lambda item: item[0])
    rows = np.stack([rows for _, rows in commands])  # (N, 5, J)
    arrays = {
        "format": np.array(LOG_FORMAT),
        "robot": np.array(spec.name),
        "joint_names": np.array(names),
        "fixed_base": np.array(True),  # a bag does not say; the fit models a hung robot either way
        "state_time_s": np.array([stamp for stamp, _, _ in states]),
        "q_rad": np.stack([q for _, q, _ in states]),
        "dq_rad_s": np.stack([dq for _, _, dq in states]),
        "command_time_s": np.array([stamp for stamp, _ in commands]),
    }
    for index, name in enumerate(PD_ROWS):
        arrays[name] = rows[:, index, :]
    return arrays


def _bag_order(path: Path, topic: str, names: list[str], spec: RobotSpec) -> np.ndarray:
    """Index into a message's columns of each spec joint; CalibrationError naming missing / unknown joints."""
    mismatch = compare_joint_names(spec.joint_names, names)
    if mismatch:
        raise CalibrationError(
            f"sysid log {path}: {topic} does not match robot {spec.name!r}: {_missing_and_unknown(mismatch)}. "
            f"Pass the robot the bag was recorded on (--robot NAME), or record it again with --robot {spec.name}"
        )
    return np.array([names.index(name) for name in spec.joint_names])


def _unpack_pd_command(path: Path, message: object) -> tuple[list[str], np.ndarray]:
    """(joint names, rows 5 x n): the layout of robot_io/topics.py::pack_pd_command (names in dim[1].label)."""
    dims = message.layout.dim
    if len(dims) != 2 or dims[0].size != len(PD_ROWS):
        raise CalibrationError(
            f"sysid log {path}: a {PD_COMMAND_TOPIC} message is not 2-D with {len(PD_ROWS)} rows {PD_ROWS}"
        )
    names = dims[1].label.split(",") if dims[1].label else []
    data = np.asarray(message.data, dtype=np.float64)
    if len(names) != dims[1].size or data.size != len(PD_ROWS) * len(names):
        raise CalibrationError(
            f"sysid log {path}: a {PD_COMMAND_TOPIC} message has {len(names)} joint names and {data.size} values"
        )
    return names, data.reshape(len(PD_ROWS), len(names))
