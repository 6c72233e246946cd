"""Reward terms: small named functions of the state; weights live in RewardConfig.

Each term returns an unweighted (N,) tensor. The env multiplies it by its
weight and the control period, so weights are per second of simulated time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sim.tasks.config import RewardConfig
from sim.terms.state import RobotState


@dataclass
class RewardContext:
    """What reward terms need beyond the state snapshot."""

    cfg: RewardConfig
    terminated: torch.Tensor  # (N,) bool, failure terminations only (not time-outs)
    first_contact: torch.Tensor  # (N, feet) bool, the foot touched down this step
    air_time_at_touchdown_s: torch.Tensor  # (N, feet) air time that just ended
    soft_joint_limits_rad: torch.Tensor  # (n, 2)
    small_command_threshold: float


def _moving(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    return torch.linalg.norm(state.velocity_command, dim=1) > ctx.small_command_threshold


def track_lin_vel_xy(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """exp(-|v_xy - cmd_xy|^2 / sigma), body frame."""
    error = torch.sum(torch.square(state.velocity_command[:, :2] - state.base_lin_vel_b[:, :2]), dim=1)
    return torch.exp(-error / ctx.cfg.tracking_sigma)


def track_yaw_rate(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    error = torch.square(state.velocity_command[:, 2] - state.base_ang_vel_b[:, 2])
    return torch.exp(-error / ctx.cfg.tracking_sigma)


def lin_vel_z(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    return torch.square(state.base_lin_vel_b[:, 2])


def ang_vel_xy(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """Roll and pitch rate, squared."""
    return torch.sum(torch.square(state.base_ang_vel_b[:, :2]), dim=1)


def orientation(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """Tilt: the horizontal part of projected gravity, squared."""
    return torch.sum(torch.square(state.projected_gravity_b[:, :2]), dim=1)


def torques(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    return torch.sum(torch.square(state.joint_torque_nm), dim=1)


def action_rate(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    return torch.sum(torch.square(state.action - state.last_action), dim=1)


def joint_acc(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    return torch.sum(torch.square(state.joint_acc_rad_s2), dim=1)


def feet_air_time(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """Rewards steps longer than the target air time, only while a motion is commanded."""
    steps = (ctx.air_time_at_touchdown_s - ctx.cfg.feet_air_time_target_s) * ctx.first_contact
    return torch.sum(steps, dim=1) * _moving(state, ctx)


def default_pose(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """L1 distance of the joints from the default pose."""
    return torch.sum(torch.abs(state.joint_pos_rad - state.default_joint_pos_rad), dim=1)


def stand_still(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """Default-pose distance, only while the command is to stand."""
    return default_pose(state, ctx) * ~_moving(state, ctx)


def soft_limit_excess(joint_pos_rad: torch.Tensor, soft_limits_rad: torch.Tensor) -> torch.Tensor:
    """(N,) sum over joints of how far each is outside its (low, high) soft limits, rad."""
    below = (soft_limits_rad[:, 0] - joint_pos_rad).clamp(min=0.0)
    above = (joint_pos_rad - soft_limits_rad[:, 1]).clamp(min=0.0)
    return torch.sum(below + above, dim=1)


def joint_limits(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """How far the joints are outside their soft limits, rad."""
    return soft_limit_excess(state.joint_pos_rad, ctx.soft_joint_limits_rad)


def termination(state: RobotState, ctx: RewardContext) -> torch.Tensor:
    """1 on the step an episode fails (falls), 0 on time-outs."""
    return ctx.terminated.float()


REWARD_TERMS: dict[str, Callable[[RobotState, RewardContext], torch.Tensor]] = {
    "track_lin_vel_xy": track_lin_vel_xy,
    "track_yaw_rate": track_yaw_rate,
    "lin_vel_z": lin_vel_z,
    "ang_vel_xy": ang_vel_xy,
    "orientation": orientation,
    "torques": torques,
    "action_rate": action_rate,
    "joint_acc": joint_acc,
    "feet_air_time": feet_air_time,
    "default_pose": default_pose,
    "stand_still": stand_still,
    "joint_limits": joint_limits,
    "termination": termination,
}


def active_reward_terms(cfg: RewardConfig) -> dict[str, float]:
    """Term name -> weight, for every term with a non-zero weight."""
    return {name: getattr(cfg, name) for name in REWARD_TERMS if getattr(cfg, name) != 0.0}
