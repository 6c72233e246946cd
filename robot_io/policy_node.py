"""The policy node `simreal_policy` (DESIGN.md §5): ROS 2 in and out around simreal_rt's ControlCore.

The core (state machine, watchdog, observation, network, action processing) is C++; this node only moves
messages. A dedicated thread ticks the core against absolute monotonic deadlines while rclpy's executor spins
in the main thread (subscriptions, services, diagnostics).

What the node reads follows the bundle's observation: /imu/data only when a term reads the IMU (base_ang_vel,
projected_gravity; without one the core has no stale-IMU or tilt fault either, e.g. a fixed-base arm), and
/target_pose (geometry_msgs/PoseStamped in the `base_frame` frame) only when the policy observes target_pose;
such a policy does not start before the first valid target pose.

    python -m robot_io.policy_node --ros-args --params-file launch/params/quadruped.yaml -p bundle:=/abs/path
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger

import simreal_rt
from robot_io import ros_args, topics
from robot_io.excitation import ExcitationError, ExcitationTable, SysidRecorder, load_excitation, write_log
from robot_io.tick_stats import RingBuffer, StreamGaps
from sim.errors import SimrealError
from sim.robot_params import load_robot_params
from sim.robot_spec import load_robot_spec

# How long the control thread may wait for the GIL each time it takes it back (before the tick, after the core
# and after each publish). CPython's default 5 ms is a quarter period; with the executor busy on 1.5 kHz of sensor
# messages, 0.5 ms still cost ~0.8 ms per tick, 0.1 ms ~0.25 ms.
SWITCH_INTERVAL_S = 0.0001
# Real-time priority for the control thread where the OS allows it (root or an rtprio limit); otherwise the
# default policy. Low on purpose: below the kernel's IRQ threads (50) and DDS's threads keep running.
CONTROL_THREAD_FIFO_PRIORITY = 10
# ticks kept for the timing statistics: 5 min at 50 Hz. Percentiles over them are computed once a second with
# the GIL held (about 0.15 ms per statistic at this size), so a larger window would show up as control jitter.
STATS_CAPACITY = 15_000
SHUTDOWN_DAMPING_TICKS = 3  # DAMPING commands published on SIGINT/SIGTERM before the node exits
MOTION_REQUESTS = ("stand_up", "start_policy")  # the requests that make the robot move under its own power
EXCITATION_BLOCKS = ("stand_up", "start_policy", "sit_down")  # refused while an excitation plays; damp never is
LOG_THROTTLE_S = 5.0

# Exactly the `simreal_policy` section of launch/params/quadruped.yaml (a test compares the two).
PARAMETER_DEFAULTS: dict[str, object] = {
    "bundle": "policies/pretrained/quadruped-flat/bundle",
    "control_rate_hz": 0.0,
    "cmd_vel_timeout_s": 0.5,
    "startup_timeout_s": 10.0,
    "stand_up_duration_s": 2.0,
    "sit_down_duration_s": 2.0,
    "max_target_step_rad": 0.02,
    "inference_budget_s": 0.0,
    "sit_joint_names": [f"{leg}_{part}" for leg in ("FR", "FL", "RR", "RL") for part in ("hip", "thigh", "calf")],
    "sit_joint_pos": [-0.1, 1.2, -2.5, 0.1, 1.2, -2.5, -0.1, 1.2, -2.5, 0.1, 1.2, -2.5],
    "diagnostics_rate_hz": 1.0,
    "require_estop": False,
    # added with the arm; the defaults are the quadruped's behaviour (see test_policy_node.py)
    "stand_up_via_sit_pose": True,
    "base_frame": "base",
    # system identification (robot_io/excitation.py): a table played on ~/excite while STANDING, and its log
    "excitation_file": "",
    "sysid_log": "",
    # the robot's parameter overrides (sim/robot_params.py): the node applies their joint_offsets_rad
    "robot_params": "",
}


class StartupError(Exception):
    """The node cannot start; the message is the one line the operator sees."""


@dataclass(frozen=True)
class PolicyParams:
    """The node's parameters, type-checked."""

    bundle: Path
    control_rate_hz: float
    cmd_vel_timeout_s: float
    startup_timeout_s: float
    stand_up_duration_s: float
    sit_down_duration_s: float
    max_target_step_rad: float
    inference_budget_s: float
    sit_joint_pos: dict[str, float]  # empty: the bundle's standing pose
    diagnostics_rate_hz: float
    require_estop: bool  # refuse stand_up / start_policy while no /estop publisher is connected
    stand_up_via_sit_pose: bool  # fold into the sit pose before rising (legged robots); false: straight up
    base_frame: str  # the only frame_id /target_pose may carry (an empty frame_id counts as this one)
    excitation_file: Path | None  # None: no ~/excite service
    sysid_log: Path | None  # where the excitation's log goes (required with excitation_file)
    robot_params: Path | None  # encoder offsets: reading = true angle + offset (simreal calibrate joints)

    def core_options(self) -> simreal_rt.CoreOptions:
        options = simreal_rt.CoreOptions()
        options.sit_joint_pos = dict(self.sit_joint_pos)
        options.stand_up_duration_s = self.stand_up_duration_s
        options.stand_up_via_sit_pose = self.stand_up_via_sit_pose
        options.sit_down_duration_s = self.sit_down_duration_s
        options.max_target_step_rad = self.max_target_step_rad
        options.inference_budget_s = self.inference_budget_s
        return options


