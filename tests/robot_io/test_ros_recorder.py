"""The ROS 2 demonstration recorder: its episode logic in-process, and a recording from the arm emulator over DDS.

The DDS test runs `python -m robot_io.sim_robot` (the arm, cameras on) as a child process, publishes teleop and
/joint_command from a test-side node so the arm moves, records two episodes with run_ros_recorder and checks the
dataset against what was published.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String

from robot_io import topics
from robot_io.datasets import DatasetWriter, check_dataset, load_dataset
from robot_io.ros_recorder import (
    PARAMETER_DEFAULTS,
    EpisodeRecorder,
    LatestInputs,
    RecorderParams,
    RosRecorderConfig,
    RosRecorderError,
    features_of,
    image_array,
    run_ros_recorder,
)
from robot_io.sim_robot import ros_arguments
from sim.robot_spec import load_robot_spec

ROOT = Path(__file__).resolve().parents[2]
ARM_PARAMS = ROOT / "launch" / "params" / "arm.yaml"
ARM = load_robot_spec("arm")
JOINTS = list(ARM.joint_names)
IMAGE_SHAPE = (96, 128, 3)  # the emulator's default camera_height x camera_width

# ---------------------------------------------------------------- episodes, without ROS


def fake_frame(value: float) -> dict[str, np.ndarray]:
    n = len(JOINTS)
    return {
        "observation.state": np.full(2 * n, value, dtype=np.float32),
        "observation.images.wrist_cam": np.full(IMAGE_SHAPE, 100, dtype=np.uint8),
        "observation.images.scene_cam": np.full(IMAGE_SHAPE, 50, dtype=np.uint8),
        "action": np.full(7, value, dtype=np.float32),
        "action.joint_target": np.full(n, value, dtype=np.float32),
    }


def new_writer(root: Path) -> DatasetWriter:
    shapes = {"wrist_cam": IMAGE_SHAPE, "scene_cam": IMAGE_SHAPE}
    return DatasetWriter.create(root, fps=30, robot_type="arm", features=features_of(ARM, shapes))


def test_episodes_follow_the_operator_events_and_mark_the_last_frame_done(tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    recorder = EpisodeRecorder(new_writer(root), "task", episodes=3, frames_per_episode=5)
    # episode A: 2 frames, then rerecord -> discarded
    assert recorder.step(fake_frame(1.0), [], [])
    assert recorder.step(fake_frame(2.0), [], [])
    assert recorder.step(fake_frame(3.0), [], ["rerecord"])
    # episode 0: the length limit (5 slots, one dropped as stale), intervention toggled on at its 2nd frame
    assert recorder.step(fake_frame(10.0), [], [])
    assert recorder.step(None, ["observation.state"], ["intervention"])
    for value in (11.0, 12.0, 13.0):
        assert recorder.step(fake_frame(value), [], [])
    # episode 1: `next` with no frame yet goes on; success marked at the 2nd frame; `next` ends it
    assert recorder.step(fake_frame(20.0), [], ["next", "bogus"])
    assert recorder.step(fake_frame(21.0), [], ["success"])
    assert recorder.step(None, [], ["next"])
    # episode 2 is stopped: discarded, and nothing more is recorded
    assert recorder.step(fake_frame(30.0), [], [])
    assert not recorder.step(fake_frame(31.0), [], ["stop"])
    recorder.close()
    stats = recorder.stats
    assert (stats.committed, stats.discarded, stats.frames, stats.stopped) == (2, 2, [4, 2], True)
    assert stats.dropped_frames == 1 and stats.stale == {"observation.state": 1}
    assert stats.unknown_events == ["bogus"]
    assert check_dataset(root) == []
    dataset = load_dataset(root)
    assert dataset.num_episodes == 2
    first, second = dataset.frames(0), dataset.frames(1)
    np.testing.assert_array_equal(first["action"][:, 0], [10.0, 11.0, 12.0, 13.0])
    np.testing.assert_array_equal(first["next.done"], [False, False, False, True])
    np.testing.assert_array_equal(first["complementary_info.is_intervention"], [False, True, True, True])
    np.testing.assert_array_equal(first["next.success"], [False] * 4)
    np.testing.assert_array_equal(second["action"][:, 0], [20.0, 21.0])
    np.testing.assert_array_equal(second["next.success"], [False, True])
    np.testing.assert_array_equal(second["next.done"], [False, True])
    np.testing.assert_array_equal(second["complementary_info.is_intervention"], [True, True])  # kept across episodes
    np.testing.assert_array_equal(second["next.reward"], [0.0, 0.0])


def test_latest_inputs_drop_a_frame_while_an_input_is_missing_or_stale() -> None:
    inputs = LatestInputs(["a", "b"])
    inputs.put("a", np.ones(1))
    assert inputs.missing() == ["b"]
    assert inputs.sample(time.monotonic(), 0.2) == (None, ["b"])
    inputs.put("b", np.zeros(1))
    values, stale = inputs.sample(time.monotonic(), 0.2)
    assert stale == [] and set(values) == {"a", "b"}
    assert inputs.sample(time.monotonic() + 0.3, 0.2) == (None, ["a", "b"])
    inputs.add_event("next")
    assert inputs.take_events() == ["next"] and inputs.take_events() == []


def test_params_from_the_arm_yaml_and_bad_values_are_named() -> None:
    import yaml

    section = yaml.safe_load(ARM_PARAMS.read_text())[topics.RECORDER_NODE]["ros__parameters"]
    assert set(section) == set(PARAMETER_DEFAULTS)
    params = RecorderParams.from_values(section)
    assert params.cameras == ("wrist_cam", "scene_cam") and params.fps == 30 and params.staleness_s == 0.2
    assert RecorderParams.from_values({**section, "cameras": [""]}).cameras == ARM.cameras
    assert RecorderParams.from_values({**section, "episode_seconds": 1.5}).frames_per_episode == 45
    for key, value in (("cameras", ["wirst_cam"]), ("fps", 0), ("staleness_s", 0.0), ("episodes", 1.5)):
        with pytest.raises(RosRecorderError, match=key):
            RecorderParams.from_values({**section, key: value})


def test_images_are_converted_to_rgb_and_bad_encodings_name_the_topic() -> None:
    message = Image()
    message.height, message.width, message.step, message.encoding = 2, 2, 8, "bgr8"  # 2 bytes of row padding
    message.data = bytes([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0])
    np.testing.assert_array_equal(image_array(message, "/cam"), [[[3, 2, 1], [6, 5, 4]], [[9, 8, 7], [12, 11, 10]]])
    message.encoding = "mono8"
    with pytest.raises(RosRecorderError, match=r"/cam: encoding 'mono8'"):
        image_array(message, "/cam")


# ---------------------------------------------------------------- a recording from the emulator over DDS

EPISODE_SECONDS = 1.5
FPS = 30
COMMAND_RATE_HZ = 50.0  # the teleop device and its IK publish at the arm's control rate
# /joint_states at 250 Hz, not the YAML's 1000: this process receives them twice (recorder and probe) on a 2-core
# machine; the recorder samples the latest at 30 Hz either way
JOINT_STATE_RATE_HZ = 250.0
STARTUP_TIMEOUT_S = 20.0


class Teleop:
    """The test's side: publishes what a teleop device and its IK would, and records /joint_states."""

    def __init__(self, context: rclpy.Context) -> None:
        self.node = rclpy.create_node("test_teleop", context=context)
        node = self.node
        self.ee_delta = node.create_publisher(TwistStamped, topics.TELEOP_EE_DELTA, topics.TELEOP_QOS)
        self.gripper = node.create_publisher(Float64, topics.TELEOP_GRIPPER, topics.TELEOP_QOS)
        self.joint_command = node.create_publisher(JointState, topics.JOINT_COMMAND, topics.COMMAND_QOS)
        self.events = node.create_publisher(String, topics.TELEOP_EVENTS, topics.TELEOP_EVENTS_QOS)
        self.lock = threading.Lock()
        self.joint_states: set[bytes] = set()  # float32 [pos, vel] rows, as the recorder stores them
        self.positions: list[np.ndarray] = []
        self.images = 0
        self.deltas: set[bytes] = set()  # float32 ee deltas, as published
        self.grippers: set[bytes] = set()  # float32 gripper commands, as published
        self.targets: set[bytes] = set()  # float32 joint targets in spec order, as published
        node.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states, topics.SENSOR_QOS)
        node.create_subscription(Image, topics.camera_image_topic("scene_cam"), self._on_image, topics.CAMERA_QOS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(node)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._spin, daemon=True), threading.Thread(target=self._publish)]
        for thread in self._threads:
            thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_joint_states(self, message: JointState) -> None:
        assert list(message.name) == JOINTS  # the emulator publishes in spec order
        row = np.concatenate([message.position, message.velocity]).astype(np.float32)
        with self.lock:
            self.joint_states.add(row.tobytes())
            self.positions.append(row[: len(JOINTS)])

    def _on_image(self, message: Image) -> None:
        with self.lock:
            self.images += 1

    def _publish(self) -> None:
        """Every 20 ms: a distinct ee delta and gripper, and a moving joint target sent in reversed joint order."""
        start_s, k = time.monotonic(), 0
        while not self._stop.is_set():
            t = k / COMMAND_RATE_HZ
            delta = np.array([math.sin(t), math.cos(t), 0.5, -0.25, (k % 100) / 100.0, -1.0])
            gripper = 0.5 + 0.5 * math.sin(3.0 * t)
            target = ARM.default_joint_pos.copy()
            target[[0, 1, 3]] += 0.3 * math.sin(2.0 * math.pi * 0.7 * t)  # the arm moves: the cameras see it
            with self.lock:
                self.deltas.add(delta.astype(np.float32).tobytes())
                self.grippers.add(np.float32(gripper).tobytes())
                self.targets.add(target.astype(np.float32).tobytes())
            message = TwistStamped()
            message.header.stamp = self.node.get_clock().now().to_msg()
            linear, angular = message.twist.linear, message.twist.angular
            linear.x, linear.y, linear.z, angular.x, angular.y, angular.z = (float(v) for v in delta)
            self.ee_delta.publish(message)
            self.gripper.publish(Float64(data=gripper))
            command = JointState()
            command.name = JOINTS[::-1]
            command.position = [float(v) for v in target[::-1]]
            self.joint_command.publish(command)
            k += 1
            time.sleep(max(0.0, start_s + k / COMMAND_RATE_HZ - time.monotonic()))

    def send_event_when_heard(self, word: str, timeout_s: float) -> None:
        """Publish an event once the recorder's reader has matched (the topic is volatile)."""
        deadline_s = time.monotonic() + timeout_s
        while self.events.get_subscription_count() == 0:
            assert time.monotonic() < deadline_s, f"the recorder never subscribed to {topics.TELEOP_EVENTS}"
            time.sleep(0.01)
        self.events.publish(String(data=word))

    def wait_for_streams(self, timeout_s: float) -> None:
        deadline_s = time.monotonic() + timeout_s
        while time.monotonic() < deadline_s:
            with self.lock:
                if len(self.positions) > 10 and self.images > 2:
                    return
            time.sleep(0.05)
        raise AssertionError("the emulator's /joint_states and camera images did not arrive")

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


