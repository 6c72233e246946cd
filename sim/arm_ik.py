"""Differential IK for the arm: an end-effector delta per control step -> joint position targets.

Damped least squares on the ee site's 6 x 7 Jacobian in the robot base frame, a few Newton iterations so
large deltas land where asked, a pull toward the default posture in the Jacobian's null space, then the
limits: the commanded ee position is clamped into a workspace box first; every joint (the finger too)
moves at most velocity_limit x dt per step and stays inside its range.

Targets integrate from the previous *target*, not from the measured joints. The arm is position
controlled and its PD servo lags its target (kd / kp = 0.1 s on the big joints, sag under contact
forces on top): stepping from the measured angles re-bases every command on a lagging arm, so the arm
crawls at about a fifth of the commanded speed and a steady command never reaches where it points.
From the target, the commanded motion accumulates exactly and the servo catches up. The risk of that
choice is wind-up: an arm blocked by a stuck cube (or held by a person) would keep pushing its target
away and jump when released. A leash in task space bounds it: a step may not take the commanded ee pose
further than `leash_m` / `leash_rad` from the measured one (see `leash_fraction`). At full joint speed
the servo lags about 7 cm, so the leash also caps the fastest motions near 0.5 m/s. The finger has no
leash: its target closing past the cube's faces is what squeezes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.robot_spec import RobotSpec


@dataclass
class ArmDeltaLimits:
    """The most one control step may move the end effector (issue 6: 5 cm and 0.5 rad)."""

    max_translation_m: float = 0.05
    max_rotation_rad: float = 0.5

    def scale(self, arm_delta: np.ndarray) -> np.ndarray:
        """Normalized [-1, 1] delta -> [m, m, m, rad, rad, rad] for one step."""
        clipped = np.clip(np.asarray(arm_delta, dtype=np.float64), -1.0, 1.0)
        return np.concatenate([clipped[:3] * self.max_translation_m, clipped[3:] * self.max_rotation_rad])


@dataclass(frozen=True)
class WorkspaceBounds:
    """Where the ee site may be commanded: a box in the robot base frame, m.

    The table top is z = 0 in the base frame (the base sits on the table's back edge). The finger pads
    reach 9 mm below the ee site, so z >= 12 mm keeps them off the table; x and y keep the hand over
    the table (0.05..0.85 m, +-0.6 m) and inside the arm's reach with the fingers pointing down.
    """

    low_m: tuple[float, float, float] = (0.25, -0.40, 0.012)
    high_m: tuple[float, float, float] = (0.75, 0.40, 0.60)

    def clamp(self, position_m: np.ndarray, current_m: np.ndarray) -> np.ndarray:
        """`position_m` inside the box; a current position outside it is never pushed further out (nor yanked in)."""
        low = np.minimum(self.low_m, current_m)
        high = np.maximum(self.high_m, current_m)
        return np.clip(position_m, low, high)


def quat_to_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) quaternion."""
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat_wxyz, dtype=np.float64))
    return matrix.reshape(3, 3)


