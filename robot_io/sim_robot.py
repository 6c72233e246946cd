"""The MuJoCo hardware emulator (`simreal_sim_robot`): a robot's motor drivers (and IMU, if it has one) over ROS 2.

It stands in for the real robot in sim2sim tests: the policy node cannot tell it from hardware except by the
physics. Behaviour worth knowing before reading the code:

* Real time. The robot's MJCF is stepped at `physics_rate_hz` (model.opt.timestep = 1 / rate) in a thread of
  its own, paced to `time.perf_counter` with absolute slot starts (start + k * dt), so sleep jitter never
  accumulates. Step k may not start before its slot and should finish by the slot's end; one that finishes
  later is counted in `late_steps`, and the loop then runs the following steps back to back (no sleep) until
  it is on time again, so simulated time does not drift from the wall clock. A backlog longer than
  MAX_CATCH_UP_S (a stall: SIGSTOP, a starved core) is not replayed faster than real time: that time is lost,
  as it would be on hardware, and counted in `stalled_s`.
* Torques. The MJCF's position-servo actuators are switched off as a whole (mjDSBL_ACTUATION: none of their
  kp, kv or ctrl history leaks through) and the emulator's own PD law is written to `qfrc_applied` of each
  joint's DOF, every physics step: tau = kp_scale*kp*(q* - q) + kd_scale*kd*(dq* - dq) + tau_ff, clamped to
  the spec's effort limits. qfrc_applied was chosen over re-typing the actuators into motors because it needs
  no knowledge of the actuator's gain/bias layout and the spec's effort limit is the one clamp applied.
  The MJCF's passive joint damping, armature and friction loss stay: they are part of the robot.
  Each step uses mj_step1 -> PD from the state at time t -> mj_step2, so the torque acts on the state it was
  computed from (as a motor driver's current loop would), and the published measurement is that state.
* Commands. `/joint_pd_command` (rows q*, dq*, tau_ff, kp, kd; topics.unpack_pd_command) or `/joint_command`
  (JointState: position = q*; velocity and effort, if present, are dq* and tau_ff; the spec's kp/kd). While
  /joint_pd_command is live (a valid one within command_timeout_s) /joint_command is ignored and counted in
  `ignored_joint_commands`: the policy node publishes both with the same targets, and applying whichever
  arrived last would alternate the gains (kp 35 from the spec vs kp 0 in ZERO_TORQUE, say). Joints
  are matched by name and a command must name every joint once; unknown, missing or repeated names, a
  malformed layout, negative gains and non-finite values reject the whole command (counted in
  `rejected_commands`, non-finite ones also in `nonfinite_commands`), and the previous command stays.
* Latency. A command arriving at wall time t_a takes effect at the first physics step that starts at or after
  t_a + latency_ms (a preallocated ring buffer holds the pending ones; if it overflows the oldest pending
  command is discarded and counted in `command_queue_overflows`). With latency 0 that is the next step.
* Damping. Before the first command, and when no new command has taken effect for `command_timeout_s`, the
  drivers damp: tau = -damping_kd * dq (clamped). The timeout counts from when a command took effect, so
  latency delays it as it delays the command.
* Stamps. Sensor messages carry the time of the measurement: the system (ROS) time read when they are
  published, microseconds after the physics step; with `publish_clock` they carry the simulated time instead,
  the same clock as /clock, for consumers running with use_sim_time.
* Test stand. `fixed_base: true` hangs a floating-base robot in the air (sim/hanging.py: the free joint removed,
  the base raised so the feet clear the floor), as a real one hangs from a gantry for system identification;
  its base ground truth is then the stand's pose, at rest. A fixed-base robot ignores it.
* Robots. A floating-base robot (the quadruped: spec base_body, imu_site, feet) starts with its lowest foot just
  above the floor, publishes /imu/data and the base's ground truth on /sim/base_state. A fixed-base robot (the
  arm: no base_body, no imu_site) starts at its default pose with no IMU publisher at all; joints coupled to a
  spec joint by an equality constraint (the arm's mirrored finger) start where the constraint puts them. A robot
  with an ee_site publishes the end effector's ground-truth pose on /sim/ee_pose (geometry_msgs/PoseStamped,
  simulation only) in its base frame: the world body's child that carries the first joint, which is the frame
  the training env measures target poses in, and its body name is the frame_id ("base" for the arm). Both
  ground-truth streams run at `base_state_rate_hz`. Gravity compensation (MJCF gravcomp) is a passive force and
  stays on with the actuators off: it is the arm's own controller, not part of the policy's command.
* Reality. `friction` sets the foot geoms' sliding friction (the feet have contact priority over the floor,
  so theirs is the one used), `added_mass_kg` adds a point mass at the trunk's centre of mass (inertia
  unchanged), `kp_scale`/`kd_scale` scale the commanded gains, `imu_noise` adds Gaussian gyro noise (rad/s)
  and rotates the orientation by a random rotation vector with that std per axis (rad), `drop_rate` loses
  each /joint_states or /imu/data message with that probability, `seed` seeds both. A robot without feet, base
  body or IMU refuses a non-nominal `friction`, `added_mass_kg` or `imu_noise` (it would have no effect).
* Cameras. A robot whose spec lists `cameras` (the arm: wrist_cam, scene_cam) publishes each one's render as
  sensor_msgs/Image (rgb8, `camera_width` x `camera_height`) on /camera/<name>/image_raw at `camera_rate_hz`
  (0: no camera publishers), header.frame_id = the camera's name, header.stamp = the stamp of the /joint_states
  measured at the same physics step. Rendering (offscreen EGL or OSMesa, sim/offscreen_gl.py) runs in a thread of
  its own, never in the physics loop: on a camera-due step the physics thread only copies qpos and the stamp into
  a snapshot under a lock (about a microsecond); the renderer thread poses its own MjData from the newest snapshot
  and renders every camera. A snapshot replaced before it was rendered is counted in `camera_frames_skipped`.
  The camera parameters are optional in a parameter file (a robot without cameras has no use for them).

Run: `python -m robot_io.sim_robot --ros-args --params-file launch/params/quadruped.yaml -p friction:=0.5`.
"""

from __future__ import annotations

import array
import importlib
import math
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, Imu, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from robot_io import ros_args, topics
from robot_io.reality import Reality, RealityError
from robot_io.tick_stats import StreamGaps
from sim.errors import SimrealError
from sim.hanging import hanging_model
from sim.offscreen_gl import choose_gl_backend
from sim.robot_spec import RobotSpec, joint_dof_ids, joint_qpos_ids, load_robot_spec

