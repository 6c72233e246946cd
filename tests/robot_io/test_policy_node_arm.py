"""The policy node with an arm-like bundle over real DDS: no IMU at all, and a goal from /target_pose.

The bundle is synthetic (8 joints arm_joint1..7 + finger_joint, terms joint_pos_rel, joint_vel, last_action,
target_pose; random MLP weights) so these tests do not depend on a trained arm-reach policy. Its first layer
ignores last_action, so with the joints held at the default pose the policy's command is a function of the
target pose alone, and /joint_command can be checked against simreal_rt's own evaluation of the observation
that target should produce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from geometry_msgs.msg import PoseStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from safetensors.numpy import save_file

import simreal_rt
from policies.bundle import DEPLOY_YAML, WEIGHTS, sha256_of
from policies.bundle import load_bundle as py_load_bundle
from robot_io import topics
from robot_io.policy_node import PARAMETER_DEFAULTS, PolicyNode, read_params, serve
from tests.robot_io.test_policy_node import NodeProcess, RobotDriver, wait_until

REPO = Path(__file__).resolve().parents[2]
ARM_PARAMS = REPO / "launch" / "params" / "arm.yaml"
QUADRUPED = REPO / "policies" / "pretrained" / "quadruped-flat" / "bundle"
JOINTS = [f"arm_joint{i}" for i in range(1, 8)] + ["finger_joint"]
# a Panda-like ready pose and sim/robots/arm/arm.xml's joint ranges
DEFAULT_POS = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.02]
LIMITS = [
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
    (0.0, 0.04),
]
KP, TORQUE_LIMIT_NM, ACTION_SCALE, ACTION_CLIP = 100.0, 80.0, 0.1, 5.0
TERMS = [("joint_pos_rel", 8, 1.0), ("joint_vel", 8, 0.05), ("last_action", 8, 1.0), ("target_pose", 7, 1.0)]
TARGET_OFFSET = 24  # target_pose's place in the observation
OBS_DIM = 31


def write_arm_bundle(out: Path, seed: int = 0) -> Path:
    """An arm-like deploy bundle with random MLP weights (31 -> 32 -> 8) that the exporter's validator accepts."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(scale=0.5, size=(32, OBS_DIM)).astype(np.float32)
    w0[:, 16:24] = 0.0  # last_action does not matter: the command depends on the target alone (at rest)
    tensors = {
        "layers.0.weight": w0,
        "layers.0.bias": rng.normal(scale=0.1, size=32).astype(np.float32),
        "layers.1.weight": rng.normal(scale=0.5, size=(8, 32)).astype(np.float32),
        "layers.1.bias": np.zeros(8, dtype=np.float32),
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / WEIGHTS), metadata={"format": "simreal-mlp"})

    def by_joint(values) -> dict:
        return {name: float(value) for name, value in zip(JOINTS, values, strict=True)}

    deploy = {
        "format_version": 1,
        "robot": "arm",
        "joint_names": JOINTS,
        "default_joint_pos": by_joint(DEFAULT_POS),
        "kp": by_joint([KP] * 8),
        "kd": by_joint([5.0] * 8),
        "action": {"type": "joint_position_offset", "scale": ACTION_SCALE, "clip": ACTION_CLIP},
        "control_dt": 0.02,
        "observation": {
            "terms": [{"name": n, "dim": d, "scale": s, "clip": 100.0} for n, d, s in TERMS],
            "history": 1,
        },
        "network": {
            "type": "mlp",
            "input_dim": OBS_DIM,
            "output_dim": 8,
            "hidden_sizes": [32],
            "activation": "elu",
            "normalizer": "folded into layers.0",
        },
        "safety": {
            "joint_pos_limits_rad": {name: list(limit) for name, limit in zip(JOINTS, LIMITS, strict=True)},
            "velocity_limit_rad_s": by_joint([2.0] * 8),
            "torque_limit_nm": by_joint([TORQUE_LIMIT_NM] * 8),
            "tilt_limit_rad": 1.0,
            "state_timeout_s": 0.1,
            "standing_kp": by_joint([KP] * 8),
            "standing_kd": by_joint([5.0] * 8),
            "damping_kd": 2.0,
        },
        "provenance": {"task": "arm-reach", "run": "synthetic", "iteration": 0, "git_commit": "none", "date": "now"},
        "sha256": sha256_of(out / WEIGHTS),
    }
    (out / DEPLOY_YAML).write_text(yaml.safe_dump(deploy, sort_keys=False))
    py_load_bundle(out)  # both validators accept it
    simreal_rt.load_bundle(str(out))
    return out


