"""Quaternion helpers on batched torch tensors; quaternions are (w, x, y, z)."""

from __future__ import annotations

import torch


def quat_rotate_inverse(quat_wxyz: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate world-frame vectors into the body frame: R(q)^T v, batched over rows."""
    w = quat_wxyz[:, :1]
    xyz = quat_wxyz[:, 1:]
    t = 2.0 * torch.cross(xyz, vec, dim=1)
    return vec - w * t + torch.cross(xyz, t, dim=1)


def quat_rotate(quat_wxyz: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    """Rotate body-frame vectors into the world frame: R(q) v."""
    w = quat_wxyz[:, :1]
    xyz = quat_wxyz[:, 1:]
    t = 2.0 * torch.cross(xyz, vec, dim=1)
    return vec + w * t + torch.cross(xyz, t, dim=1)


def projected_gravity(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """The unit gravity vector (0, 0, -1) expressed in the body frame."""
    down = torch.zeros(quat_wxyz.shape[0], 3, dtype=quat_wxyz.dtype, device=quat_wxyz.device)
    down[:, 2] = -1.0
    return quat_rotate_inverse(quat_wxyz, down)


def yaw_quat(yaw_rad: torch.Tensor) -> torch.Tensor:
    """Quaternions of pure rotations about world z."""
    half = 0.5 * yaw_rad
    zeros = torch.zeros_like(half)
    return torch.stack([torch.cos(half), zeros, zeros, torch.sin(half)], dim=1)
