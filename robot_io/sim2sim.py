"""sim2sim: the deploy flow of a real robot, run against the MuJoCo emulator over real DDS, measured.

The emulator (`robot_io.sim_robot`) and the policy node (`robot_io.policy_node`) run as separate processes
with the same parameter YAML a robot uses; an operator node here calls the policy node's services exactly as
a person would (stand_up, start_policy, sit_down), sends /cmd_vel, and reads the emulator's ground truth
(/sim/base_state) and both nodes' /diagnostics. Nothing here reaches into either process.

The flow follows the robot the YAML's emulator section names: a floating-base robot (the quadruped) walks on
/cmd_vel; a fixed-base robot with an ee_site (the arm) is given a goal on /target_pose and measured by the
emulator's end-effector ground truth (/sim/ee_pose), the same position and orientation errors the training env's
reach success uses.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger

from robot_io import topics
from robot_io.ros_args import ros_arguments
from robot_io.sim_robot import NODE_DEFAULTS
from sim.errors import SimrealError
from sim.robot_spec import RobotSpec, load_robot_spec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PARAMS = ROOT / "launch" / "params" / "quadruped.yaml"
DEFAULT_BUNDLE = ROOT / "policies" / "pretrained" / "quadruped-flat" / "bundle"
FALLEN_HEIGHT_M = 0.15  # trunk lower than this: the robot is down
FALLEN_TILT_RAD = math.radians(60.0)
LOG_TAIL_LINES = 30
STOP_BEFORE_SITTING_S = 1.5  # zero /cmd_vel this long before ~/sit_down, so the robot sits from a stand
# the arm's goal when none is given: in the arm-reach training box (sim/tasks/config.py TargetConfig), 11 cm from
# the default pose's end effector, fingers down (sim/terms/targets.py FINGERS_DOWN_QUAT)
DEFAULT_TARGET_POSITION_M = (0.5, 0.1, 0.2)
FINGERS_DOWN_QUAT_WXYZ = (0.0, 1.0, 0.0, 0.0)
TARGET_ACCEPT_TIMEOUT_S = 2.0  # ~/start_policy is retried this long while the node has no /target_pose yet


class Sim2SimError(SimrealError):
    """The sim2sim flow could not run (a node did not start, a state was not reached); says which and why."""


@dataclass
class Sim2SimConfig:
    bundle: Path = DEFAULT_BUNDLE
    params: Path = DEFAULT_PARAMS
    cmd_vx_m_s: float = 0.5
    cmd_vy_m_s: float = 0.0
    cmd_yaw_rate_rad_s: float = 0.0
    seconds: float = 10.0  # policy running with the command
    settle_s: float = 2.0  # the forward velocity is averaged from this long after the command on
    sit_down: bool = True  # end with ~/sit_down, as an operator would
    reality: dict[str, object] = field(default_factory=dict)  # emulator parameter overrides
    policy_overrides: dict[str, object] = field(default_factory=dict)  # policy node parameter overrides
    startup_timeout_s: float = 30.0
    domain_id: int | None = None  # None: a random private one, never 0 nor this shell's ROS_DOMAIN_ID
    # fixed-base robots: the end-effector goal, position (m) + unit quaternion (w, x, y, z) in the base frame;
    # None: DEFAULT_TARGET_POSITION_M, fingers down
    target_pose: tuple[float, ...] | None = None


@dataclass
class Recording:
    """What the operator saw, appended from the executor thread."""

    states: list[str] = field(default_factory=list)
    base_states: list[np.ndarray] = field(default_factory=list)
    ee_poses: list[np.ndarray] = field(default_factory=list)  # /sim/ee_pose as position + (w, x, y, z)
    ee_frame_ids: set[str] = field(default_factory=set)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)  # status name -> latest key/values
    lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self) -> str | None:
        with self.lock:
            return self.states[-1] if self.states else None

    def states_seen(self) -> list[str]:
        """Each state once, in the order first seen."""
        with self.lock:
            return list(dict.fromkeys(self.states))


def run_sim2sim(config: Sim2SimConfig) -> dict:
    """Emulator + policy node; stand up, walk on command (reach the target, for an arm), sit down; measurements."""
    if not config.bundle.is_dir():
        raise Sim2SimError(f"deploy bundle {config.bundle} does not exist (pass --bundle)")
    spec = robot_of(config)
    if not spec.floating_base:
        if spec.ee_site is None:
            raise Sim2SimError(f"robot '{spec.name}' has neither a floating base nor an ee_site: nothing to measure")
        with ros_nodes(config) as operator:
            return reach(operator, config)
    if config.target_pose is not None:
        raise Sim2SimError(f"robot '{spec.name}' walks on /cmd_vel; a target pose is for a fixed-base arm")
    with ros_nodes(config) as operator:
        operator.await_ready(config.startup_timeout_s)
        time.sleep(1.0)  # the robot settles on the floor under zero torque, as after power-on
        operator.call("stand_up")
        operator.await_state("STANDING", 10.0)
        time.sleep(0.5)
        operator.call("start_policy")
        operator.await_state("POLICY", 2.0)
        started = operator.sim_time()
        operator.drive(config.cmd_vx_m_s, config.cmd_vy_m_s, config.cmd_yaw_rate_rad_s, config.seconds)
        policy_window = operator.base_states_since(started)
        result = summarize(config, operator.recording, policy_window, started)
        if config.sit_down and operator.recording.state() == "POLICY":
            result["sat_down"] = operator.stop_and_sit_down()
            result["controller_states"] = operator.recording.states_seen()
        return {**result, **operator.startup_report()}


def robot_of(config: Sim2SimConfig) -> RobotSpec:
    """The robot the emulator will run: an emulator override, else the YAML's simreal_sim_robot `robot`, else
    the emulator's default."""
    robot = config.reality.get("robot") or _emulator_section(config.params).get("robot") or NODE_DEFAULTS["robot"]
    return load_robot_spec(str(robot))


