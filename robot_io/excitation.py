"""System identification on the robot: play an excitation table while standing, and log what was sent and measured.

`simreal sysid excite` (calibration/excitation.py) writes the table; the policy node loads it from its
`excitation_file` parameter, refuses one that is unsafe for the bundle it runs (checked once, at start-up), and
plays it on `~/excite` while STANDING. The table only replaces the standing targets: any other state the core
enters (an e-stop, a stale sensor, a request) ends the playback in that very tick, and the core's own command is
sent. Everything the node measured and sent meanwhile is written to `sysid_log` (format below) when the
playback ends, by a thread of its own, through a temporary file and a rename: a crash leaves no half log.

Table (npz, no pickles): `time_s` (T,) from 0, increasing; `joint_names` (J,) str; `q_target_rad` and
`dq_target_rad_s` (T, J). Linear interpolation between rows.

Log (npz): `format` = "simreal-sysid-log-1", `robot`, `joint_names` (J,), `fixed_base` (always true: the
excitation is meant for a robot on a test stand), `state_time_s` (M,) /joint_states stamps, `q_rad` and
`dq_rad_s` (M, J), `command_time_s` (N,) the publish times of /joint_pd_command, and its rows `q_target_rad`,
`dq_target_rad_s`, `tau_ff_nm`, `kp`, `kd` (N, J); all times on the ROS clock of the message stamps, joints in
`joint_names` order, angles true ones (the node's encoder offsets, `robot_params`, taken off both ways).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.atomic_file import atomic_write_bytes

LOG_FORMAT = "simreal-sysid-log-1"
MAX_OFFSET_RAD = 0.6  # farther than this from the standing pose is no excitation; it is a different motion
MAX_DURATION_S = 900.0  # the recorder keeps the whole run in memory (about 0.2 MB per second at 1 kHz)
END_TOLERANCE_RAD = 1e-3  # the table must start and end at the standing pose


class ExcitationError(ValueError):
    """An excitation table the node will not play; the message names the file and the problem."""


@dataclass(frozen=True)
class ExcitationTable:
    time_s: np.ndarray
    q_target_rad: np.ndarray  # (T, J) in the bundle's joint order
    dq_target_rad_s: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1])

    def sample(self, t_s: float, q_out: np.ndarray, dq_out: np.ndarray) -> None:
        """The targets at t_s (linear interpolation), written into q_out and dq_out."""
        index = int(np.clip(np.searchsorted(self.time_s, t_s, side="right"), 1, len(self.time_s) - 1))
        t0, t1 = self.time_s[index - 1], self.time_s[index]
        weight = float(np.clip((t_s - t0) / (t1 - t0), 0.0, 1.0))
        np.multiply(self.q_target_rad[index - 1], 1.0 - weight, out=q_out)
        q_out += weight * self.q_target_rad[index]
        np.multiply(self.dq_target_rad_s[index - 1], 1.0 - weight, out=dq_out)
        dq_out += weight * self.dq_target_rad_s[index]


def load_excitation(
    path: Path, joint_names: list[str], standing_rad: np.ndarray, safety: dict, max_step_rad: float, period_s: float
) -> ExcitationTable:
    """The table reordered to `joint_names`, checked against the bundle's limits; ExcitationError if unsafe."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("time_s", "joint_names", "q_target_rad", "dq_target_rad_s")}
    except (OSError, ValueError) as error:
        raise ExcitationError(f"excitation_file {path}: cannot read it as an npz table: {error}") from None
    except KeyError as error:
        raise ExcitationError(f"excitation_file {path}: missing array {error}") from None
    names = [str(name) for name in np.atleast_1d(arrays["joint_names"])]
    if sorted(names) != sorted(joint_names):
        raise ExcitationError(
            f"excitation_file {path}: its joints {names} are not the bundle's {joint_names}; "
            "write the table for this robot (simreal sysid excite --robot ...)"
        )
    problem = _malformed(arrays, len(names))
    if problem:
        raise ExcitationError(f"excitation_file {path}: {problem}")
    order = [names.index(name) for name in joint_names]
    table = ExcitationTable(
        arrays["time_s"].astype(float),
        arrays["q_target_rad"].astype(float)[:, order],
        arrays["dq_target_rad_s"].astype(float)[:, order],
    )
    problem = _unsafe(table, joint_names, standing_rad, safety, max_step_rad, period_s)
    if problem:
        raise ExcitationError(f"excitation_file {path}: {problem}; refusing to play it")
    return table


