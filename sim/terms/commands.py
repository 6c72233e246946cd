"""Velocity commands: uniform in the configured box, with a share of standing commands."""

from __future__ import annotations

import torch

from sim.tasks.config import CommandConfig


def sample_velocity_commands(cfg: CommandConfig, count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 3) commands: vx m/s, vy m/s, yaw rate rad/s."""
    low = torch.tensor([cfg.lin_vel_x_m_s[0], cfg.lin_vel_y_m_s[0], cfg.yaw_rate_rad_s[0]])
    high = torch.tensor([cfg.lin_vel_x_m_s[1], cfg.lin_vel_y_m_s[1], cfg.yaw_rate_rad_s[1]])
    commands = low + (high - low) * torch.rand(count, 3, generator=generator)
    standing = torch.rand(count, generator=generator) < cfg.standing_fraction
    commands[standing] = 0.0
    # tiny commands are ambiguous to follow: make them exact stands
    tiny = torch.linalg.norm(commands, dim=1) < cfg.small_command_threshold
    commands[tiny] = 0.0
    return commands
