"""The per-step snapshot of every manipulation environment that its terms read."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ArmState:
    """Batched torch tensors, first dimension = environment; poses in the robot base frame."""

    joint_pos_rad: torch.Tensor  # (N, n) true joint angles, policy order
    joint_vel_rad_s: torch.Tensor  # (N, n)
    measured_joint_pos_rad: torch.Tensor  # (N, n) what the encoders report (true + calibration error)
    default_joint_pos_rad: torch.Tensor  # (n,)
    action: torch.Tensor  # (N, n) raw policy output, this step
    last_action: torch.Tensor  # (N, n) raw policy output, previous step
    ee_pos_b: torch.Tensor  # (N, 3) m, end-effector site
    ee_quat_b: torch.Tensor  # (N, 4) (w, x, y, z)
    target_pose: torch.Tensor  # (N, 7) goal position + quaternion; for lift, the point above the object's start
    object_pos_b: torch.Tensor | None = None  # (N, 3) m, object centre
    object_quat_b: torch.Tensor | None = None  # (N, 4)
    object_lin_vel_b: torch.Tensor | None = None  # (N, 3) m/s
    object_lift_m: torch.Tensor | None = None  # (N,) centre height above its resting height on the table
    finger_contacts: torch.Tensor | None = None  # (N, fingers) bool, finger pad touches the object