@pytest.fixture(scope="module")
def arm_bundle(tmp_path_factory) -> Path:
    return write_arm_bundle(tmp_path_factory.mktemp("arm") / "bundle")


@pytest.fixture
def arm_driver(ros_domain: int) -> Iterator[RobotDriver]:
    """An arm's driver: /joint_states at the default pose, no IMU; it can publish /target_pose."""
    robot = RobotDriver(
        JOINTS, rate_hz=250.0, default_pos=dict(zip(JOINTS, DEFAULT_POS, strict=True)), publish_imu=False
    )
    robot.target_pub = robot.node.create_publisher(PoseStamped, topics.TARGET_POSE, topics.TARGET_POSE_QOS)
    yield robot
    robot.close()


@pytest.fixture
def arm_node(ros_domain: int, tmp_path: Path, arm_bundle: Path) -> Iterator[NodeProcess]:
    """`python -m robot_io.policy_node` with launch/params/arm.yaml, the synthetic bundle, a fast stand-up and
    10 Hz diagnostics."""
    node = NodeProcess(tmp_path / "policy_node.log", params=ARM_PARAMS, bundle=arm_bundle)
    yield node
    node.terminate()


def pose_msg(position, quat_wxyz, frame_id: str = "base") -> PoseStamped:
    """A PoseStamped; the quaternion given (w, x, y, z) as inside simreal, written to ROS's (x, y, z, w)."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = topics.quaternion_ros_from_wxyz(quat_wxyz)
    return msg


def publish_target(driver: RobotDriver, msg: PoseStamped) -> None:
    wait_until(lambda: driver.target_pub.get_subscription_count() > 0, 5.0, "the node's /target_pose reader")
    driver.target_pub.publish(msg)


def expected_command(bundle: simreal_rt.Bundle, target_wxyz: np.ndarray) -> np.ndarray:
    """The core's command at rest in the default pose for this target: the policy on the observation the core
    must build, then action clip, offset, joint limits and the torque band (q = default, q_dot = 0)."""
    observation = np.zeros(OBS_DIM, dtype=np.float32)
    observation[TARGET_OFFSET:] = target_wxyz
    action = np.clip(bundle.evaluate(observation).astype(np.float64), -ACTION_CLIP, ACTION_CLIP)
    default = np.array(DEFAULT_POS)
    lower, upper = np.array(LIMITS).T
    command = np.clip(default + ACTION_SCALE * action, lower, upper)
    band = TORQUE_LIMIT_NM / KP
    return np.clip(np.clip(command, default - band, default + band), lower, upper)


def latest_command(driver: RobotDriver) -> np.ndarray:
    message = driver.joint_commands[-1]
    assert list(message.name) == JOINTS
    return np.asarray(message.position)


# ---- pure parts ----------------------------------------------------------------------------------------------


def test_target_pose_from_ros_reorders_normalizes_and_refuses_non_rotations() -> None:
    msg = pose_msg([0.5, -0.2, 0.3], [0.0, 0.0, 0.0, 2.0])  # w, x, y, z; not normalized
    np.testing.assert_array_equal(topics.target_pose_from_ros(msg.pose), [0.5, -0.2, 0.3, 0.0, 0.0, 0.0, 1.0])
    msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z, msg.pose.orientation.w = 0.1, 0.2, 0.3, 0.4
    pose = topics.target_pose_from_ros(msg.pose)
    np.testing.assert_allclose(pose[3:], np.array([0.4, 0.1, 0.2, 0.3]) / np.sqrt(0.3))
    msg.pose.orientation.w = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        topics.target_pose_from_ros(msg.pose)
    msg.pose.orientation.x = msg.pose.orientation.y = msg.pose.orientation.z = msg.pose.orientation.w = 0.0
    with pytest.raises(ValueError, match="not a rotation"):
        topics.target_pose_from_ros(msg.pose)


def test_arm_params_file_sets_every_node_parameter() -> None:
    """launch/params/arm.yaml names exactly the node's parameters, and rclpy reads it into valid PolicyParams."""
    section = yaml.safe_load(ARM_PARAMS.read_text())[topics.POLICY_NODE]["ros__parameters"]
    assert set(section) == set(PARAMETER_DEFAULTS)
    context = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(ARM_PARAMS)], context=context)
    try:
        node = rclpy.create_node(topics.POLICY_NODE, context=context)
        params = read_params(node)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert params.bundle == Path("policies/pretrained/arm-reach/bundle").resolve()  # relative to the cwd
    assert params.stand_up_via_sit_pose is False and params.base_frame == "base" and params.sit_joint_pos == {}
    assert not params.core_options().stand_up_via_sit_pose