# The node's parameters and their defaults: launch/params/quadruped.yaml, section simreal_sim_robot.
NODE_DEFAULTS: dict[str, object] = {
    "robot": "quadruped",
    "physics_rate_hz": 1000.0,
    "joint_state_rate_hz": 1000.0,
    "imu_rate_hz": 500.0,
    "base_state_rate_hz": 100.0,
    "command_timeout_s": 0.1,
    "damping_kd": 2.0,
    "publish_clock": False,
    "fixed_base": False,
}
FLAG_PARAMETERS = ("publish_clock", "fixed_base")
PARAMETER_DEFAULTS: dict[str, object] = {**NODE_DEFAULTS, **Reality().to_overrides()}
# Optional in a parameter file: only a robot with cameras reads them (see the module docstring)
# cameras cost the 1 kHz physics thread late steps (GIL): off unless asked for (`-p camera_rate_hz:=30` when recording)
CAMERA_DEFAULTS: dict[str, object] = {"camera_rate_hz": 0.0, "camera_width": 128, "camera_height": 96}
KNOWN_PARAMETERS: dict[str, object] = {**PARAMETER_DEFAULTS, **CAMERA_DEFAULTS}
DIAGNOSTICS_PERIOD_S = 1.0
MAX_CLOCK_RATE_HZ = 1000.0  # /clock is published every physics step, but no faster than this
COMMAND_QUEUE_CAPACITY = 256  # pending (latency-delayed) commands; 1 kHz commands with 250 ms latency fit
REALTIME_WARN_FACTOR = 0.98
# Ground truth and /clock: a reliable writer matches reliable and best-effort readers alike (topics.py names none)
RELIABLE_OUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
MAX_CATCH_UP_S = 0.05  # a backlog up to this long is caught up by stepping back to back; longer is dropped
CAMERA_START_TIMEOUT_S = 30.0  # the renderer's GL set-up (an EGL or OSMesa context) must be done by then
CAMERA_WAIT_S = 0.1  # the renderer thread checks for a stop this often while no snapshot comes
FOOT_CLEARANCE_M = 0.001  # the feet start this far above the floor, so the first contact is gentle
PD_ROW_COUNT = len(topics.PD_ROWS)
Q_ROW, DQ_ROW, FF_ROW, KP_ROW, KD_ROW = range(PD_ROW_COUNT)


class SimRobotError(SimrealError):
    """A parameter or model the emulator cannot run with; the message names it."""


@dataclass(frozen=True)
class SimRobotParams:
    """The node's parameters, validated."""

    robot: str = "quadruped"
    physics_rate_hz: float = 1000.0
    joint_state_rate_hz: float = 1000.0
    imu_rate_hz: float = 500.0
    base_state_rate_hz: float = 100.0  # both ground-truth streams: /sim/base_state and /sim/ee_pose
    command_timeout_s: float = 0.1
    damping_kd: float = 2.0
    publish_clock: bool = False
    fixed_base: bool = False  # a floating-base robot hung on a test stand (sim/hanging.py): system identification
    camera_rate_hz: float = 0.0  # every camera of the robot's spec; 0: none published (CAMERA_DEFAULTS)
    camera_width: int = 128
    camera_height: int = 96
    reality: Reality = field(default_factory=Reality)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> SimRobotParams:
        """From parameter name -> value (any subset of KNOWN_PARAMETERS); SimRobotError names a bad one."""
        _refuse_unknown(values)
        merged = {**KNOWN_PARAMETERS, **values}
        try:
            reality = Reality(**{key: merged[key] for key in Reality.field_names()})
        except RealityError as error:
            raise SimRobotError(f"parameter {error}") from None
        robot = merged["robot"]
        if not isinstance(robot, str) or not robot:
            raise SimRobotError(f"parameter robot must be a robot name or spec path, got {robot!r}")
        flags = {key: merged[key] for key in FLAG_PARAMETERS}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise SimRobotError(f"parameter {key} must be true or false, got {value!r}")
        numbers = {key: _number(key, merged[key]) for key in NODE_DEFAULTS if key not in ("robot", *FLAG_PARAMETERS)}
        numbers["camera_rate_hz"] = _number("camera_rate_hz", merged["camera_rate_hz"])
        sizes = {key: _pixels(key, merged[key]) for key in ("camera_width", "camera_height")}
        params = cls(robot=robot, reality=reality, **flags, **numbers, **sizes)
        params._check_ranges()
        return params

    def _check_ranges(self) -> None:
        checks = (
            ("physics_rate_hz", self.physics_rate_hz > 0.0, "must be > 0"),
            ("joint_state_rate_hz", self.joint_state_rate_hz >= 0.0, "must be >= 0 (0: not published)"),
            ("imu_rate_hz", self.imu_rate_hz >= 0.0, "must be >= 0 (0: not published)"),
            ("base_state_rate_hz", self.base_state_rate_hz >= 0.0, "must be >= 0 (0: not published)"),
            ("command_timeout_s", self.command_timeout_s > 0.0, "must be > 0"),
            ("damping_kd", self.damping_kd >= 0.0, "must be >= 0"),
            ("camera_rate_hz", self.camera_rate_hz >= 0.0, "must be >= 0 (0: not published)"),
        )
        for key, ok, requirement in checks:
            if not ok:
                raise SimRobotError(f"parameter {key} {requirement}, got {getattr(self, key)!r}")


def _refuse_unknown(names: object) -> None:
    unknown = sorted(set(names) - set(KNOWN_PARAMETERS))
    if unknown:
        raise SimRobotError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(KNOWN_PARAMETERS)}")


