"""Record demonstrations from a robot over ROS 2 (`simreal record --ros --params FILE --dataset DIR`).

The recorder of `simreal teleop` (robot_io/teleop/arm_session.py), on a real robot: the same dataset features,
filled from topics instead of a simulation.

* Inputs. `/joint_states` (sensor_msgs/JointState, matched to the spec's joint order by name), each camera's
  `/camera/<name>/image_raw` (sensor_msgs/Image, rgb8 or bgr8), the teleop device's `/teleop/ee_delta`
  (geometry_msgs/TwistStamped: linear = dx, dy, dz, angular = droll, dpitch, dyaw, normalized to [-1, 1]) and
  `/teleop/gripper` (std_msgs/Float64, 0 open .. 1 closed), and `/joint_command` (sensor_msgs/JointState
  positions, by name), the joint targets the teleop's IK sent. Subscription callbacks only keep the latest value
  of each, with its arrival time (time.monotonic: the recorder's own clock, whatever the robot's clock says).
* Frames. A sampler in the calling thread takes a frame every 1 / fps s (absolute slots, so sleep jitter does
  not accumulate) from the latest values: observation.state = pos.<joint>..., vel.<joint>..., the images,
  action = ee delta + gripper, action.joint_target, next.reward 0, next.done (true on an episode's last frame),
  next.success, complementary_info.is_intervention. A frame is written only when every input has arrived and
  none arrived longer than `staleness_s` ago; otherwise it is dropped and counted, per stale input. A teleop
  device must therefore publish steadily (as robot_io/teleop/twist_teleop.py does), zeros included. A slot the
  sampler missed entirely (a stall of this process) is skipped, not sampled late in a burst, and counted in
  `late_slots`.
* Episodes. The first starts once every input has arrived (`startup_timeout_s`). An episode ends after
  `episode_seconds` of sampling slots (0: no limit), or on an operator event; each is committed atomically by the
  dataset writer. Operator events are std_msgs/String words on `/teleop/events` (the keys of the sim recorder):
  `next` (n) commits the episode and starts the next, `rerecord` (r) discards it and records it again, `stop` (q)
  discards the episode in progress and ends the recording, `success` (s) marks this episode a success from that
  frame on, `intervention` (space) toggles complementary_info.is_intervention. Recording ends after `episodes`
  committed episodes, on `stop`, or on SIGINT (the episode in progress is discarded).
* Parameters: section `simreal_recorder` of the parameter file (launch/params/arm.yaml), read by rclpy as the
  other nodes read theirs; a RosRecorderConfig field that is not None overrides the file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String

from robot_io import ros_args, topics
from robot_io.datasets import DatasetWriter, FeatureSpec
from sim.errors import SimrealError
from sim.robot_spec import RobotSpec, load_robot_spec

ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]  # as robot_io/teleop/arm_session.py
IMAGE_NAMES = ["height", "width", "channels"]
SPIN_PERIOD_S = 0.05
# The node's parameters and their defaults: launch/params/arm.yaml, section simreal_recorder.
PARAMETER_DEFAULTS: dict[str, object] = {
    "robot": "arm",  # sim/robots/<robot>/ (or a spec path): the joint order and the cameras
    "cameras": [""],  # camera names; [""] or []: every camera of the spec
    "fps": 30,
    "episodes": 1,
    "episode_seconds": 0.0,  # 0: an episode ends only on an operator event
    "staleness_s": 0.2,
    "task": "teleoperated demonstration",
    "startup_timeout_s": 10.0,
}


class RosRecorderError(SimrealError):
    """The recording cannot start or go on: a bad parameter, a missing or malformed input; says which."""


@dataclass
class RosRecorderConfig:
    """What `simreal record --ros` passes; a field left None comes from the parameter file (or the default)."""

    dataset: Path
    params: Path | None = None
    episodes: int | None = None
    fps: int | None = None
    episode_seconds: float | None = None
    robot: str | None = None
    cameras: Sequence[str] | None = None
    staleness_s: float | None = None
    task: str | None = None
    startup_timeout_s: float | None = None

    def overrides(self) -> dict[str, object]:
        """The parameters this config sets (the ones not None), as `-p name:=value` overrides."""
        names = [name for name in PARAMETER_DEFAULTS if getattr(self, name) is not None]
        # an empty string list has no ROS parameter type: [""] stands for "the spec's cameras"
        return {name: list(self.cameras or [""]) if name == "cameras" else getattr(self, name) for name in names}


@dataclass(frozen=True)
class RecorderParams:
    """The node's parameters, validated."""

    spec: RobotSpec
    cameras: tuple[str, ...]
    fps: int
    episodes: int
    episode_seconds: float
    staleness_s: float
    task: str
    startup_timeout_s: float

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> RecorderParams:
        """From parameter name -> value; RosRecorderError names a bad one."""
        spec = load_robot_spec(str(values["robot"]))
        cameras = tuple(str(name) for name in values["cameras"] or () if str(name))  # type: ignore[union-attr]
        cameras = cameras or spec.cameras
        unknown = [name for name in cameras if name not in spec.cameras]
        if unknown:
            raise RosRecorderError(f"parameter cameras: {unknown} not in robot '{spec.name}' cameras {spec.cameras}")
        params = cls(
            spec=spec,
            cameras=cameras,
            fps=_whole(values, "fps"),
            episodes=_whole(values, "episodes"),
            episode_seconds=_seconds(values, "episode_seconds", allow_zero=True),
            staleness_s=_seconds(values, "staleness_s", allow_zero=False),
            task=str(values["task"]),
            startup_timeout_s=_seconds(values, "startup_timeout_s", allow_zero=False),
        )
        if not params.task:
            raise RosRecorderError("parameter task must name the task being demonstrated")
        return params

    @property
    def frames_per_episode(self) -> int:
        """Sampling slots per episode (0: no limit)."""
        return round(self.episode_seconds * self.fps)