def test_the_core_reads_no_imu_and_waits_for_a_target_for_this_bundle(arm_bundle: Path) -> None:
    core = simreal_rt.ControlCore(str(arm_bundle), JOINTS)
    assert not core.uses_imu and core.observes_target_pose and core.target_pose is None
    quadruped_joints = simreal_rt.load_bundle(str(QUADRUPED)).spec["joint_names"]
    quadruped = simreal_rt.ControlCore(str(QUADRUPED), quadruped_joints)
    assert quadruped.uses_imu and not quadruped.observes_target_pose
    options = simreal_rt.CoreOptions()
    options.imu = simreal_rt.ImuUse.NONE
    with pytest.raises(ValueError, match="reads the IMU"):
        simreal_rt.ControlCore(str(QUADRUPED), quadruped_joints, options)
    options = simreal_rt.CoreOptions()
    options.stand_up_via_sit_pose = False
    core = simreal_rt.ControlCore(str(arm_bundle), JOINTS, options)
    q, t = np.array(DEFAULT_POS), 0.0
    out = core.tick(t, t, q, np.zeros(8), 0.0, None, None, None)  # no IMU, no velocity command
    assert out["state"] == "ZERO_TORQUE" and out["fault"] == "NONE" and np.isnan(out["tilt_rad"])
    assert core.request("stand_up", t) == (True, "accepted")
    while core.state != "STANDING":
        t += 0.02
        assert core.tick(t, t, q, np.zeros(8), 0.0, None, None, None)["fault"] == "NONE"
    accepted, reason = core.request("start_policy", t)
    assert not accepted and "no target pose" in reason
    out = core.tick(t, t, q, np.zeros(8), 0.0, None, None, None, target_pose=[0.4, 0, 0.3, 0, 0, 0, 3.0])
    assert out["have_target_pose"] and not out["target_pose_rejected"]
    np.testing.assert_array_equal(core.target_pose, [0.4, 0, 0.3, 0, 0, 0, 1.0])
    assert core.request("start_policy", t) == (True, "accepted")
    out = core.tick(t + 0.02, t + 0.02, q, np.zeros(8), 0.0, None, None, None)
    assert out["state"] == "POLICY" and out["policy_ran"]
    np.testing.assert_array_equal(core.last_observation[TARGET_OFFSET:], np.float32([0.4, 0, 0.3, 0, 0, 0, 1.0]))


# ---- the running node ----------------------------------------------------------------------------------------