def _malformed(arrays: dict[str, np.ndarray], num_joints: int) -> str:
    """Why the arrays cannot be a table (shapes, types, length), or ''."""
    t, q, dq = arrays["time_s"], arrays["q_target_rad"], arrays["dq_target_rad_s"]
    for name, array in arrays.items():
        if name != "joint_names" and not np.issubdtype(array.dtype, np.number):
            return f"{name} holds {array.dtype} values, not numbers"
    if t.ndim != 1 or len(t) < 2 or q.shape != (len(t), num_joints) or dq.shape != q.shape:
        return f"shapes time_s {t.shape}, q_target_rad {q.shape}, dq_target_rad_s {dq.shape} do not fit"
    if np.isfinite(t).all() and t[-1] > MAX_DURATION_S:
        return f"it lasts {t[-1]:.0f} s, more than {MAX_DURATION_S:.0f} s"
    return ""


def _unsafe(
    table: ExcitationTable,
    joint_names: list[str],
    standing_rad: np.ndarray,
    safety: dict,
    max_step_rad: float,
    period_s: float,
) -> str:
    """Why the table is unsafe to play, or ''."""
    t, q, dq = table.time_s, table.q_target_rad, table.dq_target_rad_s
    if not (np.isfinite(t).all() and np.isfinite(q).all() and np.isfinite(dq).all()):
        return "it holds non-finite values"
    if t[0] != 0.0 or np.any(np.diff(t) <= 0.0):
        return "time_s must start at 0 and increase"
    for row, where in ((q[0], "start"), (q[-1], "end")):
        if np.max(np.abs(row - standing_rad)) > END_TOLERANCE_RAD:
            return f"it does not {where} at the standing pose"
    offset = np.max(np.abs(q - standing_rad), axis=0)
    lower, upper = np.asarray(safety["joint_pos_lower_rad"]), np.asarray(safety["joint_pos_upper_rad"])
    speed_limit = np.asarray(safety["velocity_limit_rad_s"])
    # the fastest the target moves between any two rows, over one control period
    steps = np.max(np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None], axis=0) * period_s
    for j, name in enumerate(joint_names):
        if q[:, j].min() < lower[j] or q[:, j].max() > upper[j]:
            return f"joint {name} leaves its limits [{lower[j]:.3f}, {upper[j]:.3f}] rad"
        if offset[j] > MAX_OFFSET_RAD:
            return f"joint {name} moves {offset[j]:.3f} rad from the standing pose (at most {MAX_OFFSET_RAD})"
        if np.abs(dq[:, j]).max() > speed_limit[j]:
            return f"joint {name} is asked for {np.abs(dq[:, j]).max():.2f} rad/s (limit {speed_limit[j]:.2f})"
        if steps[j] > max_step_rad:
            return (
                f"joint {name} moves at up to {steps[j] / period_s:.2f} rad/s, {steps[j]:.4f} rad per control "
                f"period: more than max_target_step_rad {max_step_rad}"
            )
    return ""


class SysidRecorder:
    """Measurements and commands of one excitation, kept in memory and written once at the end."""

    def __init__(self, robot: str, joint_names: list[str], fixed_base: bool) -> None:
        self.robot, self.joint_names, self.fixed_base = robot, list(joint_names), fixed_base
        self._lock = threading.Lock()  # states come from the executor thread, commands from the control thread
        self._states: list[tuple[float, np.ndarray, np.ndarray]] = []
        self._commands: list[tuple[float, np.ndarray]] = []
        self._state_order: list[int] | None = None

    def add_state(self, stamp_s: float, names: list[str], position: np.ndarray, velocity: np.ndarray) -> None:
        if self._state_order is None:
            self._state_order = [list(names).index(name) for name in self.joint_names]
        order = self._state_order
        with self._lock:
            self._states.append((stamp_s, np.asarray(position)[order], np.asarray(velocity)[order]))

    def add_command(self, time_s: float, rows: np.ndarray, target_offsets_rad: np.ndarray) -> None:
        """A /joint_pd_command as sent; `target_offsets_rad` (encoder offsets) are taken off its q* row."""
        true_rows = rows.copy()
        true_rows[0] -= target_offsets_rad
        with self._lock:
            self._commands.append((time_s, true_rows))

    def arrays(self) -> dict[str, np.ndarray]:
        with self._lock:
            states, commands = list(self._states), list(self._commands)
        rows = np.array([row for _, row in commands]).reshape(len(commands), 5, len(self.joint_names))
        return {
            "format": np.array(LOG_FORMAT),
            "robot": np.array(self.robot),
            "joint_names": np.array(self.joint_names),
            "fixed_base": np.array(self.fixed_base),
            "state_time_s": np.array([stamp for stamp, _, _ in states]),
            "q_rad": np.array([q for _, q, _ in states]).reshape(len(states), len(self.joint_names)),
            "dq_rad_s": np.array([dq for _, _, dq in states]).reshape(len(states), len(self.joint_names)),
            "command_time_s": np.array([time_s for time_s, _ in commands]),
            "q_target_rad": rows[:, 0],
            "dq_target_rad_s": rows[:, 1],
            "tau_ff_nm": rows[:, 2],
            "kp": rows[:, 3],
            "kd": rows[:, 4],
        }


def write_log(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an npz (a log or a table) atomically: a crash leaves the old file or none, never half of one."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