def _pixels(key: str, value: object) -> int:
    """An image size: a positive integer (a float like 96.0 is accepted, 96.5 is not)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value != int(value) or value < 1:
        raise SimRobotError(f"parameter {key} must be a positive whole number of pixels, got {value!r}")
    return int(value)


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SimRobotError(f"parameter {key} must be a finite number, got {value!r}")
    return float(value)


class CommandQueue:
    """Commands waiting out the latency: a preallocated ring of (due time, 5 x n rows), filled in arrival order."""

    def __init__(self, capacity: int, num_joints: int) -> None:
        self._rows = np.zeros((capacity, PD_ROW_COUNT, num_joints))
        self._due_s = np.zeros(capacity)
        self._head = 0  # oldest pending
        self._count = 0
        self._lock = threading.Lock()
        self.overflows = 0

    def __len__(self) -> int:
        return self._count

    def push(self, rows: np.ndarray, due_s: float) -> None:
        capacity = len(self._due_s)
        with self._lock:
            if self._count == capacity:  # full: the oldest pending command is lost, as on a saturated bus
                self._head = (self._head + 1) % capacity
                self._count -= 1
                self.overflows += 1
            slot = (self._head + self._count) % capacity
            self._rows[slot] = rows
            self._due_s[slot] = due_s
            self._count += 1

    def pop_due(self, now_s: float, out: np.ndarray) -> bool:
        """Copy the newest command due by now_s into out (older due ones are superseded); False if none is due."""
        capacity = len(self._due_s)
        newest = -1
        with self._lock:
            while self._count and self._due_s[self._head] <= now_s:
                newest = self._head
                self._head = (self._head + 1) % capacity
                self._count -= 1
            if newest >= 0:
                out[:] = self._rows[newest]  # inside the lock: a push may reuse the slot right after
        return newest >= 0


class EmulatorCore:
    """The robot's physics and motor drivers, without ROS: MuJoCo, the PD law, commands and reality.

    Times passed in (now_s) are wall-clock seconds on one monotonic clock; the node uses time.perf_counter.
    """

    def __init__(self, spec: RobotSpec, params: SimRobotParams) -> None:
        self.spec = spec
        self.params = params
        self.reality = params.reality
        self.dt_s = 1.0 / params.physics_rate_hz
        self.model = _build_model(spec, params)
        self.data = mujoco.MjData(self.model)
        self.rng = np.random.default_rng(self.reality.seed)
        n = spec.num_joints
        self.joint_index = {name: index for index, name in enumerate(spec.joint_names)}
        self._qpos_ids = joint_qpos_ids(self.model, spec)
        self._dof_ids = joint_dof_ids(self.model, spec)
        self._effort_limit = spec.effort_limit.copy()
        self.floating_base = spec.floating_base and not params.fixed_base  # hung on a stand: fixed
        self._base_qpos_adr, self._base_dof_adr = -1, -1  # a floating base's free joint
        if self.floating_base:
            self._base_qpos_adr, self._base_dof_adr = _free_joint_of(self.model, spec.base_body)
        self._imu_site, self._gyro_adr, self._accel_adr = -1, -1, -1
        if spec.imu_site is not None:
            self._imu_site = self.model.site(spec.imu_site).id
            self._gyro_adr, self._accel_adr = _imu_sensors(self.model, spec.imu_site)
        self._ee_site = -1 if spec.ee_site is None else self.model.site(spec.ee_site).id
        self._base_body = _base_body_of(self.model, spec)
        self.base_frame = self.model.body(self._base_body).name  # frame_id of the ee ground truth
        self._latency_s = self.reality.latency_ms / 1000.0
        self._queue = CommandQueue(COMMAND_QUEUE_CAPACITY, n)
        # the active command in spec order, and the gains actually applied (scaled by the reality)
        self._command = np.zeros((PD_ROW_COUNT, n))
        self._kp = np.zeros(n)
        self._kd = np.zeros(n)
        self._last_command_s = -math.inf
        self._last_pd_command_s = -math.inf  # arrival of the last valid /joint_pd_command
        self.pd_mode = False
        # the measurement at time_s (the state the last step's torque was computed from)
        self.time_s = 0.0
        self.q = np.zeros(n)
        self.dq = np.zeros(n)
        self.tau = np.zeros(n)
        self.base_qpos = np.zeros(7)
        self.base_qvel = np.zeros(6)
        self._error = np.zeros(n)
        self._rate_error = np.zeros(n)
        self._quat = np.zeros(4)
        self._mat = np.zeros(9)
        self.measured_qpos: np.ndarray | None = None  # all of qpos at time_s, kept only for a renderer (keep_qpos)
        self.steps = 0
        self.commands_applied = 0
        self.rejected_commands = 0
        self.nonfinite_commands = 0
        self.ignored_joint_commands = 0
        self._place_at_default_pose()

    @property
    def mode(self) -> str:
        return "pd" if self.pd_mode else "damping"

    @property
    def command_queue_overflows(self) -> int:
        return self._queue.overflows

    def keep_qpos(self) -> None:
        """From the next step on, keep all of qpos at time_s in measured_qpos (the cameras render that state)."""
        self.measured_qpos = self.data.qpos.copy()

    def _place_at_default_pose(self) -> None:
        """Default joint pose, at rest; a floating base upright with the lowest foot just above the floor (z = 0)."""
        model, data = self.model, self.data
        mujoco.mj_resetData(model, data)
        data.qpos[self._qpos_ids] = self.spec.default_joint_pos
        _satisfy_joint_equalities(model, data)
        if self.floating_base:
            self._put_feet_on_the_floor()
        mujoco.mj_forward(model, data)
        self.q[:] = self.spec.default_joint_pos
        if self.floating_base:
            self.base_qpos[:] = data.qpos[self._base_qpos_adr : self._base_qpos_adr + 7]
        elif self.spec.floating_base:  # hung: the base's ground truth is where the stand holds it, at rest
            base = model.body(self.spec.base_body).id
            self.base_qpos[:3], self.base_qpos[3:] = data.xpos[base], data.xquat[base]

    def _put_feet_on_the_floor(self) -> None:
        model, data = self.model, self.data
        mujoco.mj_kinematics(model, data)
        lowest_m = min(
            data.geom_xpos[model.geom(foot).id, 2] - _geom_bottom_offset_m(model, model.geom(foot).id)
            for foot in self.spec.feet
        )
        data.qpos[self._base_qpos_adr + 2] += FOOT_CLEARANCE_M - lowest_m

    # ---- commands (called from the ROS executor thread) ----

    def submit_pd(self, names: Sequence[str], rows: np.ndarray, now_s: float) -> str | None:
        """Queue a /joint_pd_command (5 x n rows in the message's joint order); the rejection reason, or None."""
        reason = self._validate_and_queue(names, rows, now_s)
        if reason is None:
            self._last_pd_command_s = now_s
        return reason

    def _validate_and_queue(self, names: Sequence[str], rows: np.ndarray, now_s: float) -> str | None:
        order = self._spec_order(names)
        if isinstance(order, str):
            return self._reject(order)
        if rows.shape != (PD_ROW_COUNT, len(names)):
            return self._reject(f"rows have shape {rows.shape}, expected ({PD_ROW_COUNT}, {len(names)})")
        if not np.isfinite(rows).all():
            self.nonfinite_commands += 1
            return self._reject("non-finite values")
        if (rows[KP_ROW] < 0.0).any() or (rows[KD_ROW] < 0.0).any():
            return self._reject("negative kp or kd")
        ordered = np.empty_like(rows)
        ordered[:, order] = rows
        self._queue.push(ordered, now_s + self._latency_s)
        return None

    def submit_positions(
        self,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float],
        effort: Sequence[float],
        now_s: float,
    ) -> str | None:
        """Queue a /joint_command (q*, optional dq* and tau_ff, the spec's kp/kd); the rejection reason, or None.

        Ignored (counted, not rejected) while /joint_pd_command is live: a sender of both (the policy node) means
        the same targets, and a driver that takes gains follows the one carrying them instead of alternating.
        """
        if now_s - self._last_pd_command_s <= self.params.command_timeout_s:
            self.ignored_joint_commands += 1
            return None
        n = len(names)
        if len(position) != n:
            return self._reject(f"{len(position)} positions for {n} names")
        for field_name, values in (("velocity", velocity), ("effort", effort)):
            if len(values) not in (0, n):
                return self._reject(f"{len(values)} {field_name} values for {n} names (0 or {n} allowed)")
        order = self._spec_order(names)
        if isinstance(order, str):
            return self._reject(order)
        rows = np.zeros((PD_ROW_COUNT, n))
        rows[Q_ROW] = position
        if len(velocity):
            rows[DQ_ROW] = velocity
        if len(effort):
            rows[FF_ROW] = effort
        rows[KP_ROW] = self.spec.kp[order]
        rows[KD_ROW] = self.spec.kd[order]
        return self._validate_and_queue(names, rows, now_s)

    def _spec_order(self, names: Sequence[str]) -> np.ndarray | str:
        """Spec index of each named joint, or why the names cannot be a full command."""
        unknown = [name for name in names if name not in self.joint_index]
        if unknown:
            return f"unknown joint(s) {unknown}"
        named = set(names)
        if len(named) != len(names):
            return "a joint is named twice"
        missing = [name for name in self.spec.joint_names if name not in named]
        if missing:
            return f"missing joint(s) {missing}"
        return np.array([self.joint_index[name] for name in names])

    def _reject(self, reason: str) -> str:
        self.rejected_commands += 1
        return reason

    # ---- physics (called from the physics thread) ----

    def step(self, now_s: float) -> None:
        """One physics step at wall time now_s: take a due command, PD or damp, integrate."""
        model, data = self.model, self.data
        if self._queue._count and self._queue.pop_due(now_s, self._command):
            np.multiply(self._command[KP_ROW], self.reality.kp_scale, out=self._kp)
            np.multiply(self._command[KD_ROW], self.reality.kd_scale, out=self._kd)
            self._last_command_s = now_s
            self.pd_mode = True
            self.commands_applied += 1
        elif self.pd_mode and now_s - self._last_command_s > self.params.command_timeout_s:
            self.pd_mode = False
        mujoco.mj_step1(model, data)
        self.time_s = data.time
        if self.measured_qpos is not None:
            np.copyto(self.measured_qpos, data.qpos)  # before mj_step2 integrates it past time_s
        np.take(data.qpos, self._qpos_ids, out=self.q)
        np.take(data.qvel, self._dof_ids, out=self.dq)
        self._compute_torque()
        data.qfrc_applied[self._dof_ids] = self.tau
        qa, va = self._base_qpos_adr, self._base_dof_adr
        if qa >= 0:
            self.base_qpos[:] = data.qpos[qa : qa + 7]
            self.base_qvel[:] = data.qvel[va : va + 6]
        mujoco.mj_step2(model, data)
        self.steps += 1

    def _compute_torque(self) -> None:
        tau = self.tau
        if self.pd_mode:
            command = self._command
            np.subtract(command[Q_ROW], self.q, out=self._error)
            np.multiply(self._error, self._kp, out=tau)
            np.subtract(command[DQ_ROW], self.dq, out=self._rate_error)
            self._rate_error *= self._kd
            tau += self._rate_error
            tau += command[FF_ROW]
        else:
            np.multiply(self.dq, -self.params.damping_kd, out=tau)
        np.clip(tau, -self._effort_limit, self._effort_limit, out=tau)

    # ---- measurements at time_s (valid after step) ----

    def read_imu(self, quat_wxyz: np.ndarray, gyro: np.ndarray, accel: np.ndarray) -> None:
        """The IMU site's orientation, angular velocity (site frame) and specific force, with the reality's noise."""
        data = self.data
        mujoco.mju_mat2Quat(quat_wxyz, data.site_xmat[self._imu_site])
        gyro[:] = data.sensordata[self._gyro_adr : self._gyro_adr + 3]
        accel[:] = data.sensordata[self._accel_adr : self._accel_adr + 3]
        sigma = self.reality.imu_noise
        if sigma > 0.0:
            noise = self.rng.normal(0.0, sigma, 6)
            gyro += noise[:3]
            mujoco.mju_quatIntegrate(quat_wxyz, noise[3:], 1.0)  # a body-frame rotation by that rotation vector

    def read_base_state(self, out: np.ndarray) -> None:
        """Ground truth in the order of topics.SIM_BASE_STATE_FIELDS."""
        quat = self.base_qpos[3:7]
        mujoco.mju_quat2Mat(self._mat, quat)
        rotation = self._mat.reshape(3, 3)
        yaw = math.atan2(rotation[1, 0], rotation[0, 0])
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        vx, vy, vz = self.base_qvel[0:3]  # free joint: world-frame linear velocity
        out[0] = self.time_s
        out[1:8] = self.base_qpos
        out[8] = cos_yaw * vx + sin_yaw * vy
        out[9] = -sin_yaw * vx + cos_yaw * vy
        out[10] = vz
        out[11] = float(rotation[2] @ self.base_qvel[3:6])  # body-frame angular velocity -> world z
        out[12] = math.acos(min(1.0, max(-1.0, float(rotation[2, 2]))))

    def read_ee_pose(self, out: np.ndarray) -> None:
        """The end effector's position (m) and orientation (w, x, y, z) in the base frame: ground truth.

        The kinematics mj_step1 computed for time_s (mj_step2 does not recompute them), so it matches q.
        """
        data, site = self.data, self._ee_site
        base_rotation = data.xmat[self._base_body].reshape(3, 3)
        out[:3] = base_rotation.T @ (data.site_xpos[site] - data.xpos[self._base_body])
        rotation = base_rotation.T @ data.site_xmat[site].reshape(3, 3)
        mujoco.mju_mat2Quat(out[3:7], rotation.ravel())
        if out[3 + np.argmax(np.abs(out[3:7]))] < 0.0:
            out[3:7] *= -1.0  # one sign per rotation: the rule of the training env's canonical_quat