def rotation_vector_matrix(rotation_vector_rad: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis x angle)."""
    rotation_vector_rad = np.asarray(rotation_vector_rad, dtype=np.float64)
    angle_rad = float(np.linalg.norm(rotation_vector_rad))
    if angle_rad < 1e-12:
        return np.eye(3)
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, rotation_vector_rad / angle_rad, angle_rad)
    return quat_to_matrix(quat)


def rotation_error_vector(goal: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (rad, in the frame both matrices are expressed in) that turns `current` into `goal`."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, (goal @ current.T).reshape(-1))
    rotation_vector = np.zeros(3)
    mujoco.mju_quat2Vel(rotation_vector, quat, 1.0)  # the shorter way round: angle in [-pi, pi]
    return rotation_vector


def leash_fraction(gap: np.ndarray, step: np.ndarray, leash: float) -> float:
    """The largest s in [0, 1] with |gap + s step| <= max(leash, |gap|): a step may not pull the leash tighter.

    The whole step is shortened along its own direction, so the commanded path stays straight (projecting
    the goal back onto the leash, or a per-joint leash, bent it by millimetres per step).
    """
    limit = max(leash, float(np.linalg.norm(gap)))
    if np.linalg.norm(gap + step) <= limit:
        return 1.0
    a, b, c = float(step @ step), 2.0 * float(gap @ step), float(gap @ gap) - limit**2  # c <= 0: a real root
    return float(np.clip((-b + np.sqrt(max(b * b - 4.0 * a * c, 0.0))) / (2.0 * a), 0.0, 1.0))


class ArmDifferentialIK:
    """Joint targets (policy order: the arm joints, then the finger) from ee deltas in the base frame."""

    def __init__(
        self,
        model: mujoco.MjModel,
        spec: RobotSpec,
        base_pos_w: np.ndarray,
        base_quat_w: np.ndarray,
        control_dt_s: float,
        damping: float = 0.05,
        nullspace_gain: float = 0.05,
        leash_m: float = 0.06,
        leash_rad: float = 0.4,
        iterations: int = 3,
        speed_limit_attempts: int = 3,
        workspace: WorkspaceBounds | None = None,
    ) -> None:
        self.model, self.spec, self.control_dt_s = model, spec, control_dt_s
        self.data = mujoco.MjData(model)  # private: never the simulation's
        self.site_id = model.site(spec.ee_site).id
        joints = [model.joint(name) for name in spec.joint_names]
        self.qpos_ids = np.array([joint.qposadr[0] for joint in joints])
        self.dof_ids = np.array([joint.dofadr[0] for joint in joints])
        is_slide = [model.jnt_type[joint.id] == mujoco.mjtJoint.mjJNT_SLIDE for joint in joints]
        self.arm_ids = np.flatnonzero(~np.array(is_slide))
        self.finger_index = int(np.flatnonzero(is_slide)[0])
        self.range = np.array([model.jnt_range[joint.id] for joint in joints], dtype=np.float64)
        self.max_step = np.asarray(spec.velocity_limit, dtype=np.float64) * control_dt_s
        self.default_joint_pos = np.asarray(spec.default_joint_pos, dtype=np.float64)
        self.base_pos_w = np.asarray(base_pos_w, dtype=np.float64)
        self.base_rotation = quat_to_matrix(base_quat_w)
        self.damping, self.nullspace_gain = damping, nullspace_gain
        self.leash_m, self.leash_rad = leash_m, leash_rad
        self.iterations, self.speed_limit_attempts = iterations, speed_limit_attempts
        self.workspace = workspace or WorkspaceBounds()
        self.targets: np.ndarray | None = None  # the last joint targets sent; the next step integrates from them

    @property
    def gripper(self) -> int:
        """Index of the finger joint in policy order (the session reads the finger opening with it)."""
        return self.finger_index

    @property
    def open_width_m(self) -> float:
        return float(self.range[self.finger_index, 1])

    def reset(self, joint_pos_rad: np.ndarray) -> None:
        """Start a new episode from these measured joints."""
        self.targets = np.asarray(joint_pos_rad, dtype=np.float64).copy()

    def ee_pose(self, joint_pos_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics: ee position (m) and rotation matrix, base frame."""
        self._set_joints(joint_pos_rad)
        return self._site_pose_b()

    def joint_targets(self, joint_pos_rad: np.ndarray, ee_delta: np.ndarray, gripper: float) -> np.ndarray:
        """The 8 joint targets for one step.

        ee_delta = [dx, dy, dz (m), rotation vector about the base axes (rad)]; gripper 0 open .. 1 closed.
        """
        measured = np.asarray(joint_pos_rad, dtype=np.float64)
        ee_delta = np.asarray(ee_delta, dtype=np.float64)
        if self.targets is None:
            self.reset(measured)
        previous, arm = self.targets, self.arm_ids
        twist, position_b, rotation_b = self._allowed_twist(measured, previous, ee_delta)
        solved = self._solve_within_speed_limits(previous, position_b, rotation_b, twist)
        targets = previous.copy()
        targets[arm] = previous[arm] + self._speed_limited(solved[arm] - previous[arm], self.max_step[arm])
        finger = self.finger_index
        finger_goal = self.open_width_m * (1.0 - float(np.clip(gripper, 0.0, 1.0)))
        finger_step = self.max_step[finger]
        targets[finger] = previous[finger] + np.clip(finger_goal - previous[finger], -finger_step, finger_step)
        self.targets = np.clip(targets, self.range[:, 0], self.range[:, 1])
        return self.targets.copy()

    # ---- the solve -----------------------------------------------------------------------------------------

    def _allowed_twist(
        self, measured: np.ndarray, previous: np.ndarray, ee_delta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The delta inside the workspace and on the leash; with the commanded ee pose it starts from."""
        measured_position_b, measured_rotation_b = self.ee_pose(measured)
        position_b, rotation_b = self.ee_pose(previous)
        translation_m = self.workspace.clamp(position_b + ee_delta[:3], position_b) - position_b
        translation_m *= leash_fraction(position_b - measured_position_b, translation_m, self.leash_m)
        # the orientation gap as a rotation vector: small angles, where rotations add like vectors
        rotation_gap_rad = rotation_error_vector(rotation_b, measured_rotation_b)
        rotation_rad = ee_delta[3:] * leash_fraction(rotation_gap_rad, ee_delta[3:], self.leash_rad)
        return np.concatenate([translation_m, rotation_rad]), position_b, rotation_b

    def _solve_within_speed_limits(
        self, previous: np.ndarray, position_b: np.ndarray, rotation_b: np.ndarray, twist: np.ndarray
    ) -> np.ndarray:
        """Joint angles for the twist, shortened until the joints can get there in one step.

        Shortening the ee twist (rather than scaling the joint step) keeps the ee on the commanded line:
        a scaled joint step curves away from it by a millimetre or more per saturated step.
        """
        arm, fraction = self.arm_ids, 1.0
        for _ in range(self.speed_limit_attempts):
            solved = self._solve(previous, position_b, rotation_b, fraction * twist)
            over_limit = float(np.max(np.abs(solved[arm] - previous[arm]) / self.max_step[arm]))
            if over_limit <= 1.0:
                break
            fraction /= over_limit
        return solved

    def _solve(self, start: np.ndarray, position_b: np.ndarray, rotation_b: np.ndarray, twist: np.ndarray):
        """Joint angles that move the ee from start's pose (position_b, rotation_b) by twist: DLS iterations."""
        goal_position_b = position_b + twist[:3]
        goal_rotation_b = rotation_vector_matrix(twist[3:]) @ rotation_b
        arm, q = self.arm_ids, start.copy()
        for iteration in range(self.iterations):
            if iteration > 0:
                position_b, rotation_b = self.ee_pose(q)
            else:
                self._set_joints(q)
            error = np.concatenate([goal_position_b - position_b, rotation_error_vector(goal_rotation_b, rotation_b)])
            jacobian = self._jacobian_b()[:, arm]
            pseudo_inverse = jacobian.T @ np.linalg.inv(jacobian @ jacobian.T + self.damping**2 * np.eye(6))
            step = pseudo_inverse @ error
            if iteration == 0:  # the posture pull once per control step: its rate must not depend on iterations
                nullspace = np.eye(len(arm)) - pseudo_inverse @ jacobian
                step += nullspace @ (self.nullspace_gain * (self.default_joint_pos[arm] - q[arm]))
            q[arm] = np.clip(q[arm] + step, self.range[arm, 0], self.range[arm, 1])
        return q

    @staticmethod
    def _speed_limited(step: np.ndarray, max_step: np.ndarray) -> np.ndarray:
        """The step scaled down as a whole until every joint is within its limit (the ee keeps its direction)."""
        ratio = np.max(np.abs(step) / max_step)
        return step / ratio if ratio > 1.0 else step

    def _set_joints(self, joint_pos_rad: np.ndarray) -> None:
        self.data.qpos[self.qpos_ids] = joint_pos_rad
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)  # mj_jacSite needs the com-based frames

    def _site_pose_b(self) -> tuple[np.ndarray, np.ndarray]:
        position_w = self.data.site_xpos[self.site_id]
        rotation_w = self.data.site_xmat[self.site_id].reshape(3, 3)
        return self.base_rotation.T @ (position_w - self.base_pos_w), self.base_rotation.T @ rotation_w

    def _jacobian_b(self) -> np.ndarray:
        """6 x 8 Jacobian of the ee site (linear; angular), base frame, at the last _set_joints (finger column: 0)."""
        linear, angular = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, linear, angular, self.site_id)
        to_base = self.base_rotation.T
        return np.vstack([to_base @ linear[:, self.dof_ids], to_base @ angular[:, self.dof_ids]])
