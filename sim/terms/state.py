"""The per-step snapshot of every environment that observation, reward and termination terms read."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RobotState:
    """Batched torch tensors, first dimension = environment; joints in policy order."""

    base_pos_w: torch.Tensor  # (N, 3) m, world frame
    base_quat_w: torch.Tensor  # (N, 4) (w, x, y, z)
    base_lin_vel_b: torch.Tensor  # (N, 3) m/s, body frame
    base_ang_vel_b: torch.Tensor  # (N, 3) rad/s, body frame
    projected_gravity_b: torch.Tensor  # (N, 3) unit vector, body frame
    joint_pos_rad: torch.Tensor  # (N, n) true joint angles
    joint_vel_rad_s: torch.Tensor  # (N, n)
    joint_acc_rad_s2: torch.Tensor  # (N, n) finite difference over one control period
    joint_torque_nm: torch.Tensor  # (N, n) actuator output
    foot_contact_force_n: torch.Tensor  # (N, feet) normal force from the foot touch sensors
    trunk_contact_force_n: torch.Tensor  # (N,)
    # what the robot's own sensors report, in the IMU frame: true values plus calibration errors
    measured_ang_vel_b: torch.Tensor
    measured_gravity_b: torch.Tensor
    measured_joint_pos_rad: torch.Tensor
    # policy interface
    default_joint_pos_rad: torch.Tensor  # (n,)
    velocity_command: torch.Tensor  # (N, 3) vx m/s, vy m/s, yaw rate rad/s
    action: torch.Tensor  # (N, n) raw policy output, this step
    last_action: torch.Tensor  # (N, n) raw policy output, previous step
    target_pose: torch.Tensor | None = None  # (N, 7) for manipulation tasks

    @property
    def foot_contact(self) -> torch.Tensor:
        return self.foot_contact_force_n > 1.0