def _whole(values: Mapping[str, object], key: str) -> int:
    value = values[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not number or value != int(value) or value < 1:
        raise RosRecorderError(f"parameter {key} must be a positive whole number, got {value!r}")
    return int(value)


def _seconds(values: Mapping[str, object], key: str, allow_zero: bool) -> float:
    value = values[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0.0 or (value == 0.0 and not allow_zero):
        raise RosRecorderError(f"parameter {key} must be a finite number of seconds {'>= 0' if allow_zero else '> 0'}")
    return float(value)


def features_of(spec: RobotSpec, image_shapes: Mapping[str, tuple[int, int, int]]) -> dict[str, FeatureSpec]:
    """The dataset features: those of the sim recorder, with observation.state the measured joints."""
    joints = list(spec.joint_names)
    state_names = [f"pos.{joint}" for joint in joints] + [f"vel.{joint}" for joint in joints]
    images = {
        image_key(camera): FeatureSpec("video", shape, names=IMAGE_NAMES) for camera, shape in image_shapes.items()
    }
    return {
        "observation.state": FeatureSpec("float32", (len(state_names),), names=state_names),
        **images,
        "action": FeatureSpec("float32", (len(ACTION_NAMES),), names=ACTION_NAMES),
        "action.joint_target": FeatureSpec("float32", (len(joints),), names=joints),
        "next.reward": FeatureSpec("float32", (1,)),
        "next.done": FeatureSpec("bool", (1,)),
        "next.success": FeatureSpec("bool", (1,)),
        "complementary_info.is_intervention": FeatureSpec("bool", (1,)),
    }


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


# ---------------------------------------------------------------- messages -> arrays (executor thread)


def joint_order(message_names: Sequence[str], spec_names: Sequence[str], topic: str) -> np.ndarray:
    """Index into the message of each spec joint; RosRecorderError naming the topic if one is missing."""
    index = {name: i for i, name in enumerate(message_names)}
    missing = [name for name in spec_names if name not in index]
    if missing:
        raise RosRecorderError(f"{topic}: joint(s) {missing} missing (message names {list(message_names)})")
    return np.array([index[name] for name in spec_names])


def image_array(message: Image, topic: str) -> np.ndarray:
    """An rgb8 or bgr8 Image as height x width x 3 uint8 RGB; RosRecorderError naming the topic otherwise."""
    if message.encoding not in ("rgb8", "bgr8"):
        raise RosRecorderError(f"{topic}: encoding {message.encoding!r}; the recorder takes rgb8 or bgr8")
    height, width, step = message.height, message.width, message.step
    if step < 3 * width or len(message.data) < step * height:
        raise RosRecorderError(f"{topic}: {len(message.data)} bytes for {height} rows of step {step} ({width} px)")
    rows = np.frombuffer(message.data, dtype=np.uint8, count=step * height).reshape(height, step)
    image = rows[:, : 3 * width].reshape(height, width, 3)
    return np.ascontiguousarray(image[:, :, ::-1] if message.encoding == "bgr8" else image)


class LatestInputs:
    """The newest value of each input with its arrival time, and the operator events since the last take."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._values: dict[str, np.ndarray] = {}
        self._arrival_s: dict[str, float] = {}
        self.keys = list(keys)
        self._events: list[str] = []
        self._lock = threading.Lock()
        self.error: RosRecorderError | None = None  # a malformed message, raised by the sampler

    def put(self, key: str, value: np.ndarray) -> None:
        now_s = time.monotonic()
        with self._lock:
            self._values[key] = value
            self._arrival_s[key] = now_s

    def add_event(self, word: str) -> None:
        with self._lock:
            self._events.append(word)

    def take_events(self) -> list[str]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def missing(self) -> list[str]:
        """The inputs that never arrived."""
        with self._lock:
            return [key for key in self.keys if key not in self._values]

    def sample(self, now_s: float, staleness_s: float) -> tuple[dict[str, np.ndarray] | None, list[str]]:
        """(the latest values, []) if all are present and fresh, else (None, the missing or stale inputs)."""
        if self.error is not None:
            raise self.error
        with self._lock:
            stale = [key for key in self.keys if now_s - self._arrival_s.get(key, -np.inf) > staleness_s]
            if stale:
                return None, stale
            return dict(self._values), []


# ---------------------------------------------------------------- episodes (no ROS: testable with fake inputs)


@dataclass
class EpisodeStats:
    committed: int = 0
    discarded: int = 0  # rerecorded, stopped, or ended without a frame
    frames: list[int] = field(default_factory=list)  # of each committed episode
    dropped_frames: int = 0
    stale: dict[str, int] = field(default_factory=dict)  # input -> dropped frames it was missing or stale in
    unknown_events: list[str] = field(default_factory=list)
    stopped: bool = False


class EpisodeRecorder:
    """Frames and operator events, slot by slot, into episodes of a DatasetWriter."""

    def __init__(self, writer: DatasetWriter, task: str, episodes: int, frames_per_episode: int) -> None:
        self.writer, self.task = writer, task
        self.episodes, self.frames_per_episode = episodes, frames_per_episode
        self.stats = EpisodeStats()
        self.intervention = False  # kept across episodes, as in the sim recorder
        self._recording = False
        self._pending: dict[str, np.ndarray] | None = None  # written once the next frame shows it was not the last
        self._slots = 0
        self._frames = 0
        self._success = False

    @property
    def done(self) -> bool:
        return self.stats.stopped or self.stats.committed >= self.episodes

    def step(self, sample: dict[str, np.ndarray] | None, stale: Sequence[str], events: Sequence[str]) -> bool:
        """One sampling slot: the events first, then the frame (None: dropped, stale names why); False when done."""
        if not self._recording:
            self._start()
        for word in events:
            if word == "intervention":
                self.intervention = not self.intervention
            elif word == "success":
                self._success = True
            elif word == "rerecord":
                self._discard()
                return True
            elif word == "stop":
                self._discard()
                self.stats.stopped = True
                return False
            elif word == "next":
                if self._pending is not None:  # as `n` in the sim recorder: an empty episode goes on
                    self._finish()
                    return not self.done
            else:
                self.stats.unknown_events.append(word)
        self._add(sample, stale)
        self._slots += 1
        if self.frames_per_episode and self._slots >= self.frames_per_episode:
            self._finish()
        return not self.done

    def close(self) -> None:
        """Discard an episode in progress (SIGINT, an error): the dataset keeps only committed ones."""
        if self._recording:
            self._discard()
        self.writer.close()

    def _start(self) -> None:
        self.writer.start_episode(task=self.task)
        self._recording, self._pending, self._slots, self._frames, self._success = True, None, 0, 0, False

    def _add(self, sample: dict[str, np.ndarray] | None, stale: Sequence[str]) -> None:
        if sample is None:
            self.stats.dropped_frames += 1
            for key in stale:
                self.stats.stale[key] = self.stats.stale.get(key, 0) + 1
            return
        frame = {
            **sample,
            "next.reward": np.zeros(1, dtype=np.float32),
            "next.done": np.array([False]),
            "next.success": np.array([self._success]),
            "complementary_info.is_intervention": np.array([self.intervention]),
        }
        if self._pending is not None:
            self.writer.add_frame(self._pending)
        self._pending = frame
        self._frames += 1

    def _finish(self) -> None:
        """The held frame is the last: done, written, committed (an episode without frames is discarded)."""
        if self._pending is None:
            self._discard()
            return
        self._pending["next.done"] = np.array([True])
        self.writer.add_frame(self._pending)
        self.writer.commit_episode()
        self.stats.committed += 1
        self.stats.frames.append(self._frames)
        self._recording, self._pending = False, None

    def _discard(self) -> None:
        self.writer.discard_episode()
        self.stats.discarded += 1
        self._recording, self._pending = False, None


# ---------------------------------------------------------------- the node


class RecorderNode(Node):
    """Subscriptions that fill LatestInputs; the sampling happens in run_ros_recorder's thread."""

    def __init__(self, context: rclpy.Context, cli_args: list[str]) -> None:
        super().__init__(topics.RECORDER_NODE, context=context, cli_args=cli_args)
        self.params = RecorderParams.from_values(self._declare_parameters())
        spec = self.params.spec
        self.topic_of = {
            "observation.state": topics.JOINT_STATES,
            **{image_key(camera): topics.camera_image_topic(camera) for camera in self.params.cameras},
            "action.ee_delta": topics.TELEOP_EE_DELTA,
            "action.gripper": topics.TELEOP_GRIPPER,
            "action.joint_target": topics.JOINT_COMMAND,
        }
        self.inputs = LatestInputs(list(self.topic_of))
        self._state_order: tuple[tuple[str, ...], np.ndarray] | None = None  # cached per name list
        joints = spec.joint_names
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, topics.SENSOR_QOS)
        for camera in self.params.cameras:
            topic = topics.camera_image_topic(camera)
            self.create_subscription(Image, topic, self._image_callback(camera, topic), topics.CAMERA_QOS)
        self.create_subscription(TwistStamped, topics.TELEOP_EE_DELTA, self._on_ee_delta, topics.TELEOP_QOS)
        self.create_subscription(Float64, topics.TELEOP_GRIPPER, self._on_gripper, topics.TELEOP_QOS)
        self.create_subscription(JointState, topics.JOINT_COMMAND, self._on_joint_command, topics.COMMAND_QOS)
        self.create_subscription(String, topics.TELEOP_EVENTS, self._on_event, topics.TELEOP_EVENTS_QOS)
        self._joint_names = joints

    def _declare_parameters(self) -> dict[str, object]:
        descriptor = ParameterDescriptor(dynamic_typing=True)
        values = {
            name: self.declare_parameter(name, default, descriptor).value
            for name, default in PARAMETER_DEFAULTS.items()
        }
        overrides = getattr(self, "_parameter_overrides", {})
        unknown = sorted(set(overrides) - set(PARAMETER_DEFAULTS) - {"use_sim_time"})
        if unknown:
            raise RosRecorderError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETER_DEFAULTS)}")
        return values

    def _guarded(self, topic: str, convert) -> None:
        """Run a conversion; a malformed message is kept for the sampler to raise (a callback cannot stop the run)."""
        try:
            convert()
        except RosRecorderError as error:
            self.inputs.error = error
        except (ValueError, TypeError) as error:
            self.inputs.error = RosRecorderError(f"{topic}: malformed message ({error})")

    def _on_joint_states(self, message: JointState) -> None:
        def convert() -> None:
            names = tuple(message.name)
            if self._state_order is None or self._state_order[0] != names:
                self._state_order = (names, joint_order(names, self._joint_names, topics.JOINT_STATES))
            order = self._state_order[1]
            position = np.asarray(message.position, dtype=np.float64)[order]
            velocity = np.asarray(message.velocity, dtype=np.float64)[order]
            self.inputs.put("observation.state", np.concatenate([position, velocity]).astype(np.float32))

        self._guarded(topics.JOINT_STATES, convert)

    def _image_callback(self, camera: str, topic: str):
        def on_image(message: Image) -> None:
            self._guarded(topic, lambda: self.inputs.put(image_key(camera), image_array(message, topic)))

        return on_image

    def _on_ee_delta(self, message: TwistStamped) -> None:
        linear, angular = message.twist.linear, message.twist.angular
        delta = np.array([linear.x, linear.y, linear.z, angular.x, angular.y, angular.z])
        self.inputs.put("action.ee_delta", np.clip(delta, -1.0, 1.0))

    def _on_gripper(self, message: Float64) -> None:
        self.inputs.put("action.gripper", np.array([np.clip(message.data, 0.0, 1.0)]))

    def _on_joint_command(self, message: JointState) -> None:
        def convert() -> None:
            order = joint_order(message.name, self._joint_names, topics.JOINT_COMMAND)
            target = np.asarray(message.position, dtype=np.float64)[order]
            self.inputs.put("action.joint_target", target.astype(np.float32))

        self._guarded(topics.JOINT_COMMAND, convert)

    def _on_event(self, message: String) -> None:
        self.inputs.add_event(message.data.strip().lower())


