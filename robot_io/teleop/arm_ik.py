"""Differential IK for the arm: an end-effector delta per control step -> joint position targets.

Damped least squares on the ee site's Jacobian in the robot base frame, a pull toward the default
posture in the Jacobian's null space, then the limits: each joint moves at most velocity_limit x dt per
step and stays inside its range; the commanded ee position is clamped into a workspace box first.
Targets integrate from the previous *target*, not from the measured joints: the PD motors lag their
targets (kd / kp = 0.1 s on the big joints), and stepping from the measured angles moved the arm at a
fifth of the commanded speed. A leash keeps each target within `leash_rad` of the measured angle, so an
arm that is blocked (the table, a stuck cube) never winds up a target that would be released as a jump.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from sim.robot_spec import RobotSpec


@dataclass
class WorkspaceBounds:
    """Where the end effector may be commanded, m, robot base frame (the table top is at z = 0)."""

    low_m: np.ndarray = field(default_factory=lambda: np.array([0.2, -0.45, 0.012]))
    high_m: np.ndarray = field(default_factory=lambda: np.array([0.8, 0.45, 0.6]))


def quat_to_matrix(quat_wxyz: np.ndarray) -> np.ndarray:
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat_wxyz, dtype=np.float64))
    return matrix.reshape(3, 3)


class ArmDifferentialIK:
    """Joint targets (policy order: the arm joints, then the gripper) from ee deltas in the base frame."""

    def __init__(
        self,
        model: mujoco.MjModel,
        spec: RobotSpec,
        base_pos_w: np.ndarray,
        base_quat_w: np.ndarray,
        control_dt_s: float,
        damping: float = 0.05,
        nullspace_gain: float = 0.05,
        leash_rad: float = 0.15,
        workspace: WorkspaceBounds | None = None,
    ) -> None:
        self.model, self.spec, self.dt_s = model, spec, control_dt_s
        self.data = mujoco.MjData(model)
        self.site = model.site(spec.ee_site).id
        joints = [model.joint(name) for name in spec.joint_names]
        self.qpos_ids = np.array([j.qposadr[0] for j in joints])
        self.dof_ids = np.array([j.dofadr[0] for j in joints])
        self.arm = np.array([i for i, j in enumerate(joints) if model.jnt_type[j.id] == mujoco.mjtJoint.mjJNT_HINGE])
        self.gripper = next(i for i, j in enumerate(joints) if model.jnt_type[j.id] == mujoco.mjtJoint.mjJNT_SLIDE)
        self.range = np.array([model.jnt_range[j.id] for j in joints])
        self.max_step = np.asarray(spec.velocity_limit, dtype=np.float64) * control_dt_s
        self.default = np.asarray(spec.default_joint_pos, dtype=np.float64)  # policy (spec) order
        self.base_rotation = quat_to_matrix(base_quat_w)
        self.base_pos_w = np.asarray(base_pos_w, dtype=np.float64)
        self.damping, self.nullspace_gain, self.leash_rad = damping, nullspace_gain, leash_rad
        self.workspace = workspace or WorkspaceBounds()
        self.targets: np.ndarray | None = None

    def reset(self, joint_pos_rad: np.ndarray) -> None:
        """Start a new episode from these measured joints."""
        self.targets = np.asarray(joint_pos_rad, dtype=np.float64).copy()

    def ee_pose(self, joint_pos_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics: ee position (m) and rotation matrix, base frame."""
        self._set_joints(joint_pos_rad)
        position_w = self.data.site_xpos[self.site]
        rotation_w = self.data.site_xmat[self.site].reshape(3, 3)
        return self.base_rotation.T @ (position_w - self.base_pos_w), self.base_rotation.T @ rotation_w

    def joint_targets(self, joint_pos_rad: np.ndarray, ee_delta: np.ndarray, gripper: float) -> np.ndarray:
        """ee_delta = [dx, dy, dz (m), rotation vector (rad)] in the base frame; gripper 0 open .. 1 closed."""
        measured = np.asarray(joint_pos_rad, dtype=np.float64)
        if self.targets is None:
            self.reset(measured)
        q = np.clip(self.targets, measured - self.leash_rad, measured + self.leash_rad)
        position_b, _ = self.ee_pose(q)
        wanted = np.clip(position_b + ee_delta[:3], self.workspace.low_m, self.workspace.high_m)
        error = np.concatenate([wanted - position_b, ee_delta[3:]])
        jacobian = self._jacobian_b()[:, self.arm]
        damped = jacobian @ jacobian.T + self.damping**2 * np.eye(6)
        pseudo_inverse = jacobian.T @ np.linalg.solve(damped, np.eye(6))
        step = pseudo_inverse @ error
        nullspace = np.eye(len(self.arm)) - pseudo_inverse @ jacobian
        step += nullspace @ (self.nullspace_gain * (self.default[self.arm] - q[self.arm]))
        targets = q.copy()
        # one scale for all joints (not a clip per joint): the end effector keeps the direction it was sent in
        over = np.max(np.abs(step) / self.max_step[self.arm])
        targets[self.arm] = q[self.arm] + (step / over if over > 1.0 else step)
        low, high = self.range[self.gripper]
        targets[self.gripper] = low + (high - low) * (1.0 - float(np.clip(gripper, 0.0, 1.0)))
        self.targets = np.clip(targets, self.range[:, 0], self.range[:, 1])
        return self.targets.copy()

    def _set_joints(self, joint_pos_rad: np.ndarray) -> None:
        self.data.qpos[self.qpos_ids] = joint_pos_rad
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)

    def _jacobian_b(self) -> np.ndarray:
        """6 x n Jacobian of the ee site (linear; angular) in the base frame, at the last _set_joints."""
        linear, angular = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self.data, linear, angular, self.site)
        rotation = self.base_rotation.T
        return np.vstack([rotation @ linear[:, self.dof_ids], rotation @ angular[:, self.dof_ids]])