def bundle_of(params: Path) -> Path:
    """The YAML's simreal_policy `bundle`, resolved against the current directory as the node resolves it."""
    section = _section(params, topics.POLICY_NODE)
    if not section.get("bundle"):
        raise Sim2SimError(f"{params}: section {topics.POLICY_NODE} names no bundle; pass --bundle")
    return Path(str(section["bundle"])).resolve()


def _emulator_section(params: Path) -> dict:
    return _section(params, topics.SIM_ROBOT_NODE)


def _section(params: Path, node: str) -> dict:
    try:
        raw = yaml.safe_load(Path(params).read_text()) or {}
    except OSError as error:
        raise Sim2SimError(f"parameter file {params}: cannot read it: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise Sim2SimError(f"parameter file {params}: not valid YAML: {error}") from None
    section = raw.get(node, {}) if isinstance(raw, dict) else {}
    values = section.get("ros__parameters", {}) if isinstance(section, dict) else {}
    return values if isinstance(values, dict) else {}


def target_pose_from_values(values: list[float] | tuple[float, ...] | None) -> tuple[float, ...]:
    """x y z [qw qx qy qz] -> 7 values with a unit quaternion; the orientation defaults to fingers down."""
    if values is None:
        values = DEFAULT_TARGET_POSITION_M
    values = [float(v) for v in values]
    if len(values) == 3:
        values += FINGERS_DOWN_QUAT_WXYZ
    if len(values) != 7:
        raise Sim2SimError(f"a target pose is x y z or x y z qw qx qy qz, got {len(values)} values")
    pose = np.array(values)
    norm = float(np.linalg.norm(pose[3:]))
    if not np.isfinite(pose).all() or not norm > 0.0:
        raise Sim2SimError(f"target pose {values} has a non-finite value or a zero quaternion")
    pose[3:] /= norm
    return tuple(float(v) for v in pose)


def reach(operator: Operator, config: Sim2SimConfig) -> dict:
    """The arm's flow on running nodes: stand up, give the goal, run the policy `seconds`, measure, sit down."""
    target = np.array(target_pose_from_values(config.target_pose))
    operator.await_ready(config.startup_timeout_s)
    operator.call("stand_up")
    operator.await_state("STANDING", 10.0)
    frame_id = str(_section(config.params, topics.POLICY_NODE).get("base_frame", "base"))
    operator.send_target(target, frame_id, config.startup_timeout_s)
    operator.start_policy_once_target_arrives(TARGET_ACCEPT_TIMEOUT_S)
    operator.await_state("POLICY", 2.0)
    initial = operator.latest_ee_pose()
    started_s = time.monotonic()
    operator.hold_policy(config.seconds)
    policy_seconds = time.monotonic() - started_s
    final = operator.latest_ee_pose()  # measured before ~/sit_down moves the arm away
    result = summarize_reach(config, target, initial, final, policy_seconds)
    result["controller_states"] = operator.recording.states_seen()
    if config.sit_down and operator.recording.state() == "POLICY":
        result["sat_down"] = operator.sit_down()
        result["controller_states"] = operator.recording.states_seen()
    return {**result, **operator.startup_report()}


def orientation_error_rad(quat_a_wxyz: np.ndarray, quat_b_wxyz: np.ndarray) -> float:
    """The angle of the rotation between two orientations (sim/rotations.py quat_angle_between)."""
    return 2.0 * math.acos(min(1.0, abs(float(np.dot(quat_a_wxyz, quat_b_wxyz)))))


def summarize_reach(
    config: Sim2SimConfig, target: np.ndarray, initial: np.ndarray, final: np.ndarray, policy_seconds: float
) -> dict:
    """The reach numbers: the end effector's final position and orientation errors against the goal."""
    return {
        "position_error_m": round(float(np.linalg.norm(final[:3] - target[:3])), 4),
        "orientation_error_rad": round(orientation_error_rad(final[3:], target[3:]), 4),
        "initial_position_error_m": round(float(np.linalg.norm(initial[:3] - target[:3])), 4),
        "initial_orientation_error_rad": round(orientation_error_rad(initial[3:], target[3:]), 4),
        "target_pose": [round(float(v), 4) for v in target],
        "final_ee_pose": [round(float(v), 4) for v in final],
        "policy_seconds": round(policy_seconds, 2),
        "reality": config.reality,
    }


BENCH_KEYS = (
    "period_jitter_p50_ms",
    "period_jitter_p99_ms",
    "period_jitter_max_ms",
    "state_to_command_latency_p99_ms",
    "inference_p99_us",
)


def run_bench_deploy(config: Sim2SimConfig) -> dict:
    """The sim2sim flow held in POLICY for `seconds`; the nodes' own timing statistics at the end."""
    with ros_nodes(config) as operator:
        operator.await_ready(config.startup_timeout_s)
        operator.call("stand_up")
        operator.await_state("STANDING", 10.0)
        operator.call("start_policy")
        operator.await_state("POLICY", 2.0)
        operator.drive(config.cmd_vx_m_s, config.cmd_vy_m_s, config.cmd_yaw_rate_rad_s, config.seconds)
        if operator.recording.state() != "POLICY":
            raise Sim2SimError(f"the controller left POLICY during the benchmark: {operator.recording.states}")
        time.sleep(1.5)  # one more diagnostics period, so the statistics cover the whole run
        policy = operator.await_diagnostics("period_jitter_p99_ms", 5.0)
        emulator = operator.await_diagnostics("realtime_factor", 5.0)
    result: dict[str, object] = {key: _number(policy[key]) for key in BENCH_KEYS}
    result["emulator_realtime_factor"] = _number(emulator["realtime_factor"])
    result.update(policy_ticks=_number(policy.get("ticks", "nan")), seconds=config.seconds, bundle=str(config.bundle))
    return {**result, **operator.startup_report()}


def _number(text: str) -> float:
    return round(float(text), 4)


def summarize(config: Sim2SimConfig, recording: Recording, window: np.ndarray, started_s: float) -> dict:
    """The issue's sim2sim numbers from the ground truth recorded while the policy ran."""
    fields = {name: index for index, name in enumerate(topics.SIM_BASE_STATE_FIELDS)}
    if len(window) < 2:
        raise Sim2SimError("no ground truth (/sim/base_state) arrived while the policy ran")
    time_s = window[:, fields["sim_time_s"]] - started_s
    steady = window[time_s >= config.settle_s]
    tilt = window[:, fields["tilt_rad"]]
    states = recording.states_seen()
    fell = bool(window[:, fields["z_m"]].min() < FALLEN_HEIGHT_M or tilt.max() > FALLEN_TILT_RAD or "DAMPING" in states)
    return {
        "mean_forward_velocity_m_s": round(float(steady[:, fields["forward_velocity_m_s"]].mean()), 4)
        if len(steady)
        else None,
        "commanded_vx": config.cmd_vx_m_s,
        "fell": fell,
        "max_tilt_deg": round(math.degrees(float(tilt.max())), 2),
        "controller_states": states,
        "policy_seconds": round(float(time_s[-1]), 2),
        "reality": config.reality,
    }


@contextmanager
def ros_nodes(config: Sim2SimConfig) -> Iterator[Operator]:
    """The emulator and the policy node as child processes, and an operator node here; all torn down after."""
    saved = {key: os.environ.get(key) for key in (*ROS_ENVIRONMENT, *INHERITED_DDS_SETTINGS)}
    logs = Path(tempfile.mkdtemp(prefix="simreal-sim2sim-"))
    previous_sigterm = _exit_on_sigterm()
    operator: Operator | None = None
    context = rclpy.Context()
    try:
        _use_private_ros_environment(config.domain_id)
        rclpy.init(context=context)
        operator = Operator(context)
        operator.children.append(_start("sim_robot", _emulator_command(config), logs))
        operator.await_ground_truth(config.startup_timeout_s)
        operator.children.append(_start("policy_node", _policy_command(config), logs))
        yield operator
    finally:
        if operator is not None:
            for _, process, _ in operator.children:
                _stop(process)
            operator.close()
        rclpy.try_shutdown(context=context)
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _exit_on_sigterm():
    """SIGTERM raises SystemExit, so the children are stopped on the way out; the previous handler, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def exit_now(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, exit_now)


class Operator:
    """A person at the console, as a ROS 2 node: services, /cmd_vel, and what comes back."""

    def __init__(self, context: rclpy.Context) -> None:
        self.recording = Recording()
        self.children: list[tuple[str, subprocess.Popen, Path]] = []
        self.expected_exits: set[str] = set()  # children a test stops on purpose: their exit is not an error
        self.startup_resets, self.startup_states = 0, []  # see await_ready
        self.node = rclpy.create_node("simreal_sim2sim_operator", context=context)
        node = self.node
        self.cmd_vel = node.create_publisher(Twist, topics.CMD_VEL, topics.CMD_VEL_QOS)
        services = (*topics.SERVICES, topics.EXCITE)
        self.clients = {name: node.create_client(Trigger, f"/{topics.POLICY_NODE}/{name}") for name in services}
        node.create_subscription(String, f"/{topics.POLICY_NODE}/{topics.STATE}", self._on_state, topics.STATE_QOS)
        node.create_subscription(Float64MultiArray, topics.SIM_BASE_STATE, self._on_base_state, 100)
        node.create_subscription(PoseStamped, topics.SIM_EE_POSE, self._on_ee_pose, 100)
        self.target_pose = node.create_publisher(PoseStamped, topics.TARGET_POSE, topics.TARGET_POSE_QOS)
        node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diagnostics, topics.DIAGNOSTICS_QOS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self._stopping = threading.Event()
        self.spinner = threading.Thread(target=self._spin, daemon=True)
        self.spinner.start()

    def _spin(self) -> None:
        while not self._stopping.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        """Stop spinning first: tearing the executor down under a spinning thread aborts the process."""
        self._stopping.set()
        self.spinner.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()

    def _on_state(self, message: String) -> None:
        with self.recording.lock:
            self.recording.states.append(message.data)

    def _on_base_state(self, message: Float64MultiArray) -> None:
        row = np.asarray(message.data, dtype=np.float64)
        if row.shape == (len(topics.SIM_BASE_STATE_FIELDS),):
            with self.recording.lock:
                self.recording.base_states.append(row)

    def _on_ee_pose(self, message: PoseStamped) -> None:
        position = message.pose.position
        try:
            orientation = topics.target_pose_from_ros(message.pose)[3:]
        except ValueError:
            return  # a ground truth that is not a pose is no measurement
        row = np.array([position.x, position.y, position.z, *orientation])
        with self.recording.lock:
            self.recording.ee_poses.append(row)
            self.recording.ee_frame_ids.add(message.header.frame_id)

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        with self.recording.lock:
            for status in message.status:
                self.recording.diagnostics[status.name] = {pair.key: pair.value for pair in status.values}

    def sim_time(self) -> float:
        with self.recording.lock:
            return float(self.recording.base_states[-1][0]) if self.recording.base_states else 0.0

    def base_states_since(self, sim_time_s: float) -> np.ndarray:
        with self.recording.lock:
            rows = [row for row in self.recording.base_states if row[0] >= sim_time_s]
        return np.stack(rows) if rows else np.zeros((0, len(topics.SIM_BASE_STATE_FIELDS)))

    def latest_ee_pose(self) -> np.ndarray:
        with self.recording.lock:
            if not self.recording.ee_poses:
                raise Sim2SimError(
                    f"no end-effector ground truth ({topics.SIM_EE_POSE}) has arrived" + _logs(self.children)
                )
            return self.recording.ee_poses[-1].copy()

    def await_ground_truth(self, timeout_s: float) -> None:
        """The emulator is up: its /sim/base_state (floating base) or /sim/ee_pose (arm) arrives."""
        self._wait(
            lambda: len(self.recording.base_states) > 0 or len(self.recording.ee_poses) > 0,
            timeout_s,
            f"the emulator's {topics.SIM_BASE_STATE} or {topics.SIM_EE_POSE}",
        )

    def await_ready(self, timeout_s: float) -> None:
        """ZERO_TORQUE, as after power-on, before anyone operates the robot.

        On Fast DDS's shared-memory transport about one start in five saw the policy node's /joint_states and
        /imu/data stop for 100-120 ms some 2.6-2.9 s after it started; the graph now runs on loopback UDP
        (LOOPBACK_UDP_PROFILE) and that has not been seen since. Should a node still damp on STALE_JOINT_STATE
        before anyone operated it, this does what an operator would: requests `reset` once the inputs are fresh
        again (refused while the fault persists) and counts it in `startup_resets`; the states seen during
        start-up are kept in `startup_states`, and the recording of the operated flow starts after them.
        """
        self._wait(
            lambda: self.recording.state() in ("ZERO_TORQUE", "DAMPING"), timeout_s, "controller state ZERO_TORQUE"
        )
        deadline_s = time.monotonic() + timeout_s
        while self.recording.state() == "DAMPING":
            if time.monotonic() > deadline_s:
                raise Sim2SimError(f"the policy node stayed in DAMPING at start-up{_logs(self.children)}")
            time.sleep(0.2)
            try:
                self.call("reset")
            except Sim2SimError:
                continue  # refused: the input is still stale
            self.startup_resets += 1
            self._wait(lambda: self.recording.state() != "DAMPING", 2.0, "ZERO_TORQUE after reset")
        with self.recording.lock:
            self.startup_states = list(dict.fromkeys(self.recording.states))
            self.recording.states = self.recording.states[-1:]

    def startup_report(self) -> dict[str, object]:
        return {"startup_resets": self.startup_resets, "startup_states": self.startup_states}

    def await_state(self, state: str, timeout_s: float) -> None:
        self._wait(lambda: self.recording.state() == state, timeout_s, f"controller state {state}")

    def await_diagnostics(self, key: str, timeout_s: float) -> dict[str, str]:
        """The latest diagnostic status carrying `key` (statuses are published about once a second)."""
        self._wait(lambda: self._status_with(key) is not None, timeout_s, f"a /diagnostics status with {key!r}")
        return self._status_with(key) or {}

    def _status_with(self, key: str) -> dict[str, str] | None:
        with self.recording.lock:
            return next((dict(values) for values in self.recording.diagnostics.values() if key in values), None)

    def call(self, service: str, timeout_s: float = 5.0) -> None:
        client = self.clients[service]
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise Sim2SimError(f"service /{topics.POLICY_NODE}/{service} did not appear" + _logs(self.children))
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not future.done():
            raise Sim2SimError(f"service /{topics.POLICY_NODE}/{service} did not answer within {timeout_s} s")
        response = future.result()
        if not response.success:
            raise Sim2SimError(f"{service} was refused: {response.message}")

    def stop_and_sit_down(self) -> bool:
        """As an operator would: zero command until the robot stops, then ~/sit_down; True if it reached ZERO_TORQUE."""
        self.drive(0.0, 0.0, 0.0, STOP_BEFORE_SITTING_S)
        return self.sit_down()

    def sit_down(self) -> bool:
        """~/sit_down, then wait for its end; True if it reached ZERO_TORQUE."""
        self.call("sit_down")
        self._wait(lambda: self.recording.state() in ("ZERO_TORQUE", "DAMPING"), 10.0, "the end of SIT_DOWN")
        return self.recording.state() == "ZERO_TORQUE"

    def send_target(self, pose_wxyz: np.ndarray, frame_id: str, timeout_s: float) -> None:
        """Publish the goal (base frame) once the policy node's reader has matched: the topic is volatile, and a goal
        sent before that would be lost."""
        self._wait(
            lambda: self.target_pose.get_subscription_count() > 0, timeout_s, f"the policy node's {topics.TARGET_POSE}"
        )
        message = PoseStamped()
        message.header.frame_id = frame_id
        message.header.stamp = self.node.get_clock().now().to_msg()
        position, orientation = message.pose.position, message.pose.orientation
        position.x, position.y, position.z = (float(v) for v in pose_wxyz[:3])
        orientation.x, orientation.y, orientation.z, orientation.w = topics.quaternion_ros_from_wxyz(pose_wxyz[3:])
        self.target_pose.publish(message)

    def start_policy_once_target_arrives(self, timeout_s: float) -> None:
        """~/start_policy, retried while the node or its core has no target pose yet: the goal and the service call
        travel on different DDS topics, so the call may overtake the goal, and the core takes it at its next tick."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.call("start_policy")
                return
            except Sim2SimError as error:
                if "no target pose" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def hold_policy(self, seconds: float) -> None:
        """Let the policy run `seconds` (returns early if the controller leaves POLICY)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.recording.state() == "POLICY":
            time.sleep(0.02)

    def drive(self, vx: float, vy: float, yaw_rate: float, seconds: float) -> None:
        """Publish the command at 20 Hz for `seconds` (stops early if the controller leaves POLICY)."""
        message = Twist()
        message.linear.x, message.linear.y, message.angular.z = float(vx), float(vy), float(yaw_rate)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.recording.state() == "POLICY":
            self.cmd_vel.publish(message)
            time.sleep(0.05)

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            for name, process, _ in self.children:
                if name not in self.expected_exits and process.poll() is not None:
                    raise Sim2SimError(
                        f"{name} exited with {process.returncode} while waiting for {what}" + _logs(self.children)
                    )
            time.sleep(0.02)
        raise Sim2SimError(
            f"timed out after {timeout_s} s waiting for {what} (last state {self.recording.state()})"
            + self._diagnostics_text()
            + _logs(self.children)
        )

    def _diagnostics_text(self) -> str:
        """The last /diagnostics status of every node: what a timed-out wait most needs to be explained."""
        with self.recording.lock:
            statuses = dict(self.recording.diagnostics)
        return "".join(f"\n--- last /diagnostics of {name} ---\n{values}" for name, values in statuses.items())


ROS_ENVIRONMENT = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "RMW_IMPLEMENTATION",
    "FASTDDS_DEFAULT_PROFILES_FILE",
)
# UDP on 127.0.0.1 only, no shared memory: a killed or frozen participant then cannot stall the others' delivery
# (the file says why). The tests use the same profile (tests/robot_io/conftest.py).
LOOPBACK_UDP_PROFILE = Path(__file__).with_name("loopback_udp.xml")


def loopback_udp_environment(domain_id: int) -> dict[str, str]:
    """The environment of a private DDS graph on loopback: this domain, Fast DDS, UDP on 127.0.0.1 only."""
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        # SUBNET lets rmw_fastrtps take the transports from the profile; the profile keeps them on loopback
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "FASTDDS_DEFAULT_PROFILES_FILE": str(LOOPBACK_UDP_PROFILE),
    }


# settings that could connect the simulated nodes to real ones: never passed on to sim2sim
INHERITED_DDS_SETTINGS = (
    "ROS_STATIC_PEERS",
    "ROS_DISCOVERY_SERVER",
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
    "ROS_LOCALHOST_ONLY",
)


def _use_private_ros_environment(domain_id: int | None) -> None:
    """A DDS domain of our own on loopback: the simulated policy must never reach a real robot's driver.

    Without an explicit domain, a random one that is neither 0 nor the one this shell uses (where a robot may be).
    """
    inherited = os.environ.get("ROS_DOMAIN_ID", "").strip()
    if domain_id is None:
        choices = [d for d in range(1, 101) if str(d) != inherited]
        domain_id = random.SystemRandom().choice(choices)
    if not 0 < domain_id <= 101:
        raise Sim2SimError(f"sim2sim needs a DDS domain id in 1..101 (0 is where robots talk), got {domain_id}")
    for key in INHERITED_DDS_SETTINGS:
        os.environ.pop(key, None)
    os.environ.update(loopback_udp_environment(domain_id))


def _emulator_command(config: Sim2SimConfig) -> list[str]:
    return [sys.executable, "-m", "robot_io.sim_robot", *ros_arguments(config.params.resolve(), config.reality)]


def _policy_command(config: Sim2SimConfig) -> list[str]:
    overrides = {"bundle": config.bundle.resolve(), **config.policy_overrides}
    return [sys.executable, "-m", "robot_io.policy_node", *ros_arguments(config.params.resolve(), overrides)]


def _start(name: str, command: list[str], logs: Path) -> tuple[str, subprocess.Popen, Path]:
    log = logs / f"{name}.log"
    handle = log.open("w")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    handle.close()
    return name, process, log


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _logs(children: list) -> str:
    parts = []
    for name, _, log in children:
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if log.exists() else []
        parts.append(f"\n--- {name} ({log}) ---\n" + "\n".join(lines))
    return "".join(parts)