def _number(name: str, value: object, *, positive: bool = False) -> float:
    """A finite float (ints accepted, so `-p rate:=50` works) that is >= 0, or > 0 when `positive`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StartupError(f"parameter {name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise StartupError(f"parameter {name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _list(name: str, value: object, kind: type) -> list:
    """A list of `kind` (an empty or unset list parameter arrives as None or a byte array)."""
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else None
    if items is None or not all(isinstance(v, kind) or (kind is float and type(v) is int) for v in items):
        raise StartupError(f"parameter {name} must be a list of {kind.__name__}, got {value!r}")
    return [kind(v) for v in items]


def read_params(node: Node) -> PolicyParams:
    """Declare every parameter with its default and read it back; StartupError naming a bad one."""
    values = {}
    for name, default in PARAMETER_DEFAULTS.items():
        # dynamic typing: rclpy's strict typing would reject `control_rate_hz: 50` with a traceback
        node.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True))
        values[name] = node.get_parameter(name).value
    names = _list("sit_joint_names", values["sit_joint_names"], str)
    positions = _list("sit_joint_pos", values["sit_joint_pos"], float)
    if len(names) != len(positions):
        raise StartupError(f"sit_joint_names has {len(names)} entries but sit_joint_pos has {len(positions)}")
    if not isinstance(values["bundle"], str) or not values["bundle"]:
        raise StartupError(f"parameter bundle must be a directory path, got {values['bundle']!r}")
    if not isinstance(values["base_frame"], str) or not values["base_frame"]:
        raise StartupError(f"parameter base_frame must be a frame name, got {values['base_frame']!r}")
    excitation_file, sysid_log = _optional_path(values, "excitation_file"), _optional_path(values, "sysid_log")
    if (excitation_file is None) != (sysid_log is None):
        raise StartupError("parameters excitation_file and sysid_log go together: give both or neither")
    if sysid_log is not None:  # found now, not after the whole excitation has run
        folder = _existing_parent(sysid_log)
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise StartupError(f"parameter sysid_log {sysid_log}: cannot create it under {folder}")
    return PolicyParams(
        bundle=Path(values["bundle"]).expanduser().resolve(),  # relative to the current directory
        control_rate_hz=_number("control_rate_hz", values["control_rate_hz"]),
        cmd_vel_timeout_s=_number("cmd_vel_timeout_s", values["cmd_vel_timeout_s"], positive=True),
        startup_timeout_s=_number("startup_timeout_s", values["startup_timeout_s"], positive=True),
        stand_up_duration_s=_number("stand_up_duration_s", values["stand_up_duration_s"], positive=True),
        sit_down_duration_s=_number("sit_down_duration_s", values["sit_down_duration_s"], positive=True),
        max_target_step_rad=_number("max_target_step_rad", values["max_target_step_rad"], positive=True),
        inference_budget_s=_number("inference_budget_s", values["inference_budget_s"]),
        sit_joint_pos=dict(zip(names, positions, strict=True)),
        diagnostics_rate_hz=_number("diagnostics_rate_hz", values["diagnostics_rate_hz"]),
        require_estop=_flag("require_estop", values["require_estop"]),
        stand_up_via_sit_pose=_flag("stand_up_via_sit_pose", values["stand_up_via_sit_pose"]),
        base_frame=values["base_frame"],
        excitation_file=excitation_file,
        sysid_log=sysid_log,
        robot_params=_optional_path(values, "robot_params"),
    )


def _existing_parent(path: Path) -> Path:
    """The nearest folder above `path` that exists (the log's folders are created when it is written)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _optional_path(values: dict[str, object], name: str) -> Path | None:
    value = values[name]
    if not isinstance(value, str):
        raise StartupError(f"parameter {name} must be a file path or empty, got {value!r}")
    return Path(value).expanduser().resolve() if value else None


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise StartupError(f"parameter {name} must be true or false, got {value!r}")
    return value


def stamp_s(stamp) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def joint_name_mismatch(bundle_names: Sequence[str], driver_names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(bundle joints missing from the driver, driver joints not in the bundle), each in its source's order."""
    driver, bundle = set(driver_names), set(bundle_names)
    return [n for n in bundle_names if n not in driver], [n for n in driver_names if n not in bundle]


class PolicyNode(Node):
    """simreal_policy: subscriptions and services in the executor's thread, the control tick in its own."""

    def __init__(self, *, context: Context | None = None, parameter_overrides: list[Parameter] | None = None):
        super().__init__(topics.POLICY_NODE, context=context, parameter_overrides=parameter_overrides)
        try:
            self.params = read_params(self)
            self._spec = self._load_bundle_spec()
        except StartupError:
            self.destroy_node()
            raise
        self.bundle_joint_names: list[str] = list(self._spec["joint_names"])
        bundle_rate_hz = 1.0 / float(self._spec["control_dt"])
        self.control_rate_hz = self.params.control_rate_hz or bundle_rate_hz
        if abs(self.control_rate_hz - bundle_rate_hz) > 1e-6 * bundle_rate_hz:
            self.get_logger().warning(
                f"control_rate_hz {self.control_rate_hz:g} differs from the bundle's {bundle_rate_hz:g} Hz"
            )
        self.period_s = 1.0 / self.control_rate_hz
        self.excitation = self._load_excitation()
        self.encoder_offsets_rad = self._load_encoder_offsets()  # joint name -> rad, only the nonzero ones
        self._excitation_start_s: float | None = None  # ROS time the playing excitation started at
        self._recorder: SysidRecorder | None = None
        self.excitation_status = "idle" if self.excitation is not None else "none"
        self._excite_fresh = False
        self._clock = self.get_clock()
        self._lock = threading.Lock()  # guards the latest-message references below
        self._joint_state: JointState | None = None
        self._imu: Imu | None = None
        self._joint_state_arrivals = StreamGaps()  # a stale-input fault says whether messages stopped arriving
        self._imu_arrivals = StreamGaps()
        self._twist: Twist | None = None
        self._twist_arrival_s = -math.inf  # time.monotonic() of the last /cmd_vel
        self._target_pose: np.ndarray | None = None  # 7 values (position, unit quaternion w, x, y, z), never mutated
        self._target_pose_arrival_s = -math.inf  # time.monotonic() of the last accepted /target_pose
        self.rejected_target_poses = 0  # wrong frame, non-finite or zero quaternion
        self._rejected_targets_reported = 0
        self._estop = False
        self.driver_joint_names: list[str] | None = None
        self._driver_fault_pending = False  # a bad /joint_states before the core existed: damp at start
        self.rejected_joint_states = 0  # messages with changed names or wrong lengths
        self._rejected_reported = 0
        self.core: simreal_rt.ControlCore | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._shutdown_requested = threading.Event()
        self.rejected_cmd_vel = 0
        self.loop_error: BaseException | None = None
        self._create_subscriptions()

    # ---- start-up ---------------------------------------------------------------------------------------------

    def _load_bundle_spec(self) -> dict:
        """Load the bundle and check the options against it now, not after waiting for the robot.

        Also learns from the core which inputs the bundle needs (uses_imu, observes_target_pose), so the
        subscriptions follow the core's own reading of the bundle instead of a second copy of that rule.
        """
        try:
            spec = simreal_rt.load_bundle(str(self.params.bundle)).spec
        except ValueError as error:  # BundleError derives from ValueError
            raise StartupError(f"cannot use bundle {self.params.bundle}: {error}") from None
        try:  # the bundle's own joint names as the driver's: only the options can fail here
            probe = simreal_rt.ControlCore(
                str(self.params.bundle), list(spec["joint_names"]), self.params.core_options()
            )
        except ValueError as error:
            raise StartupError(
                f"parameters sit_joint_names / sit_joint_pos / *_duration_s / max_target_step_rad / "
                f"inference_budget_s do not fit bundle {self.params.bundle}: {error}"
            ) from None
        self.uses_imu: bool = probe.uses_imu
        self.observes_target_pose: bool = probe.observes_target_pose
        return spec

    def _load_encoder_offsets(self) -> dict[str, float]:
        """The robot_params file's joint offsets by joint name; StartupError naming the file and the problem."""
        if self.params.robot_params is None:
            return {}
        try:
            spec = load_robot_spec(str(self._spec["robot"]))
            offsets = load_robot_params(self.params.robot_params, spec).offsets_rad()
        except SimrealError as error:
            self.destroy_node()
            raise StartupError(f"parameter robot_params: {error}") from None
        return {name: float(value) for name, value in zip(spec.joint_names, offsets, strict=True) if value != 0.0}

    def _load_excitation(self) -> ExcitationTable | None:
        if self.params.excitation_file is None:
            return None
        try:
            return load_excitation(
                self.params.excitation_file,
                self.bundle_joint_names,
                np.asarray(self._spec["default_joint_pos"], dtype=float),
                self._spec["safety"],
                self.params.max_target_step_rad,
                self.period_s,
            )
        except ExcitationError as error:
            self.destroy_node()
            raise StartupError(str(error)) from None

    def _create_subscriptions(self) -> None:
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, topics.SENSOR_QOS)
        if self.uses_imu:  # a robot without an IMU publishes none, and nothing here may wait for one
            self.create_subscription(Imu, topics.IMU, self._on_imu, topics.SENSOR_QOS)
        if self.observes_target_pose:
            self.create_subscription(PoseStamped, topics.TARGET_POSE, self._on_target_pose, topics.TARGET_POSE_QOS)
        self.create_subscription(Twist, topics.CMD_VEL, self._on_cmd_vel, topics.CMD_VEL_QOS)
        # DESIGN.md §5 asks for a latched (transient local) /estop; a volatile e-stop publisher cannot match
        # a transient-local reader, so a second, volatile reader hears those: a pressed e-stop is never lost
        self.create_subscription(Bool, topics.ESTOP, self._on_estop, topics.ESTOP_QOS)
        self.create_subscription(Bool, topics.ESTOP, self._on_estop, topics.ESTOP_VOLATILE_QOS)

    def wait_for_sensors(self, executor: SingleThreadedExecutor) -> bool:
        """Spin until the first /joint_states and /imu/data (if the bundle reads the IMU); False on shutdown,
        StartupError on timeout. /target_pose is not waited for: the robot may stand before it has a goal."""
        deadline_s = time.monotonic() + self.params.startup_timeout_s
        while self.context.ok():
            with self._lock:
                have_joints = self._joint_state is not None
                have_imu = self._imu is not None or not self.uses_imu
            if have_joints and have_imu:
                return True
            if time.monotonic() > deadline_s:
                missing = topics.JOINT_STATES if not have_joints else topics.IMU
                raise StartupError(
                    f"no {missing} within startup_timeout_s = {self.params.startup_timeout_s:g} s: is the robot "
                    f"driver running, on the same ROS_DOMAIN_ID?"
                )
            executor.spin_once(timeout_sec=0.05)
        return False

    def build_core(self) -> None:
        """The ControlCore for the driver's joint names; StartupError listing missing and extra names."""
        driver_names = self.driver_joint_names or []
        missing, extra = joint_name_mismatch(self.bundle_joint_names, driver_names)
        if missing:
            raise StartupError(
                f"{topics.JOINT_STATES} lacks bundle joints, refusing to start: missing {missing} "
                f"(in the bundle, not in {topics.JOINT_STATES}); extra {extra} "
                f"(in {topics.JOINT_STATES}, not in the bundle)"
            )
        try:
            self.core = simreal_rt.ControlCore(str(self.params.bundle), driver_names, self.params.core_options())
        except ValueError as error:  # e.g. duplicate driver joint names
            raise StartupError(f"cannot control {driver_names}: {error}") from None
        if extra:
            self.get_logger().info(f"ignoring driver joints not in the bundle: {extra}")
        # readings are true angle + offset: subtracted from what comes in, added to what goes out
        self._reading_offsets_rad = np.array([self.encoder_offsets_rad.get(name, 0.0) for name in driver_names])
        self._command_offsets_rad = np.array([self.encoder_offsets_rad.get(n, 0.0) for n in self.bundle_joint_names])
        if self.encoder_offsets_rad:
            self.get_logger().info(f"encoder offsets from {self.params.robot_params}: {self.encoder_offsets_rad}")
        if self._driver_fault_pending:
            self.core.request("damp", self.now_s())

    def start(self) -> None:
        """Publishers, services, diagnostics and the control thread (after build_core)."""
        assert self.core is not None, "build_core() first"
        self._create_outputs()
        for name in topics.SERVICES:
            self.create_service(Trigger, f"~/{name}", partial(self._on_request, name))
        if self.excitation is not None:
            self.create_service(Trigger, f"~/{topics.EXCITE}", self._on_excite)
        if self.params.diagnostics_rate_hz > 0:
            self.create_timer(1.0 / self.params.diagnostics_rate_hz, self._publish_diagnostics)
        self._thread = threading.Thread(target=self._run_loop, name="simreal_policy_control", daemon=True)
        self._thread.start()
        inputs = "" if self.uses_imu else f"; no IMU (the policy reads none): {topics.IMU} is not used"
        if self.observes_target_pose:
            inputs += f"; target pose from {topics.TARGET_POSE} in frame '{self.params.base_frame}'"
        self.get_logger().info(
            f"controlling {len(self.bundle_joint_names)} joints at {self.control_rate_hz:g} Hz "
            f"with {self.params.bundle}{inputs}"
        )

    def running(self) -> bool:
        """The control thread is ticking (so a shutdown can still command DAMPING)."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop the control thread (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    # ---- inputs (executor thread) -----------------------------------------------------------------------------

    def _on_joint_state(self, msg: JointState) -> None:
        if self.driver_joint_names is None:  # the first message names the driver's joints, once
            self.driver_joint_names = list(msg.name)
        elif msg.name != self.driver_joint_names:
            self._reject_joint_state(f"{topics.JOINT_STATES} joint names changed from {self.driver_joint_names}")
            return
        n = len(self.driver_joint_names)
        if len(msg.position) != n or len(msg.velocity) != n:
            self._reject_joint_state(
                f"{topics.JOINT_STATES} has {len(msg.position)} positions and {len(msg.velocity)} velocities "
                f"for {n} joint names"
            )
            return
        with self._lock:
            self._joint_state = msg  # never mutated after this: the tick copies from it
            self._joint_state_arrivals.mark(time.monotonic())
            recorder = self._recorder
        if recorder is not None:  # in true angles, as the core sees them (the offsets exist once the core does)
            position = np.asarray(msg.position) - self._reading_offsets_rad
            recorder.add_state(stamp_s(msg.header.stamp), msg.name, position, msg.velocity)

    def _reject_joint_state(self, problem: str) -> None:
        """A malformed /joint_states is a fault: damp (every time, so a reset cannot outlive it) and log."""
        self.rejected_joint_states += 1
        self.get_logger().error(f"{problem}: damping", throttle_duration_sec=LOG_THROTTLE_S)
        if self.core is None:
            self._driver_fault_pending = True
        else:
            self.core.request("damp", self.now_s())

    def _on_imu(self, msg: Imu) -> None:
        with self._lock:
            self._imu = msg
            self._imu_arrivals.mark(time.monotonic())

    def _on_cmd_vel(self, msg: Twist) -> None:
        arrival_s = time.monotonic()  # Twist has no stamp: its age counts from arrival
        if not all(math.isfinite(v) for v in (msg.linear.x, msg.linear.y, msg.angular.z)):
            self.rejected_cmd_vel += 1  # a buggy teleop must not drop a walking robot into DAMPING
            return
        with self._lock:
            self._twist, self._twist_arrival_s = msg, arrival_s

    def _on_target_pose(self, msg: PoseStamped) -> None:
        """Keep the latest valid goal; one in another frame or without a rotation is ignored with a warning."""
        arrival_s = time.monotonic()  # the goal's age counts from arrival: a planner's stamp may be anything
        frame = msg.header.frame_id
        if frame and frame != self.params.base_frame:
            # no tf here: a goal in another frame would be read as a base-frame goal, i.e. a wrong place
            self._reject_target_pose(f"frame '{frame}', expected '{self.params.base_frame}' (no transforms here)")
            return
        try:
            pose = topics.target_pose_from_ros(msg.pose)
        except ValueError as error:
            self._reject_target_pose(str(error))
            return
        with self._lock:
            self._target_pose, self._target_pose_arrival_s = pose, arrival_s

    def _reject_target_pose(self, problem: str) -> None:
        self.rejected_target_poses += 1
        self.get_logger().warning(f"ignoring {topics.TARGET_POSE}: {problem}", throttle_duration_sec=LOG_THROTTLE_S)

    def _on_estop(self, msg: Bool) -> None:
        with self._lock:
            changed, self._estop = self._estop != msg.data, bool(msg.data)
        # one severity per call site: rclpy refuses a logging line whose severity changes between calls
        if changed and msg.data:
            self.get_logger().warning(f"{topics.ESTOP} pressed")
        elif changed:
            self.get_logger().info(f"{topics.ESTOP} released")

    def _on_request(self, name: str, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if name in MOTION_REQUESTS and self.params.require_estop and self.count_publishers(topics.ESTOP) == 0:
            # an e-stop that is not connected cannot stop anything: do not start moving without one
            accepted, reason = False, f"refused: require_estop is set and no {topics.ESTOP} publisher is connected"
        elif name in EXCITATION_BLOCKS and self.excitation_status == "playing":
            # the core's ramps start from its own standing target, not from the table's: that would be a jump
            accepted, reason = False, "refused: an excitation is playing (damp or wait for it to end)"
        elif name == "start_policy" and self.observes_target_pose and self.target_pose() is None:
            # the core refuses too; this reply tells the operator which topic it waits for
            accepted = False
            reason = (
                f"refused: no target pose received on {topics.TARGET_POSE} yet "
                f"(geometry_msgs/PoseStamped in frame '{self.params.base_frame}')"
            )
        else:
            accepted, reason = self.core.request(name, self.now_s())
        response.success, response.message = bool(accepted), reason
        self.get_logger().info(f"{name}: {reason}")
        return response

    def _on_excite(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Start the excitation table: only while STANDING, and not while one plays or its log is written."""
        with self._lock:
            if self._last_state != "STANDING":
                response.success, response.message = False, f"refused: excite needs STANDING, not {self._last_state}"
            elif self.excitation_status in ("playing", "writing"):
                response.success, response.message = False, f"refused: the excitation is {self.excitation_status}"
            else:
                self._recorder = SysidRecorder(self._spec["robot"], self.bundle_joint_names, fixed_base=True)
                self._excite_fresh = True
                self._excitation_start_s = self.now_s()
                self.excitation_status = "playing"
                response.success = True
                response.message = (
                    f"playing {self.params.excitation_file} ({self.excitation.duration_s:.1f} s); "
                    f"log -> {self.params.sysid_log}"
                )
        self.get_logger().info(f"excite: {response.message}")
        return response

    def _excitation_targets(self, out: dict) -> bool:
        """While an excitation plays in STANDING, write its targets into the excite buffers; False otherwise.

        The table was checked against max_target_step_rad at start-up; the clamp here also holds it when a tick
        comes late (the table is sampled by elapsed time) and counts the first step from the core's own target.
        """
        with self._lock:
            start_s, fresh, self._excite_fresh = self._excitation_start_s, self._excite_fresh, False
        if start_s is None:
            return False
        state, elapsed_s = out["state"], self.now_s() - start_s
        if state != "STANDING":
            self._end_excitation(f"aborted: state {state} after {elapsed_s:.2f} s")
            return False
        if elapsed_s > self.excitation.duration_s:
            self._end_excitation("done")
            return False
        if fresh:
            np.copyto(self._excite_last, out["target_pos"])
        self.excitation.sample(elapsed_s, self._excite_q, self._excite_dq)
        step = self.params.max_target_step_rad
        np.clip(self._excite_q, self._excite_last - step, self._excite_last + step, out=self._excite_q)
        np.copyto(self._excite_last, self._excite_q)
        return True

    def _end_excitation(self, how: str) -> None:
        """Stop playing (the core's standing targets are sent from this tick on) and write the log in a thread."""
        with self._lock:
            recorder, self._recorder, self._excitation_start_s = self._recorder, None, None
            self.excitation_status = "writing"
        self.get_logger().info(f"excitation {how}; writing {self.params.sysid_log}")
        threading.Thread(target=self._write_sysid_log, args=(recorder, how), daemon=True).start()

    def _write_sysid_log(self, recorder: SysidRecorder, how: str) -> None:
        try:
            write_log(self.params.sysid_log, recorder.arrays())
            status = f"{how}; log written"
        except (OSError, ValueError) as error:
            status = f"{how}; log NOT written: {error}"
            self.get_logger().error(f"excitation log {self.params.sysid_log}: {error}")
        with self._lock:
            self.excitation_status = status

    def now_s(self) -> float:
        """ROS time in seconds: the clock of the message stamps."""
        return self._clock.now().nanoseconds * 1e-9

    def target_pose(self) -> np.ndarray | None:
        """The latest accepted /target_pose (position, unit quaternion w, x, y, z), None before the first."""
        with self._lock:
            return None if self._target_pose is None else self._target_pose.copy()

    def velocity_command(self) -> np.ndarray:
        """(vx m/s, vy m/s, yaw rate rad/s) that the last tick passed to the core (zeros before the first)."""
        return self._velocity_command_rad.copy() if self.core is not None and self._thread else np.zeros(3)

    # ---- outputs ----------------------------------------------------------------------------------------------

    def _create_outputs(self) -> None:
        """Publishers, their reusable messages with numpy views on the message arrays, the tick's buffers."""
        n, n_driver = len(self.bundle_joint_names), len(self.driver_joint_names)
        self._joint_command_pub = self.create_publisher(JointState, topics.JOINT_COMMAND, topics.COMMAND_QOS)
        self._pd_command_pub = self.create_publisher(Float64MultiArray, topics.JOINT_PD_COMMAND, topics.COMMAND_QOS)
        self._state_pub = self.create_publisher(String, f"~/{topics.STATE}", topics.STATE_QOS)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, topics.DIAGNOSTICS_QOS)
        self._joint_command_msg = JointState(name=list(self.bundle_joint_names))
        self._joint_command_msg.position = np.zeros(n).tolist()
        self._joint_command_msg.velocity = np.zeros(n).tolist()
        self._joint_command_msg.effort = np.zeros(n).tolist()
        # array.array exports a writable buffer: the tick writes targets in place, no new array per tick
        self._command_pos_view = np.frombuffer(self._joint_command_msg.position, dtype=np.float64)
        self._pd_command_msg = topics.pack_pd_command(self.bundle_joint_names, np.zeros((len(topics.PD_ROWS), n)))
        self._pd_rows_view = np.frombuffer(self._pd_command_msg.data, dtype=np.float64).reshape(len(topics.PD_ROWS), n)
        self._state_msg = String()
        self._joint_pos = np.zeros(n_driver)
        self._joint_vel = np.zeros(n_driver)
        self._imu_quat_wxyz = np.zeros(4)
        self._imu_ang_vel = np.zeros(3)
        self._velocity_command_rad = np.zeros(3)
        self._excite_q = np.zeros(n)
        self._excite_last = np.zeros(n)  # the last excitation target sent (before encoder offsets)
        self._offset_target = np.zeros(n)
        self._excite_dq = np.zeros(n)
        self._jitter_ms = RingBuffer(STATS_CAPACITY)
        self._latency_ms = RingBuffer(STATS_CAPACITY)
        self._inference_us = RingBuffer(STATS_CAPACITY)
        self._tick_cost_us = RingBuffer(STATS_CAPACITY)
        self.ticks = self.late_ticks = self.missed_deadlines = 0
        self._late_ticks_reported = 0
        self._last_state = ""
        self._last_output: dict | None = None

    # ---- the control loop (its own thread) --------------------------------------------------------------------

    def _run_loop(self) -> None:
        self.get_logger().info(_raise_thread_priority())
        try:
            self._loop()
        except Exception as error:  # a failing tick must stop the node: the driver then times out and damps
            if not self.context.ok() or self._stop.is_set():
                return  # shutting down: publishing on a finalized context is expected to fail
            self.loop_error = error
            self.get_logger().fatal(f"control loop failed, shutting down: {error!r}")
            self.context.try_shutdown()

    def request_shutdown(self) -> None:
        """SIGINT/SIGTERM: the control thread commands DAMPING for a few ticks, then stops (the robot is not
        left holding the last policy target at policy gains until some driver timeout, if it has one)."""
        self._shutdown_requested.set()

    def _loop(self) -> None:
        """Tick at absolute deadlines t0 + k * period: late ticks run at once, whole missed periods are skipped."""
        period_s = self.period_s
        deadline_s = time.monotonic() + period_s
        damping_ticks_left = SHUTDOWN_DAMPING_TICKS
        while not self._stop.is_set():
            if self._shutdown_requested.is_set():
                if damping_ticks_left == SHUTDOWN_DAMPING_TICKS:
                    self.core.request("damp", self.now_s())
                if damping_ticks_left == 0:
                    self._stop.set()
                    return
                damping_ticks_left -= 1
            now_s = time.monotonic()
            late = now_s > deadline_s  # the previous tick, the GIL or the scheduler kept us past this deadline
            while now_s < deadline_s:
                if self._stop.wait(deadline_s - now_s):
                    return
                now_s = time.monotonic()
            self._tick(now_s, deadline_s, late)
            deadline_s += period_s
            behind_s = time.monotonic() - deadline_s
            if behind_s > period_s:  # do not burst through a backlog: rejoin the grid at the next slot
                skipped = int(behind_s // period_s)
                deadline_s += skipped * period_s
                self.missed_deadlines += skipped

    def _tick(self, start_s: float, deadline_s: float, late: bool) -> None:
        """Snapshot the inputs, run the core, publish the commands, record the timing."""
        with self._lock:
            joint_state, imu, estop = self._joint_state, self._imu, self._estop
            twist, twist_arrival_s = self._twist, self._twist_arrival_s
            target_pose = self._target_pose  # None until the first; the core keeps the latest it was given
        self._copy_inputs(joint_state, imu)
        self._write_velocity_command(twist, twist_arrival_s, start_s)
        joint_state_stamp_s = stamp_s(joint_state.header.stamp)
        have_imu = imu is not None  # always, once started, when the bundle reads the IMU
        out = self.core.tick(
            self.now_s(),
            joint_state_stamp_s,
            self._joint_pos,
            self._joint_vel,
            stamp_s(imu.header.stamp) if have_imu else 0.0,
            self._imu_quat_wxyz if have_imu else None,
            self._imu_ang_vel if have_imu else None,
            self._velocity_command_rad,
            estop,
            target_pose,
        )
        publish_ns = self._publish_commands(out)
        self._last_output = out
        state = out["state"]
        if state != self._last_state:
            self._on_state_change(state, out)
        self._record(start_s, deadline_s, late, out, publish_ns * 1e-9 - joint_state_stamp_s)

    def _copy_inputs(self, joint_state: JointState, imu: Imu | None) -> None:
        self._joint_pos[:] = joint_state.position  # array.array -> numpy via the buffer protocol
        if self.encoder_offsets_rad:
            self._joint_pos -= self._reading_offsets_rad
        self._joint_vel[:] = joint_state.velocity
        if imu is None:  # a bundle without IMU terms on a robot without an IMU
            return
        o, w = imu.orientation, imu.angular_velocity
        self._imu_quat_wxyz[:] = topics.quaternion_wxyz_from_ros(o.x, o.y, o.z, o.w)
        self._imu_ang_vel[0], self._imu_ang_vel[1], self._imu_ang_vel[2] = w.x, w.y, w.z

    def _write_velocity_command(self, twist: Twist | None, arrival_s: float, now_s: float) -> None:
        """The last /cmd_vel, or zeros when there is none younger than cmd_vel_timeout_s."""
        if twist is None or now_s - arrival_s > self.params.cmd_vel_timeout_s:
            self._velocity_command_rad[:] = 0.0
        else:
            v = self._velocity_command_rad
            v[0], v[1], v[2] = twist.linear.x, twist.linear.y, twist.angular.z

    def _publish_commands(self, out: dict) -> int:
        """/joint_command and /joint_pd_command from the reused messages; returns the publish time (ROS ns)."""
        exciting = self.excitation is not None and self._excitation_targets(out)
        target = self._excite_q if exciting else out["target_pos"]
        if self.encoder_offsets_rad:  # the driver speaks in encoder readings
            target = np.add(target, self._command_offsets_rad, out=self._offset_target)
        np.copyto(self._command_pos_view, target)
        rows = self._pd_rows_view  # rows q*, dq* (0 but during an excitation), tau_ff (always 0), kp, kd
        np.copyto(rows[0], target)
        if exciting:
            np.copyto(rows[1], self._excite_dq)
        else:
            rows[1] = 0.0
        np.copyto(rows[3], out["kp"])
        np.copyto(rows[4], out["kd"])
        now_ns = self._clock.now().nanoseconds
        stamp = self._joint_command_msg.header.stamp
        stamp.sec, stamp.nanosec = divmod(now_ns, 1_000_000_000)
        self._joint_command_pub.publish(self._joint_command_msg)
        self._pd_command_pub.publish(self._pd_command_msg)
        recorder = self._recorder
        if exciting and recorder is not None:  # the targets in true angles, as the table gave them
            recorder.add_command(now_ns * 1e-9, rows, self._command_offsets_rad)
        return now_ns

    def _on_state_change(self, state: str, out: dict) -> None:
        if state == "POLICY":
            self._jitter_ms.clear()  # jitter is reported over the ticks since the policy (last) started
        self._last_state = state
        self._state_msg.data = state
        self._state_pub.publish(self._state_msg)
        if state == "DAMPING":
            self.get_logger().warning(
                f"state DAMPING (cause {out['damping_cause']}, fault {out['fault']}); {self._arrivals_text()}"
            )
        else:
            self.get_logger().info(f"state {state}")

    def _arrivals_text(self) -> str:
        """When the inputs last arrived: tells a sender that stopped from a message that was late."""
        now_s = time.monotonic()
        with self._lock:
            streams = [(topics.JOINT_STATES, self._joint_state_arrivals)]
            if self.uses_imu:
                streams.append((topics.IMU, self._imu_arrivals))
            parts = [f"last {topic} {g.since_last_ms(now_s):.0f} ms ago ({g.count} received)" for topic, g in streams]
        return ", ".join(parts)

    def _record(self, start_s: float, deadline_s: float, late: bool, out: dict, latency_s: float) -> None:
        self.ticks += 1
        self.late_ticks += late
        self._jitter_ms.add(abs(start_s - deadline_s) * 1e3)
        if out["state"] == "POLICY":
            self._latency_ms.add(latency_s * 1e3)
        if out["policy_ran"]:
            self._inference_us.add(out["inference_time_s"] * 1e6)
        self._tick_cost_us.add((time.monotonic() - start_s) * 1e6)

    # ---- diagnostics (executor thread) ------------------------------------------------------------------------

    def diagnostics_values(self) -> dict[str, str]:
        """The KeyValues of the /diagnostics status, as strings."""
        out = self._last_output or {}
        with self._lock:
            estop = self._estop
            now_s = time.monotonic()
            joint_state_gap_ms = self._joint_state_arrivals.take_max_gap_ms(now_s)
            imu_gap_ms = self._imu_arrivals.take_max_gap_ms(now_s)
            excitation_status = self.excitation_status
        # one copy and one percentile pass per statistic: this runs with the GIL held, beside the control thread
        jitter_p50, jitter_p99, jitter_max = self._jitter_ms.summary(50, 99)
        inference_p99, inference_max = self._inference_us.summary(99)
        return {
            "state": out.get("state", self.core.state),
            "fault": out.get("fault", "NONE"),
            "damping_cause": out.get("damping_cause", "NONE"),
            "ticks": str(self.ticks),
            "late_ticks": str(self.late_ticks),
            "missed_deadlines": str(self.missed_deadlines),
            "control_rate_hz": f"{self.control_rate_hz:g}",
            "period_jitter_p50_ms": f"{jitter_p50:.3f}",
            "period_jitter_p99_ms": f"{jitter_p99:.3f}",
            "period_jitter_max_ms": f"{jitter_max:.3f}",
            "state_to_command_latency_p99_ms": f"{self._latency_ms.summary(99)[0]:.3f}",
            "inference_p99_us": f"{inference_p99:.1f}",
            "inference_max_us": f"{inference_max:.1f}",
            "tick_cost_p99_us": f"{self._tick_cost_us.summary(99)[0]:.1f}",
            "rejected_cmd_vel": str(self.rejected_cmd_vel),
            "tilt_rad": f"{out.get('tilt_rad', math.nan):.3f}",
            "estop": str(estop).lower(),
            "velocity_command": json.dumps([round(float(v), 4) for v in self._velocity_command_rad]),
            "rejected_joint_states": str(self.rejected_joint_states),
            # the longest silence of each input since the previous status: near state_timeout_s, a fault is close
            "joint_state_max_gap_ms": f"{joint_state_gap_ms:.1f}",
            "imu_max_gap_ms": f"{imu_gap_ms:.1f}",
            "imu_used": str(self.uses_imu).lower(),
            **(self._target_pose_diagnostics() if self.observes_target_pose else {}),
            **({"excitation": excitation_status} if self.excitation is not None else {}),
        }

    def _target_pose_diagnostics(self) -> dict[str, str]:
        """Whether a goal arrived, how old it is (since arrival; nan before the first) and what it is."""
        with self._lock:
            pose, arrival_s = self._target_pose, self._target_pose_arrival_s
        return {
            "target_pose_received": str(pose is not None).lower(),
            "target_pose_age_s": f"{time.monotonic() - arrival_s:.3f}" if pose is not None else "nan",
            "target_pose": json.dumps([] if pose is None else [round(float(v), 4) for v in pose]),
            "rejected_target_poses": str(self.rejected_target_poses),
        }

    def _publish_diagnostics(self) -> None:
        values = self.diagnostics_values()
        # WARN when ticks ran late or /joint_states or /target_pose messages were rejected since the last report
        news = (
            (self.late_ticks - self._late_ticks_reported)
            + (self.rejected_joint_states - self._rejected_reported)
            + (self.rejected_target_poses - self._rejected_targets_reported)
        )
        self._late_ticks_reported, self._rejected_reported = self.late_ticks, self.rejected_joint_states
        self._rejected_targets_reported = self.rejected_target_poses
        if values["state"] == "DAMPING":
            level = DiagnosticStatus.ERROR
        elif news or values["fault"] != "NONE":
            level = DiagnosticStatus.WARN
        else:
            level = DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name=topics.POLICY_NODE,
            message=values["state"],
            hardware_id=str(self._spec.get("robot", "")),
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        message = DiagnosticArray(status=[status])
        message.header.stamp = self._clock.now().to_msg()
        self._diagnostics_pub.publish(message)


def _raise_thread_priority() -> str:
    """Put the calling thread under SCHED_FIFO at CONTROL_THREAD_FIFO_PRIORITY if permitted; what happened."""
    if not hasattr(os, "sched_setscheduler"):
        return "control thread at the default scheduling policy (no sched_setscheduler on this OS)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(CONTROL_THREAD_FIFO_PRIORITY))  # 0: this thread
    except OSError as error:
        return f"control thread at the default scheduling policy (SCHED_FIFO refused: {error.strerror})"
    return f"control thread at SCHED_FIFO priority {CONTROL_THREAD_FIFO_PRIORITY}"


def serve(node: PolicyNode, executor: SingleThreadedExecutor) -> int:
    """Start-up wait, the core, the control thread, then spin until shutdown; the exit status."""
    if not node.wait_for_sensors(executor):
        return 0
    node.build_core()
    node.start()
    try:
        while node.context.ok() and not node.stopped():
            executor.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # a shutdown landing inside spin_once can surface as RCLError ("context is not valid"): still a clean stop
        if node.context.ok():
            raise
    finally:
        node.stop()
    return 1 if node.loop_error is not None else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m robot_io.policy_node --ros-args ...`: 0 after SIGINT/SIGTERM, 1 when it cannot start or fails."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    logger = rclpy.logging.get_logger(topics.POLICY_NODE)
    try:
        # our own SIGINT/SIGTERM handling: rclpy's would tear the publishers down before a damping command
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as error:  # e.g. a missing --params-file: one line, not a traceback
        print(f"[ERROR] [{topics.POLICY_NODE}]: cannot initialize ROS 2: {error}", file=sys.stderr)
        return 1
    node = None

    def on_signal(signum: int, _frame: object) -> None:
        if node is not None and node.running():
            node.request_shutdown()  # DAMPING ticks first; serve() returns when the control thread stops
        else:
            rclpy.try_shutdown()  # still starting up: nothing was commanded yet

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        node = PolicyNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        return serve(node, executor)
    except StartupError as error:
        logger.error(str(error))
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except Exception:
        if rclpy.ok():
            raise
        return 0  # a shutdown racing rclpy's executor (RCLError "context is not valid") is still a clean stop
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
        rclpy.try_shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def ros_argv(params_file: Path | None, overrides: dict[str, object]) -> list[str]:
    """`[prog, --ros-args, --params-file F, -p key:=value, ...]` for main()."""
    return [topics.POLICY_NODE, *ros_args.ros_arguments(params_file, overrides)]


def run_policy_node(params_file: Path | None, overrides: dict[str, object]) -> int:
    """Run the node in this process with a params file and overrides (`simreal deploy`); the exit status."""
    return main(ros_argv(params_file, overrides))


if __name__ == "__main__":
    sys.exit(main())