def _build_model(spec: RobotSpec, params: SimRobotParams) -> mujoco.MjModel:
    """The spec's MJCF at the physics rate, its servos off, with the reality's friction and mass."""
    _check_reality_fits(spec, params.reality)
    if params.fixed_base and spec.floating_base:
        model = hanging_model(spec, 1.0 / params.physics_rate_hz)
    else:
        model = spec.load_model()
    model.opt.timestep = 1.0 / params.physics_rate_hz
    model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)  # torques come from our PD law
    for foot in spec.feet:
        model.geom_friction[model.geom(foot).id, 0] = params.reality.friction
    if spec.base_body is None:
        return model  # nothing to add mass to (_check_reality_fits refused a nonzero added_mass_kg)
    trunk = model.body(spec.base_body).id
    mass_kg = float(model.body_mass[trunk]) + params.reality.added_mass_kg
    if mass_kg <= 0.0:
        raise SimRobotError(f"parameter added_mass_kg {params.reality.added_mass_kg} leaves the trunk massless")
    model.body_mass[trunk] = mass_kg
    data = mujoco.MjData(model)
    mujoco.mj_setConst(model, data)  # subtree masses and other constants follow the new mass
    return model


def _check_reality_fits(spec: RobotSpec, reality: Reality) -> None:
    """Refuse a reality option the robot has nothing for: a silently ignored --friction would mislead."""
    nominal = Reality()
    checks = (
        ("friction", not spec.feet, "no feet"),
        ("added_mass_kg", spec.base_body is None, "no base body"),
        ("imu_noise", spec.imu_site is None, "no IMU"),
    )
    for key, absent, what in checks:
        if absent and getattr(reality, key) != getattr(nominal, key):
            raise SimRobotError(
                f"parameter {key} {getattr(reality, key)!r}: robot '{spec.name}' has {what}, so it would have no "
                f"effect; leave it at {getattr(nominal, key)!r}"
            )