@contextmanager
def arm_emulator(tmp_path: Path) -> Iterator[Teleop]:
    """The arm emulator (cameras at 30 Hz) as a child process, and the test's teleop node; it must exit 0."""
    overrides = {"camera_rate_hz": 30.0, "joint_state_rate_hz": JOINT_STATE_RATE_HZ}
    command = [sys.executable, "-m", "robot_io.sim_robot", *ros_arguments(ARM_PARAMS, overrides)[1:]]
    log_path = tmp_path / "sim_robot.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context)
    teleop = Teleop(context)
    try:
        yield teleop
    finally:
        teleop.close()
        rclpy.try_shutdown(context=context)
        if process.poll() is None:
            process.terminate()
        try:
            code = process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            code = None
        assert code == 0, f"the emulator exited with {code}:\n{log_path.read_text()}"


def matched_fraction(rows: np.ndarray, published: set[bytes]) -> float:
    return float(np.mean([np.ascontiguousarray(row, dtype=np.float32).tobytes() in published for row in rows]))


@pytest.mark.slow
def test_records_two_episodes_from_the_arm_emulator_over_dds(ros_domain: int, tmp_path: Path) -> None:
    root = tmp_path / "dataset"
    config = RosRecorderConfig(
        dataset=root, params=ARM_PARAMS, episodes=2, episode_seconds=EPISODE_SECONDS, fps=FPS, startup_timeout_s=10.0
    )
    with arm_emulator(tmp_path) as teleop:
        teleop.wait_for_streams(STARTUP_TIMEOUT_S)
        # both arrive during the recorder's start-up or its first frames: success marks episode 0 only,
        # intervention stays on for the rest of the recording
        events = threading.Thread(
            target=lambda: [teleop.send_event_when_heard(word, 10.0) for word in ("success", "intervention")]
        )
        events.start()
        summary = run_ros_recorder(config)
        events.join(timeout=10.0)
        with teleop.lock:
            joint_states, targets = set(teleop.joint_states), set(teleop.targets)
            deltas, grippers = set(teleop.deltas), set(teleop.grippers)
    print(f"\nrecorder summary: {summary}")

    assert summary["episodes_committed"] == 2 and summary["episodes_discarded"] == 0 and not summary["stopped"]
    assert check_dataset(root) == []
    dataset = load_dataset(root)
    assert dataset.num_episodes == 2 and dataset.fps == FPS
    # 45 sampling slots per episode: each is a frame or a counted drop (exact); a loaded 2-core machine may drop a
    # few to staleness (0.2 s), so at least 40 of the 45 must be frames
    slots = round(EPISODE_SECONDS * FPS)
    assert sum(summary["episode_frames"]) + summary["dropped_frames"] == 2 * slots, summary
    n = len(JOINTS)
    for episode, frames_written in enumerate(summary["episode_frames"]):
        frames = dataset.frames(episode)
        length = len(frames["action"])
        assert length == frames_written and slots - 5 <= length <= slots, summary
        np.testing.assert_array_equal(frames["next.done"], [False] * (length - 1) + [True])
        np.testing.assert_array_equal(frames["next.reward"], 0.0)
        # the state is a /joint_states the emulator published (float32 of position and velocity, by name): every
        # frame, but for messages the test's best-effort reader itself missed (at most 5%)
        state = frames["observation.state"]
        assert state.shape == (length, 2 * n)
        assert matched_fraction(state, joint_states) >= 0.95
        # action and joint target: exactly what the test published (reliable), the joint target back in spec order;
        # ee delta and gripper each (they are two topics: a frame may pair a delta with the previous gripper)
        assert matched_fraction(frames["action"][:, :6], deltas) == 1.0
        assert matched_fraction(frames["action"][:, 6:], grippers) == 1.0
        assert matched_fraction(frames["action.joint_target"], targets) == 1.0
        assert np.ptp(frames["action"][:, 0]) > 0.1 and np.ptp(state[:, 0]) > 0.05  # commands varied, the arm moved
        images = {camera: dataset.video_frames(episode, f"observation.images.{camera}") for camera in ARM.cameras}
        for camera, video in images.items():
            assert video.shape == (length, *IMAGE_SHAPE), (camera, video.shape)
            assert video.std(axis=(1, 2, 3)).min() > 10.0, camera  # a render, not a blank or constant image
        wrist, scene = (images[camera].astype(np.float64) for camera in ("wrist_cam", "scene_cam"))
        assert np.abs(wrist - scene).mean() > 20.0  # two different viewpoints
        # the scene camera sees the arm move (against the first frame: the 0.7 Hz motion's period is about one episode)
        assert np.abs(scene - scene[0]).mean(axis=(1, 2, 3)).max() > 2.0
    success = [dataset.frames(episode)["next.success"] for episode in range(2)]
    intervention = [dataset.frames(episode)["complementary_info.is_intervention"] for episode in range(2)]
    assert success[0][-1] and not success[1].any()  # marked in episode 0; each episode starts unmarked
    assert intervention[0][-1] and intervention[1].all()
