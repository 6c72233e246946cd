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


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b (rotation b first, then a), batched over rows."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_conjugate(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """The inverse rotation of a unit quaternion."""
    return torch.cat([quat_wxyz[..., :1], -quat_wxyz[..., 1:]], dim=-1)


def rotation_vector_quat(rotation_vector_rad: torch.Tensor) -> torch.Tensor:
    """Quaternions of rotations given as axis * angle (rad), batched over rows."""
    angle = torch.linalg.norm(rotation_vector_rad, dim=-1, keepdim=True)
    half = 0.5 * angle
    # sin(half)/angle tends to 1/2 as the angle vanishes
    scale = torch.where(angle > 1e-9, torch.sin(half) / angle.clamp(min=1e-9), torch.full_like(angle, 0.5))
    return torch.cat([torch.cos(half), rotation_vector_rad * scale], dim=-1)


def quat_angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The rotation angle (rad, in [0, pi]) that takes orientation a to orientation b."""
    dot = torch.sum(a * b, dim=-1).abs().clamp(max=1.0)
    return 2.0 * torch.acos(dot)


def canonical_quat(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """The same rotation with its largest-magnitude component positive (q and -q are one rotation).

    A policy input must not jump between q and -q for nearly equal rotations. The
    common rule "w >= 0" jumps at half-turns, which is exactly where a gripper
    pointing down sits (a half-turn about x); this rule jumps only where two
    components tie in magnitude, far from the poses an arm works in. The C++ core
    applies the same rule to /target_pose (ControlCore::accept_target_pose).
    """
    largest = torch.gather(quat_wxyz, -1, quat_wxyz.abs().argmax(dim=-1, keepdim=True))
    return torch.where(largest < 0, -quat_wxyz, quat_wxyz)


def positive_w_quat(quat_wxyz: torch.Tensor) -> torch.Tensor:
    """The same rotation with w >= 0: continuous for rotations about one axis by any angle in (-pi, pi),
    such as an object's yaw on a table (canonical_quat would flip such a yaw at -90 degrees)."""
    return torch.where(quat_wxyz[..., :1] < 0, -quat_wxyz, quat_wxyz)