def _base_body_of(model: mujoco.MjModel, spec: RobotSpec) -> int:
    """The robot's base frame: the world body's child that carries the first joint (the training env's choice)."""
    return int(model.body_rootid[model.jnt_bodyid[model.joint(spec.joint_names[0]).id]])


def _satisfy_joint_equalities(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Put joints coupled by an active joint equality where it wants them (q1 - q1_0 = poly(q2 - q2_0)).

    The arm's second finger follows finger_joint this way; started anywhere else, the first steps would snap it.
    """
    for eq in range(model.neq):
        if int(model.eq_type[eq]) != int(mujoco.mjtEq.mjEQ_JOINT) or not model.eq_active0[eq]:
            continue
        follower, leader = int(model.eq_obj1id[eq]), int(model.eq_obj2id[eq])
        follower_adr = int(model.jnt_qposadr[follower])
        offset = 0.0
        if leader >= 0:
            leader_adr = int(model.jnt_qposadr[leader])
            offset = float(data.qpos[leader_adr] - model.qpos0[leader_adr])
        coefficients = model.eq_data[eq, :5]
        value = sum(float(c) * offset**power for power, c in enumerate(coefficients))
        data.qpos[follower_adr] = model.qpos0[follower_adr] + value


def _free_joint_of(model: mujoco.MjModel, body: str) -> tuple[int, int]:
    """qpos and qvel addresses of the base body's free joint."""
    body_id = model.body(body).id
    joint = int(model.body_jntadr[body_id])
    if joint < 0 or int(model.jnt_type[joint]) != int(mujoco.mjtJoint.mjJNT_FREE):
        raise SimRobotError(f"base body '{body}' has no free joint; the emulator needs a floating base")
    return int(model.jnt_qposadr[joint]), int(model.jnt_dofadr[joint])


def _imu_sensors(model: mujoco.MjModel, site: str) -> tuple[int, int]:
    """sensordata addresses of the gyro and accelerometer on the IMU site."""
    site_id = model.site(site).id
    found: dict[int, int] = {}
    for sensor in range(model.nsensor):
        if int(model.sensor_objtype[sensor]) == int(mujoco.mjtObj.mjOBJ_SITE) and model.sensor_objid[sensor] == site_id:
            found.setdefault(int(model.sensor_type[sensor]), int(model.sensor_adr[sensor]))
    gyro, accel = int(mujoco.mjtSensor.mjSENS_GYRO), int(mujoco.mjtSensor.mjSENS_ACCELEROMETER)
    if gyro not in found or accel not in found:
        raise SimRobotError(f"the MJCF needs a <gyro> and an <accelerometer> on the IMU site '{site}'")
    return found[gyro], found[accel]


def _geom_bottom_offset_m(model: mujoco.MjModel, geom: int) -> float:
    """How far a foot geom reaches below its centre: the radius of a sphere, else its bounding radius."""
    if int(model.geom_type[geom]) == int(mujoco.mjtGeom.mjGEOM_SPHERE):
        return float(model.geom_size[geom, 0])
    return float(model.geom_rbound[geom])


class RateDivider:
    """Whether a stream is due at physics step k, for a stream rate that need not divide the physics rate."""

    def __init__(self, physics_rate_hz: float, rate_hz: float) -> None:
        self.period_steps = max(1.0, physics_rate_hz / rate_hz) if rate_hz > 0.0 else math.inf
        self._next_step = 0.0 if rate_hz > 0.0 else math.inf

    def due(self, step: int) -> bool:
        if step + 1e-9 < self._next_step:
            return False
        self._next_step += self.period_steps
        return True


def _image_message(camera: str, width: int, height: int) -> Image:
    """A preallocated rgb8 image of a camera: only the stamp and the pixels change per frame."""
    message = Image()
    message.header.frame_id = camera
    message.height, message.width = height, width
    message.encoding = "rgb8"
    message.is_bigendian = 0
    message.step = 3 * width
    return message


def _doubles(values: np.ndarray) -> array.array:
    """A float64[] field value that rosidl takes without per-element checks."""
    return array.array("d", values.tobytes())


class CameraSnapshot:
    """The newest state for the cameras: posted by the physics thread, taken by the renderer thread."""

    def __init__(self, nq: int) -> None:
        self._qpos = np.zeros(nq)
        self._stamp = (0, 0)
        self._fresh = False
        self._lock = threading.Lock()
        self._posted = threading.Event()
        self.skipped = 0  # snapshots replaced before the renderer took them

    def post(self, qpos: np.ndarray, sec: int, nanosec: int) -> None:
        """Physics thread: a copy and an event, nothing that could wait on the renderer."""
        with self._lock:
            if self._fresh:
                self.skipped += 1
            self._qpos[:] = qpos
            self._stamp = (sec, nanosec)
            self._fresh = True
        self._posted.set()

    def take(self, out: np.ndarray, timeout_s: float) -> tuple[int, int] | None:
        """Copy the newest untaken snapshot into out; its stamp, or None if none came within timeout_s."""
        if not self._posted.wait(timeout_s):
            return None
        with self._lock:
            self._posted.clear()
            if not self._fresh:
                return None  # taken already: the event was set after the copy under the lock
            out[:] = self._qpos
            self._fresh = False
            return self._stamp


class CameraRenderer:
    """Offscreen renders of a model's fixed cameras from a qpos; create, use and close it in one thread.

    The GL context class is the chosen backend's own (mujoco.egl / mujoco.osmesa), not mujoco.Renderer's, which
    is fixed by MUJOCO_GL when mujoco is first imported: before this process could choose a backend.
    """

    def __init__(self, model: mujoco.MjModel, cameras: Sequence[str], width: int, height: int) -> None:
        offscreen = model.vis.global_
        if width > offscreen.offwidth or height > offscreen.offheight:
            raise SimRobotError(
                f"parameters camera_width x camera_height {width}x{height} exceed the MJCF's offscreen buffer "
                f"{offscreen.offwidth}x{offscreen.offheight} (<visual><global offwidth offheight>)"
            )
        self.model = model
        self._gl = _gl_context_class(choose_gl_backend())(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._data = mujoco.MjData(model)
        self._scene = mujoco.MjvScene(model, maxgeom=10_000)
        self._option = mujoco.MjvOption()
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._pixels = np.zeros((height, width, 3), dtype=np.uint8)  # bottom row first, as GL reads them
        self._cameras = []
        for name in cameras:
            camera = mujoco.MjvCamera()
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = model.camera(name).id
            self._cameras.append(camera)

    def render(self, qpos: np.ndarray, images: Sequence[np.ndarray]) -> None:
        """Each camera's view of the robot at qpos into images (height x width x 3, uint8, top row first)."""
        model, data = self.model, self._data
        data.qpos[:] = qpos
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_camlight(model, data)  # camera and light poses (a tracking camera needs the subtree com)
        everything = int(mujoco.mjtCatBit.mjCAT_ALL)
        for camera, image in zip(self._cameras, images, strict=True):
            mujoco.mjv_updateScene(model, data, self._option, None, camera, everything, self._scene)
            mujoco.mjr_render(self._viewport, self._scene, self._context)
            mujoco.mjr_readPixels(self._pixels, None, self._viewport, self._context)
            image[:] = self._pixels[::-1]

    def close(self) -> None:
        self._context.free()
        self._gl.free()


def _gl_context_class(backend: str) -> type:
    """The GLContext of an offscreen backend (egl, osmesa); mujoco's default for any other MUJOCO_GL."""
    if backend in ("egl", "osmesa"):
        return importlib.import_module(f"mujoco.{backend}").GLContext
    return mujoco.GLContext


class SimRobotNode(Node):
    """ROS 2 face of EmulatorCore: commands in, sensors and ground truth out, physics in a thread of its own."""

    def __init__(self, **node_kwargs: object) -> None:
        super().__init__(topics.SIM_ROBOT_NODE, **node_kwargs)
        self.params = SimRobotParams.from_values(self._declare_parameters())
        self.spec = load_robot_spec(self.params.robot)
        self.core = EmulatorCore(self.spec, self.params)
        self.late_steps = 0
        self._joint_state_publishes = StreamGaps()  # written by the physics thread; a diagnostic, no lock
        self.stalled_s = 0.0  # wall time lost to stalls longer than MAX_CATCH_UP_S (not caught up)
        self.dropped_messages = 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_wall_s = time.perf_counter()
        self._max_work_s = 0.0
        self._last_diag = (time.perf_counter(), time.process_time())
        # cameras: the spec's, unless camera_rate_hz is 0; rendered by a thread of their own (_run_cameras)
        self.camera_names = list(self.spec.cameras) if self.params.camera_rate_hz > 0.0 else []
        self._snapshot = CameraSnapshot(self.core.model.nq)
        self._camera_thread: threading.Thread | None = None
        self._cameras_ready = threading.Event()
        self.camera_frames_published = 0
        self._max_render_s = 0.0
        if self.camera_names:
            self.core.keep_qpos()
        self._make_messages()
        self._make_interfaces()

    # ---- setup ----

    def _declare_parameters(self) -> dict[str, object]:
        # dynamic typing: `-p friction:=1` (an integer) must not abort the node over float vs int
        descriptor = ParameterDescriptor(dynamic_typing=True)
        values = {
            name: self.declare_parameter(name, default, descriptor).value for name, default in KNOWN_PARAMETERS.items()
        }
        # rclpy silently ignores overrides nobody declared; a misspelt reality key must not pass unnoticed
        overrides = getattr(self, "_parameter_overrides", {})
        _refuse_unknown(set(overrides) - {"use_sim_time"})
        return values

    def _make_messages(self) -> None:
        """Preallocated messages: the physics thread only writes values into them."""
        self._joint_state = JointState()
        self._joint_state.name = list(self.spec.joint_names)
        self._imu = Imu()
        self._imu.header.frame_id = self.spec.imu_site or ""
        self._quat = np.zeros(4)
        self._gyro = np.zeros(3)
        self._accel = np.zeros(3)
        self._base_state = Float64MultiArray()
        count = len(topics.SIM_BASE_STATE_FIELDS)
        label = ",".join(topics.SIM_BASE_STATE_FIELDS)
        self._base_state.layout.dim = [MultiArrayDimension(label=label, size=count, stride=count)]
        self._base_row = np.zeros(count)
        self._ee_pose = PoseStamped()
        self._ee_pose.header.frame_id = self.core.base_frame
        self._ee_row = np.zeros(7)
        self._clock_message = Clock()
        rate, spec = self.params.physics_rate_hz, self.spec
        # a stream the robot has nothing for is never due (and has no publisher): rate 0
        self._joint_state_due = RateDivider(rate, self.params.joint_state_rate_hz)
        self._imu_due = RateDivider(rate, self.params.imu_rate_hz if spec.imu_site is not None else 0.0)
        self._base_state_due = RateDivider(rate, self.params.base_state_rate_hz if spec.floating_base else 0.0)
        self._ee_pose_due = RateDivider(rate, self.params.base_state_rate_hz if spec.ee_site is not None else 0.0)
        self._clock_due = RateDivider(rate, min(rate, MAX_CLOCK_RATE_HZ) if self.params.publish_clock else 0.0)
        self._camera_due = RateDivider(rate, self.params.camera_rate_hz if self.camera_names else 0.0)
        width, height = self.params.camera_width, self.params.camera_height
        self._images = [np.zeros((height, width, 3), dtype=np.uint8) for _ in self.camera_names]
        self._image_messages = [_image_message(name, width, height) for name in self.camera_names]

    def _make_interfaces(self) -> None:
        self._joint_state_pub = self.create_publisher(JointState, topics.JOINT_STATES, topics.SENSOR_QOS)
        spec = self.spec
        # no publisher at all for what the robot lacks: a consumer waiting for an IMU must not find one
        self._imu_pub = self.create_publisher(Imu, topics.IMU, topics.SENSOR_QOS) if spec.imu_site else None
        self._base_state_pub = (
            self.create_publisher(Float64MultiArray, topics.SIM_BASE_STATE, RELIABLE_OUT_QOS)
            if spec.floating_base
            else None
        )
        self._ee_pose_pub = (
            self.create_publisher(PoseStamped, topics.SIM_EE_POSE, RELIABLE_OUT_QOS)
            if spec.ee_site is not None
            else None
        )
        self._clock_pub = (
            self.create_publisher(Clock, topics.CLOCK, RELIABLE_OUT_QOS) if self.params.publish_clock else None
        )
        # no publisher for a camera the robot lacks (the quadruped: none), nor with camera_rate_hz 0
        self._image_pubs = [
            self.create_publisher(Image, topics.camera_image_topic(name), topics.CAMERA_QOS)
            for name in self.camera_names
        ]
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.DIAGNOSTICS_QOS)
        self.create_subscription(JointState, topics.JOINT_COMMAND, self._on_joint_command, topics.COMMAND_QOS)
        self.create_subscription(Float64MultiArray, topics.JOINT_PD_COMMAND, self._on_pd_command, topics.COMMAND_QOS)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.get_logger().info(self._streams_summary())

    def _streams_summary(self) -> str:
        params = self.params
        streams = [f"{topics.JOINT_STATES} at {params.joint_state_rate_hz:g} Hz"]
        if self._imu_pub is not None:
            streams.append(f"{topics.IMU} at {params.imu_rate_hz:g} Hz")
        if self._base_state_pub is not None:
            streams.append(f"{topics.SIM_BASE_STATE} at {params.base_state_rate_hz:g} Hz")
        if self._ee_pose_pub is not None:
            streams.append(f"{topics.SIM_EE_POSE} (frame '{self.core.base_frame}') at {params.base_state_rate_hz:g} Hz")
        for name in self.camera_names:
            size = f"{params.camera_width}x{params.camera_height}"
            streams.append(f"{topics.camera_image_topic(name)} ({size} rgb8) at {params.camera_rate_hz:g} Hz")
        base = "floating base" if self.core.floating_base else "fixed base"
        if self.params.fixed_base and self.spec.floating_base:
            base = "hung on a test stand"
        imu = "" if self.spec.imu_site else ", no IMU"
        return f"robot '{self.spec.name}' ({base}{imu}): publishing " + ", ".join(streams)

    # ---- physics thread ----

    def start(self) -> None:
        """Start the renderer (if the robot has cameras) and, once its GL context is up, stepping in real time.

        SimRobotError if the renderer could not start: the GL set-up must not run beside the physics loop either.
        """
        if self.camera_names:
            self._camera_thread = threading.Thread(target=self._cameras_thread, name="sim_robot_cameras", daemon=True)
            self._camera_thread.start()
            if not self._cameras_ready.wait(CAMERA_START_TIMEOUT_S) or self.failure is not None:
                self._stop.set()
                raise SimRobotError(f"the camera renderer did not start: {self.failure or 'timed out'}")
        self._thread = threading.Thread(target=self._physics_thread, name="sim_robot_physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._camera_thread):
            if thread is not None:
                thread.join(timeout=5.0)

    def _physics_thread(self) -> None:
        try:
            self._run_physics()
        except Exception as error:  # a dead physics thread must take the node down, not leave it publishing nothing
            if self._stop.is_set() or not self.context.ok():
                return  # shutting down under a publish
            self.failure = error
            self.get_logger().fatal(f"physics thread failed: {error!r}")
            self.context.try_shutdown()

    def _run_physics(self) -> None:
        core, dt_s, stop = self.core, self.core.dt_s, self._stop
        perf_counter, sleep = time.perf_counter, time.sleep
        start_s = perf_counter()
        self._start_wall_s = start_s
        step = 0
        while not stop.is_set():
            slot_start_s = start_s + step * dt_s  # absolute: sleep overshoot never accumulates
            now_s = perf_counter()
            if now_s < slot_start_s:
                sleep(slot_start_s - now_s)
                now_s = perf_counter()
            core.step(now_s)
            self._publish_measurements(step)
            step += 1
            finished_s = perf_counter()
            if finished_s > slot_start_s + dt_s:
                self.late_steps += 1  # and no sleep before the next step: catch up
            behind_s = finished_s - (start_s + step * dt_s)
            if behind_s > MAX_CATCH_UP_S:
                # after a stall (SIGSTOP, a long GC, a starved core) running the backlog back to back would play
                # the robot faster than real time with fresh stamps; real hardware loses that time: so do we
                start_s += behind_s
                self.stalled_s += behind_s
            if finished_s - now_s > self._max_work_s:
                self._max_work_s = finished_s - now_s

    def _publish_measurements(self, step: int) -> None:
        joint_state = self._joint_state_due.due(step)
        imu = self._imu_due.due(step)
        base_state = self._base_state_due.due(step)
        ee_pose = self._ee_pose_due.due(step)
        clock = self._clock_due.due(step)
        camera = self._camera_due.due(step)
        if not (joint_state or imu or base_state or ee_pose or clock or camera):
            return
        sec, nanosec = self._stamp()
        if camera:
            self._snapshot.post(self.core.measured_qpos, sec, nanosec)  # rendered by _run_cameras
        if joint_state:
            self._publish_joint_state(sec, nanosec)
        if imu:
            self._publish_imu(sec, nanosec)
        if base_state and self._base_state_pub is not None:
            self.core.read_base_state(self._base_row)
            self._base_state.data = _doubles(self._base_row)
            self._base_state_pub.publish(self._base_state)
        if ee_pose:
            self._publish_ee_pose(sec, nanosec)
        if clock and self._clock_pub is not None:
            sim_ns = round(self.core.time_s * 1e9)
            self._clock_message.clock.sec, self._clock_message.clock.nanosec = divmod(sim_ns, 1_000_000_000)
            self._clock_pub.publish(self._clock_message)

    def _stamp(self) -> tuple[int, int]:
        """(sec, nanosec) of the measurement: simulated time with publish_clock, else the system (ROS) time."""
        ns = round(self.core.time_s * 1e9) if self.params.publish_clock else time.time_ns()
        return divmod(ns, 1_000_000_000)

    def _dropped(self) -> bool:
        """The reality's message loss: one draw per outgoing sensor message."""
        drop_rate = self.params.reality.drop_rate
        if drop_rate > 0.0 and self.core.rng.random() < drop_rate:
            self.dropped_messages += 1
            return True
        return False

    def _publish_joint_state(self, sec: int, nanosec: int) -> None:
        if self._dropped():
            return
        message, core = self._joint_state, self.core
        message.header.stamp.sec, message.header.stamp.nanosec = sec, nanosec
        message.position = _doubles(core.q)
        message.velocity = _doubles(core.dq)
        message.effort = _doubles(core.tau)
        self._joint_state_pub.publish(message)
        self._joint_state_publishes.mark(time.monotonic())

    def _publish_ee_pose(self, sec: int, nanosec: int) -> None:
        """Ground truth: never dropped, never noisy (drop_rate and imu_noise are the robot's, not the referee's)."""
        message, row = self._ee_pose, self._ee_row
        self.core.read_ee_pose(row)
        message.header.stamp.sec, message.header.stamp.nanosec = sec, nanosec
        position, orientation = message.pose.position, message.pose.orientation
        position.x, position.y, position.z = float(row[0]), float(row[1]), float(row[2])
        orientation.x, orientation.y, orientation.z, orientation.w = topics.quaternion_ros_from_wxyz(row[3:7])
        self._ee_pose_pub.publish(message)

    def _publish_imu(self, sec: int, nanosec: int) -> None:
        if self._imu_pub is None or self._dropped():
            return
        message = self._imu
        self.core.read_imu(self._quat, self._gyro, self._accel)
        message.header.stamp.sec, message.header.stamp.nanosec = sec, nanosec
        x, y, z, w = topics.quaternion_ros_from_wxyz(self._quat)
        orientation = message.orientation
        orientation.x, orientation.y, orientation.z, orientation.w = x, y, z, w
        gyro, accel = self._gyro, self._accel
        angular, linear = message.angular_velocity, message.linear_acceleration
        angular.x, angular.y, angular.z = float(gyro[0]), float(gyro[1]), float(gyro[2])
        linear.x, linear.y, linear.z = float(accel[0]), float(accel[1]), float(accel[2])
        self._imu_pub.publish(message)

    # ---- cameras (renderer thread) ----

    def _cameras_thread(self) -> None:
        try:
            self._run_cameras()
        except Exception as error:  # as for the physics thread: a dead renderer takes the node down
            if self._stop.is_set() or not self.context.ok():
                return
            self.failure = error
            if not self._cameras_ready.is_set():
                self._cameras_ready.set()  # start() reports it
                return
            self.get_logger().fatal(f"camera thread failed: {error!r}")
            self.context.try_shutdown()

    def _run_cameras(self) -> None:
        params = self.params
        renderer = CameraRenderer(self.core.model, self.camera_names, params.camera_width, params.camera_height)
        try:
            self._cameras_ready.set()
            qpos = np.zeros(self.core.model.nq)
            while not self._stop.is_set():
                stamp = self._snapshot.take(qpos, CAMERA_WAIT_S)
                if stamp is None:
                    continue
                started_s = time.perf_counter()
                renderer.render(qpos, self._images)
                for message, image, publisher in zip(self._image_messages, self._images, self._image_pubs, strict=True):
                    message.header.stamp.sec, message.header.stamp.nanosec = stamp
                    message.data = array.array("B", image.tobytes())
                    publisher.publish(message)
                self.camera_frames_published += 1
                self._max_render_s = max(self._max_render_s, time.perf_counter() - started_s)
        finally:
            renderer.close()

    # ---- commands (executor thread) ----

    def _on_pd_command(self, message: Float64MultiArray) -> None:
        now_s = time.perf_counter()
        try:
            names, rows = topics.unpack_pd_command(message)
        except ValueError as error:
            self.core.rejected_commands += 1
            self._log_rejection(topics.JOINT_PD_COMMAND, str(error))
            return
        reason = self.core.submit_pd(names, rows, now_s)
        if reason is not None:
            self._log_rejection(topics.JOINT_PD_COMMAND, reason)

    def _on_joint_command(self, message: JointState) -> None:
        now_s = time.perf_counter()
        reason = self.core.submit_positions(message.name, message.position, message.velocity, message.effort, now_s)
        if reason is not None:
            self._log_rejection(topics.JOINT_COMMAND, reason)

    def _log_rejection(self, topic: str, reason: str) -> None:
        self.get_logger().warning(
            f"{topic}: command rejected ({reason}); keeping the previous one "
            f"({self.core.rejected_commands} rejected so far)",
            throttle_duration_sec=5.0,
        )

    # ---- diagnostics (executor thread) ----

    def realtime_factor(self) -> float:
        """Simulated seconds per wall second since the physics thread started."""
        wall_s = time.perf_counter() - self._start_wall_s
        return self.core.steps * self.core.dt_s / wall_s if wall_s > 0.0 else 0.0

    def diagnostic_values(self) -> dict[str, str]:
        wall_s, cpu_s = time.perf_counter(), time.process_time()
        last_wall_s, last_cpu_s = self._last_diag
        self._last_diag = (wall_s, cpu_s)
        cpu_percent = 100.0 * (cpu_s - last_cpu_s) / max(wall_s - last_wall_s, 1e-9)
        max_work_us, self._max_work_s = self._max_work_s * 1e6, 0.0
        core = self.core
        return {
            "realtime_factor": f"{self.realtime_factor():.4f}",
            "physics_steps": str(core.steps),
            "late_steps": str(self.late_steps),
            "stalled_s": f"{self.stalled_s:.3f}",
            "dropped_messages": str(self.dropped_messages),
            # the longest time between two /joint_states sent since the previous status (a stall shows here)
            "joint_state_max_publish_gap_ms": f"{self._joint_state_publishes.take_max_gap_ms(time.monotonic()):.1f}",
            "rejected_commands": str(core.rejected_commands),
            "nonfinite_commands": str(core.nonfinite_commands),
            "command_queue_overflows": str(core.command_queue_overflows),
            "commands_applied": str(core.commands_applied),
            "ignored_joint_commands": str(core.ignored_joint_commands),
            "mode": core.mode,
            "sim_time_s": f"{core.time_s:.3f}",
            "max_step_work_us": f"{max_work_us:.0f}",  # since the last diagnostics message
            "cpu_percent": f"{cpu_percent:.1f}",  # this process, 100 = one core, since the last message
            **self._camera_diagnostics(),
        }

    def _camera_diagnostics(self) -> dict[str, str]:
        if not self.camera_names:
            return {}
        max_render_ms, self._max_render_s = self._max_render_s * 1e3, 0.0
        return {
            "camera_frames_published": str(self.camera_frames_published),  # each frame: every camera once
            "camera_frames_skipped": str(self._snapshot.skipped),  # replaced before the renderer took them
            "camera_max_render_ms": f"{max_render_ms:.1f}",  # all cameras and publishing, since the last message
        }

    def _publish_diagnostics(self) -> None:
        values = self.diagnostic_values()
        status = DiagnosticStatus()
        status.name = f"{topics.SIM_ROBOT_NODE}: emulator"
        status.hardware_id = self.spec.name
        realtime = float(values["realtime_factor"])
        status.level = DiagnosticStatus.OK if realtime >= REALTIME_WARN_FACTOR else DiagnosticStatus.WARN
        status.message = values["mode"] if realtime >= REALTIME_WARN_FACTOR else f"behind real time ({realtime:.3f})"
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        message = DiagnosticArray()
        message.header.stamp = self.get_clock().now().to_msg()
        message.status = [status]
        self._diagnostics_pub.publish(message)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM; 0 on a clean stop, 1 if the physics failed, 2 on bad parameters."""
    args = list(sys.argv if argv is None else argv)
    extra = [arg for arg in remove_ros_args(args) if arg.startswith("-")]  # the program name is not an option
    if extra:
        print(f"simreal_sim_robot: unexpected argument(s) {extra}; use --ros-args -p name:=value", file=sys.stderr)
        return 2
    rclpy.init(args=args)
    try:
        node = SimRobotNode()
    except SimrealError as error:
        print(f"simreal_sim_robot: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        node.start()
    except SimrealError as error:
        print(f"simreal_sim_robot: {error}", file=sys.stderr)
        node.stop()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
        return 2
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # SIGINT / SIGTERM: rclpy's handlers shut the context down
    finally:
        node.stop()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 1 if node.failure is not None else 0


def run_sim_robot(params_file: Path | None, overrides: dict[str, object]) -> int:
    """`simreal sim-robot`: main() with `--ros-args --params-file F -p key:=value ...`."""
    return main(ros_arguments(params_file, overrides))


def ros_arguments(params_file: Path | None, overrides: Mapping[str, object]) -> list[str]:
    """The ROS argv for a parameter file and name -> value overrides (unknown names fail here, not silently)."""
    _refuse_unknown(overrides)
    return [topics.SIM_ROBOT_NODE, *ros_args.ros_arguments(params_file, overrides)]


__all__ = [
    "CAMERA_DEFAULTS",
    "KNOWN_PARAMETERS",
    "PARAMETER_DEFAULTS",
    "CameraRenderer",
    "CameraSnapshot",
    "CommandQueue",
    "EmulatorCore",
    "Reality",
    "SimRobotError",
    "SimRobotNode",
    "SimRobotParams",
    "main",
    "run_sim_robot",
]

if __name__ == "__main__":
    sys.exit(main())