def test_arm_node_starts_without_imu_refuses_policy_until_a_target_and_follows_it(
    arm_driver: RobotDriver, arm_bundle: Path, arm_node: NodeProcess
) -> None:
    """`python -m robot_io.policy_node` with launch/params/arm.yaml; nobody publishes /imu/data."""
    driver = arm_driver
    node = arm_node
    driver.stand_up()  # ZERO_TORQUE, then STANDING: start-up did not wait for an IMU
    assert driver.node.count_subscribers(topics.IMU) == 0
    diagnostics = driver.wait_for_diagnostics(lambda d: d["state"] == "STANDING")
    assert diagnostics["imu_used"] == "false" and diagnostics["fault"] == "NONE"
    assert diagnostics["target_pose_received"] == "false" and diagnostics["target_pose_age_s"] == "nan"

    refused = driver.call("start_policy")
    assert not refused.success and topics.TARGET_POSE in refused.message, refused.message

    # a goal in another frame is ignored: still no target, and a warning names the frame
    publish_target(driver, pose_msg([0.4, 0.0, 0.3], [1.0, 0.0, 0.0, 0.0], frame_id="world"))
    diagnostics = driver.wait_for_diagnostics(lambda d: d["rejected_target_poses"] == "1")
    assert diagnostics["target_pose_received"] == "false" and diagnostics["_level"] == "1"  # WARN
    assert not driver.call("start_policy").success

    bundle = simreal_rt.load_bundle(str(arm_bundle))
    rotation = np.array([0.8, 0.1, -0.3, 0.5])  # w, x, y, z: every component differs, not normalized
    target = np.concatenate([[0.45, -0.15, 0.35], rotation / np.linalg.norm(rotation)])
    publish_target(driver, pose_msg(target[:3], rotation * 3.0))
    diagnostics = driver.wait_for_diagnostics(lambda d: d["target_pose_received"] == "true")
    assert float(diagnostics["target_pose_age_s"]) < 1.0
    np.testing.assert_allclose(yaml.safe_load(diagnostics["target_pose"]), target, atol=1e-4)
    response = driver.call("start_policy")
    assert response.success, response.message
    driver.wait_for_state("POLICY")
    time.sleep(0.1)
    expected = expected_command(bundle, target.astype(np.float32))
    np.testing.assert_allclose(latest_command(driver), expected, atol=1e-5)
    # the order matters: the same numbers read as (x, y, z, w) would command something else
    swapped = np.concatenate([target[:3], np.roll(target[3:], -1)])
    assert np.abs(expected_command(bundle, swapped.astype(np.float32)) - expected).max() > 1e-3

    # the latest target wins
    second = np.array([0.3, 0.25, 0.5, 0.0, 1.0, 0.0, 0.0])
    publish_target(driver, pose_msg(second[:3], second[3:], frame_id=""))  # empty frame_id: the base frame
    expected_second = expected_command(bundle, second.astype(np.float32))
    assert np.abs(expected_second - expected).max() > 1e-3
    wait_until(
        lambda: np.allclose(latest_command(driver), expected_second, atol=1e-5), 2.0, "the second target's command"
    )
    assert driver.state() == "POLICY"
    assert node.terminate() == 0
    log = node.log()
    assert "ignoring /target_pose: frame 'world', expected 'base'" in log and "Traceback" not in log
    assert "no IMU" in log


def test_arm_node_in_process_hands_the_normalized_target_to_the_core(arm_driver: RobotDriver, arm_bundle: Path) -> None:
    """In-process, to read the target the node keeps and the core's observation of it."""
    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    overrides = [
        Parameter("bundle", value=str(arm_bundle)),
        Parameter("stand_up_duration_s", value=0.3),
        Parameter("stand_up_via_sit_pose", value=False),
        # as in arm.yaml: the defaults name the quadruped's joints, empty lists mean the bundle's default pose
        Parameter("sit_joint_names", value=[]),
        Parameter("sit_joint_pos", value=[]),
    ]
    node = PolicyNode(context=context, parameter_overrides=overrides)
    assert not node.uses_imu and node.observes_target_pose
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    exit_status: list[int] = []
    thread = threading.Thread(target=lambda: exit_status.append(serve(node, executor)), daemon=True)
    thread.start()
    driver = arm_driver
    try:
        driver.stand_up()
        assert node.target_pose() is None and node.core.target_pose is None
        # rejected: non-finite, zero quaternion; neither becomes the target
        publish_target(driver, pose_msg([0.4, float("nan"), 0.3], [1.0, 0.0, 0.0, 0.0]))
        publish_target(driver, pose_msg([0.4, 0.0, 0.3], [0.0, 0.0, 0.0, 0.0]))
        wait_until(lambda: node.rejected_target_poses == 2, 2.0, "two rejected targets")
        assert node.target_pose() is None

        publish_target(driver, pose_msg([0.4, 0.1, 0.3], [0.0, 0.0, 2.0, 0.0]))
        wait_until(lambda: node.core.target_pose is not None, 2.0, "the core's first target")
        np.testing.assert_array_equal(node.target_pose(), [0.4, 0.1, 0.3, 0.0, 0.0, 1.0, 0.0])
        np.testing.assert_array_equal(node.core.target_pose, [0.4, 0.1, 0.3, 0.0, 0.0, 1.0, 0.0])
        assert driver.call("start_policy").success
        driver.wait_for_state("POLICY")
        time.sleep(2 * 0.02)
        observation = node.core.last_observation
        np.testing.assert_array_equal(observation[TARGET_OFFSET:], np.float32([0.4, 0.1, 0.3, 0.0, 0.0, 1.0, 0.0]))
        assert not observation[:8].any()  # joint_pos_rel: at the default pose
        values = node.diagnostics_values()
        assert values["target_pose_received"] == "true" and values["rejected_target_poses"] == "2"
        assert values["imu_used"] == "false" and values["tilt_rad"] == "nan"
    finally:
        context.try_shutdown()
        thread.join(timeout=3.0)
        node.destroy_node()
    assert exit_status == [0]
