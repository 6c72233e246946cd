"""End-effector goal poses for reaching: uniform in a box, fingers down with yaw and a little tilt."""

from __future__ import annotations

import torch

from sim.rotations import canonical_quat, quat_multiply, rotation_vector_quat, yaw_quat
from sim.tasks.config import TargetConfig

# (w, x, y, z) of the end-effector frame with the fingers pointing straight down, x forward
FINGERS_DOWN_QUAT = (0.0, 1.0, 0.0, 0.0)


def sample_target_poses(cfg: TargetConfig, count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 7): position (m) and orientation quaternion (w, x, y, z), robot base frame."""

    def between(bounds: tuple[float, float], shape=(count,)) -> torch.Tensor:
        return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(shape, generator=generator)

    position = torch.stack([between(cfg.x_m), between(cfg.y_m), between(cfg.z_m)], dim=1)
    tilt = between((-cfg.tilt_rad, cfg.tilt_rad), (count, 2))
    tilt_quat = rotation_vector_quat(torch.cat([tilt, torch.zeros(count, 1)], dim=1))
    down = torch.tensor(FINGERS_DOWN_QUAT).expand(count, 4)
    quat = quat_multiply(yaw_quat(between(cfg.yaw_rad)), quat_multiply(tilt_quat, down))
    return torch.cat([position, canonical_quat(quat)], dim=1)


def lift_goal_poses(object_start_pos: torch.Tensor, lift_height_m: float) -> torch.Tensor:
    """(N, 7): the point a little above lift_height_m over the object's start, fingers down."""
    goal = object_start_pos.clone()
    goal[:, 2] += lift_height_m + 0.02  # aim past the success height, not at its edge
    down = torch.tensor(FINGERS_DOWN_QUAT).expand(goal.shape[0], 4)
    return torch.cat([goal, down], dim=1)
