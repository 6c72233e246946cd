"""Manipulation terms: rewards, success and failure over an ArmState; weights live in ManipulationRewardConfig.

Each reward term returns an unweighted (N,) tensor; the env multiplies it by its
weight and the control period, so weights are per second of simulated time.
The goal of `reach_*` terms is the target pose (reach) or the object (lift).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sim.rotations import quat_angle_between
from sim.tasks.config import ManipulationConfig
from sim.terms.arm_state import ArmState

# the same terms as locomotion's: they read joint_pos_rad, soft_joint_limits_rad and terminated only
from sim.terms.rewards import joint_limits, termination

LIFT_STARTED_M = 0.02  # the object is off the table: goal-tracking reward starts


@dataclass
class ManipulationContext:
    cfg: ManipulationConfig
    terminated: torch.Tensor  # (N,) bool, failures only
    soft_joint_limits_rad: torch.Tensor  # (n, 2)
    soft_velocity_limits: torch.Tensor  # (n,) rad/s (m/s for slide joints)


def goal_position(state: ArmState, cfg: ManipulationConfig) -> torch.Tensor:
    """Where the end effector should be: the target (reach) or the object (lift)."""
    if cfg.goal == "lift":
        return state.object_pos_b
    return state.target_pose[:, :3]


def ee_position_error_m(state: ArmState, cfg: ManipulationConfig) -> torch.Tensor:
    return torch.linalg.norm(state.ee_pos_b - goal_position(state, cfg), dim=1)


def ee_orientation_error_rad(state: ArmState) -> torch.Tensor:
    return quat_angle_between(state.ee_quat_b, state.target_pose[:, 3:])


# ------------------------------------------------------------------ rewards
def reach_position(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    return 1.0 - torch.tanh(ee_position_error_m(state, ctx.cfg) / ctx.cfg.rewards.position_kernel_m)


def reach_position_fine(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    return 1.0 - torch.tanh(ee_position_error_m(state, ctx.cfg) / ctx.cfg.rewards.position_fine_kernel_m)


def reach_orientation(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    return 1.0 - torch.tanh(ee_orientation_error_rad(state) / ctx.cfg.rewards.orientation_kernel_rad)


def reach_orientation_fine(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    return 1.0 - torch.tanh(ee_orientation_error_rad(state) / ctx.cfg.rewards.orientation_fine_kernel_rad)


def object_lift(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    """Lift height as a fraction of the success height, in [0, 1]."""
    return (state.object_lift_m / ctx.cfg.lift_height_m).clamp(0.0, 1.0)


def object_goal(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    """Object to the point above its start, once it is off the table."""
    distance = torch.linalg.norm(state.object_pos_b - state.target_pose[:, :3], dim=1)
    return (1.0 - torch.tanh(distance / 0.05)) * (state.object_lift_m > LIFT_STARTED_M)


def object_grasp(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    """Every finger pad touches the object: makes closing on it worth discovering before any lift pays.

    Contact, not gripper closure: a closure reward pays most for fingers shut beside the cube.
    """
    return state.finger_contacts.all(dim=1).float()


def action_rate(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    return torch.sum(torch.square(state.action - state.last_action), dim=1)


def joint_vel(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    return torch.sum(torch.square(state.joint_vel_rad_s), dim=1)


def joint_velocity_limits(state: ArmState, ctx: ManipulationContext) -> torch.Tensor:
    """How far the joint speeds exceed their soft limits (a real arm stops itself beyond its limits)."""
    return torch.sum((state.joint_vel_rad_s.abs() - ctx.soft_velocity_limits).clamp(min=0.0), dim=1)


REWARD_TERMS: dict[str, Callable[[ArmState, ManipulationContext], torch.Tensor]] = {
    "reach_position": reach_position,
    "reach_position_fine": reach_position_fine,
    "reach_orientation": reach_orientation,
    "reach_orientation_fine": reach_orientation_fine,
    "object_lift": object_lift,
    "object_goal": object_goal,
    "object_grasp": object_grasp,
    "action_rate": action_rate,
    "joint_vel": joint_vel,
    "joint_velocity_limits": joint_velocity_limits,
    "joint_limits": joint_limits,
    "termination": termination,
}

OBJECT_REWARD_TERMS = ("object_lift", "object_goal", "object_grasp")


# ------------------------------------------------------ success and failure
def reach_succeeded(state: ArmState, cfg: ManipulationConfig) -> torch.Tensor:
    """The end effector is within the position and orientation tolerances of the target."""
    close = ee_position_error_m(state, cfg) <= cfg.position_tolerance_m
    return close & (ee_orientation_error_rad(state) <= cfg.orientation_tolerance_rad)


def object_lifted(state: ArmState, cfg: ManipulationConfig) -> torch.Tensor:
    """The object is at least lift_height_m above its resting height (held for lift_hold_s = success)."""
    return state.object_lift_m >= cfg.lift_height_m


def object_dropped(state: ArmState, cfg: ManipulationConfig) -> torch.Tensor:
    """The object fell off the table (its centre is below the table top)."""
    return state.object_pos_b[:, 2] < cfg.object_dropped_height_m


# ------------------------------------------------- privileged critic terms
def ee_pose(state: ArmState) -> torch.Tensor:
    return torch.cat([state.ee_pos_b, state.ee_quat_b], dim=1)


def object_pose(state: ArmState) -> torch.Tensor:
    return torch.cat([state.object_pos_b, state.object_quat_b], dim=1)


def ee_to_goal(state: ArmState) -> torch.Tensor:
    """Vector from the end effector to the target position (m)."""
    return state.target_pose[:, :3] - state.ee_pos_b


def ee_to_object(state: ArmState) -> torch.Tensor:
    return state.object_pos_b - state.ee_pos_b


def object_lin_vel(state: ArmState) -> torch.Tensor:
    return state.object_lin_vel_b


CRITIC_TERMS: dict[str, Callable[[ArmState], torch.Tensor]] = {
    "ee_pose": ee_pose,
    "ee_to_goal": ee_to_goal,
    "object_pose": object_pose,
    "ee_to_object": ee_to_object,
    "object_lin_vel": object_lin_vel,
}