def frame_from(values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The dataset's frame features from the latest inputs (action = ee delta + gripper)."""
    frame = {key: value for key, value in values.items() if key not in ("action.ee_delta", "action.gripper")}
    frame["action"] = np.append(values["action.ee_delta"], values["action.gripper"]).astype(np.float32)
    return frame


# ---------------------------------------------------------------- the run


def run_ros_recorder(config: RosRecorderConfig) -> dict:
    """Record episodes from the ROS graph into config.dataset until done; a summary of what was recorded."""
    if config.params is not None and not Path(config.params).is_file():
        raise RosRecorderError(f"parameter file {config.params} does not exist")
    context = rclpy.Context()
    cli_args = ros_args.ros_arguments(config.params, config.overrides())
    rclpy.init(context=context)
    node: RecorderNode | None = None
    stop_spinning = threading.Event()
    spinner: threading.Thread | None = None
    executor = SingleThreadedExecutor(context=context)
    try:
        node = RecorderNode(context, cli_args)
        executor.add_node(node)
        spinner = threading.Thread(target=_spin, args=(executor, stop_spinning), name="recorder_spin", daemon=True)
        spinner.start()
        _await_inputs(node, context)
        return _record(node, context, config.dataset)
    finally:
        stop_spinning.set()
        if spinner is not None:
            spinner.join(timeout=5.0)
        executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def _spin(executor: SingleThreadedExecutor, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
        except Exception:  # the context shut down (SIGINT) under the executor: the sampler sees it and ends
            if stop.is_set() or not executor.context.ok():
                return
            raise


def _await_inputs(node: RecorderNode, context: rclpy.Context) -> None:
    """Until every input has arrived once; RosRecorderError naming the silent topics after startup_timeout_s."""
    deadline_s = time.monotonic() + node.params.startup_timeout_s
    while context.ok():
        missing = node.inputs.missing()
        if not missing:
            return
        if node.inputs.error is not None:
            raise node.inputs.error
        if time.monotonic() > deadline_s:
            silent = ", ".join(node.topic_of[key] for key in missing)
            raise RosRecorderError(f"nothing arrived on {silent} within {node.params.startup_timeout_s:g} s")
        time.sleep(0.02)


def _record(node: RecorderNode, context: rclpy.Context, dataset: Path) -> dict:
    params = node.params
    first, _ = node.inputs.sample(time.monotonic(), np.inf)
    shapes = {camera: tuple(first[image_key(camera)].shape) for camera in params.cameras}  # type: ignore[index]
    writer = open_dataset(Path(dataset), params, features_of(params.spec, shapes))
    episodes = EpisodeRecorder(writer, params.task, params.episodes, params.frames_per_episode)
    period_s = 1.0 / params.fps
    late_slots = 0
    start_s = time.monotonic()
    slot = 0
    try:
        while context.ok():
            slot_s = start_s + slot * period_s
            wait_s = slot_s - time.monotonic()
            if wait_s > 0.0:
                time.sleep(wait_s)
            elif -wait_s > period_s:  # a slot missed entirely (a stall): skipped, not sampled late in a burst
                missed = int(-wait_s / period_s)
                late_slots += missed
                slot += missed
                continue
            values, stale = node.inputs.sample(time.monotonic(), params.staleness_s)
            if not episodes.step(None if values is None else frame_from(values), stale, node.inputs.take_events()):
                break
            slot += 1
    finally:
        episodes.close()
    stats = episodes.stats
    return {
        "dataset": str(dataset),
        "robot": params.spec.name,
        "fps": params.fps,
        "cameras": list(params.cameras),
        "episodes_committed": stats.committed,
        "episodes_discarded": stats.discarded,
        "dataset_episodes": writer.num_episodes,
        "episode_frames": stats.frames,
        "dropped_frames": stats.dropped_frames,
        "dropped_by_input": {node.topic_of[key]: count for key, count in stats.stale.items()},
        "late_slots": late_slots,
        "unknown_events": stats.unknown_events,
        "stopped": stats.stopped or not context.ok(),
    }


def open_dataset(root: Path, params: RecorderParams, features: dict[str, FeatureSpec]) -> DatasetWriter:
    """A new dataset, or more episodes appended to one recorded with the same fps and features."""
    if not (root / "meta" / "info.json").is_file():
        return DatasetWriter.create(root, fps=params.fps, robot_type=params.spec.name, features=features)
    writer = DatasetWriter.open(root)
    if writer.fps != params.fps:
        raise RosRecorderError(f"{root} was recorded at {writer.fps} fps; this recording is at {params.fps}")
    for key, spec in features.items():
        theirs = writer.features.get(key)
        if theirs is None or theirs.dtype != spec.dtype or tuple(theirs.shape) != tuple(spec.shape):
            found = None if theirs is None else f"{theirs.dtype} {tuple(theirs.shape)}"
            raise RosRecorderError(f"{root}: feature {key!r} is {found} there, {spec.dtype} {spec.shape} here")
    return writer


__all__ = [
    "EpisodeRecorder",
    "LatestInputs",
    "RecorderNode",
    "RosRecorderConfig",
    "RosRecorderError",
    "features_of",
    "run_ros_recorder",
]
