"""The ROS 2 interface of DESIGN.md §5 in one place: names, QoS, and the conversions at the message boundary.

Both nodes and every test import these, so a topic name or a QoS setting cannot drift between them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

POLICY_NODE = "simreal_policy"
SIM_ROBOT_NODE = "simreal_sim_robot"
RECORDER_NODE = "simreal_recorder"  # robot_io/ros_recorder.py: demonstrations from the ROS graph

JOINT_STATES = "/joint_states"
IMU = "/imu/data"
CMD_VEL = "/cmd_vel"
TARGET_POSE = "/target_pose"  # geometry_msgs/PoseStamped, for policies that observe target_pose
ESTOP = "/estop"
JOINT_COMMAND = "/joint_command"
JOINT_PD_COMMAND = "/joint_pd_command"
DIAGNOSTICS = "/diagnostics"
CLOCK = "/clock"
STATE = "state"  # ~/state of the policy node
SERVICES = ("stand_up", "start_policy", "sit_down", "damp", "reset")  # ~/<name>, std_srvs/Trigger
EXCITE = "excite"  # ~/excite (std_srvs/Trigger): only with an excitation_file (system identification)
# simulation only: the emulator's ground truth, for sim2sim measurements (never read by the policy node)
SIM_BASE_STATE = "/sim/base_state"
# the end effector's ground-truth pose (geometry_msgs/PoseStamped, robot base frame) of a robot with an ee_site
SIM_EE_POSE = "/sim/ee_pose"
# camera images: sensor_msgs/Image on /camera/<name>/image_raw (camera_image_topic), frame_id = the camera's name
CAMERA_IMAGE_TOPIC = "/camera/{camera}/image_raw"
# teleop, as a recorder on a robot reads it (robot_io/ros_recorder.py): the arm's normalized end-effector delta as
# geometry_msgs/TwistStamped (linear = dx, dy, dz, angular = droll, dpitch, dyaw, each in [-1, 1], robot base frame),
# the gripper as std_msgs/Float64 in [0, 1] (0 open, 1 closed), and the operator's recorder keys as std_msgs/String
TELEOP_EE_DELTA = "/teleop/ee_delta"
TELEOP_GRIPPER = "/teleop/gripper"
TELEOP_EVENTS = "/teleop/events"
# the words on /teleop/events and their keys: n, r, q, s, space (robot_io/teleop/command.py SessionEvents)
TELEOP_EVENT_WORDS = ("next", "rerecord", "stop", "success", "intervention")
SIM_BASE_STATE_FIELDS = (
    "sim_time_s",
    "x_m",
    "y_m",
    "z_m",
    "qw",
    "qx",
    "qy",
    "qz",
    "forward_velocity_m_s",  # base linear velocity along the heading (yaw-only) frame's x axis
    "lateral_velocity_m_s",
    "vertical_velocity_m_s",
    "yaw_rate_rad_s",
    "tilt_rad",  # angle between the base's z axis and the world's
)

SENSOR_QOS = qos_profile_sensor_data  # best effort, keep last 5
CMD_VEL_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
TARGET_POSE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LATCHED_QOS = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
ESTOP_QOS = LATCHED_QOS
ESTOP_VOLATILE_QOS = COMMAND_QOS  # the policy node also listens to e-stop publishers that do not latch
STATE_QOS = LATCHED_QOS
CAMERA_QOS = qos_profile_sensor_data  # best effort, keep last 5: a late frame is worth less than the next one
TELEOP_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
# events are reliable and volatile: a recorder started later must not act on an old "stop"
TELEOP_EVENTS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
DIAGNOSTICS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

PD_ROWS = ("q_target_rad", "dq_target_rad_s", "tau_ff_nm", "kp", "kd")


def camera_image_topic(camera: str) -> str:
    """/camera/<camera>/image_raw."""
    return CAMERA_IMAGE_TOPIC.format(camera=camera)


def quaternion_wxyz_from_ros(x: float, y: float, z: float, w: float) -> tuple[float, float, float, float]:
    """The one place where ROS's (x, y, z, w) becomes simreal's (w, x, y, z)."""
    return (w, x, y, z)


def quaternion_ros_from_wxyz(q_wxyz: Sequence[float]) -> tuple[float, float, float, float]:
    """(w, x, y, z) -> ROS (x, y, z, w), for the emulator's IMU message."""
    w, x, y, z = (float(v) for v in q_wxyz)
    return (x, y, z, w)


def target_pose_from_ros(pose) -> np.ndarray:
    """geometry_msgs/Pose -> the target_pose term's 7 values: position, unit quaternion (w, x, y, z).

    ValueError for a non-finite value or a zero quaternion (no orientation to normalize).
    """
    p, o = pose.position, pose.orientation
    quat = np.array(quaternion_wxyz_from_ros(o.x, o.y, o.z, o.w), dtype=np.float64)
    values = np.array([p.x, p.y, p.z, *quat], dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"non-finite value in position {[p.x, p.y, p.z]} / orientation {[o.x, o.y, o.z, o.w]}")
    norm = float(np.linalg.norm(quat))
    if not (norm > 0.0 and math.isfinite(norm)):
        raise ValueError(f"orientation {[o.x, o.y, o.z, o.w]} is not a rotation (norm {norm:g})")
    values[3:] /= norm
    return values


def pack_pd_command(joint_names: Sequence[str], rows: np.ndarray) -> Float64MultiArray:
    """/joint_pd_command: rows q*, dq*, tau_ff, kp, kd (5 x n, row-major); the joint names ride in dim[1].label."""
    rows = np.asarray(rows, dtype=np.float64)
    n = len(joint_names)
    if rows.shape != (len(PD_ROWS), n):
        raise ValueError(f"pd command rows have shape {rows.shape}, expected ({len(PD_ROWS)}, {n})")
    message = Float64MultiArray()
    message.layout.dim = [
        MultiArrayDimension(label=",".join(PD_ROWS), size=len(PD_ROWS), stride=len(PD_ROWS) * n),
        MultiArrayDimension(label=",".join(joint_names), size=n, stride=n),
    ]
    message.data = rows.ravel().tolist()
    return message


def unpack_pd_command(message: Float64MultiArray) -> tuple[list[str], np.ndarray]:
    """(joint names, rows 5 x n) from /joint_pd_command; ValueError naming the problem for a malformed message."""
    dims = message.layout.dim
    if len(dims) != 2 or dims[0].size != len(PD_ROWS):
        raise ValueError(f"{JOINT_PD_COMMAND}: layout must be 2-D with {len(PD_ROWS)} rows {PD_ROWS}")
    names = dims[1].label.split(",") if dims[1].label else []
    if len(names) != dims[1].size or len(message.data) != len(PD_ROWS) * len(names):
        raise ValueError(f"{JOINT_PD_COMMAND}: {len(names)} joint names in dim[1].label, {len(message.data)} values")
    return names, np.asarray(message.data, dtype=np.float64).reshape(len(PD_ROWS), len(names))
