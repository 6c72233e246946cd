"""Observation terms of DESIGN.md §3, batched; the C++ core implements the same meanings."""

from __future__ import annotations

from collections.abc import Callable

import torch

from sim.config_io import ConfigError
from sim.terms.manipulation import ee_pose, object_pose
from sim.terms.state import RobotState


def base_ang_vel(state: RobotState) -> torch.Tensor:
    """Body-frame angular velocity as the IMU gyro reports it."""
    return state.measured_ang_vel_b


def projected_gravity(state: RobotState) -> torch.Tensor:
    """Gravity unit vector in the body frame, from the IMU orientation."""
    return state.measured_gravity_b


def velocity_command(state: RobotState) -> torch.Tensor:
    return state.velocity_command


def joint_pos_rel(state: RobotState) -> torch.Tensor:
    """Encoder angle minus the default pose, policy joint order."""
    return state.measured_joint_pos_rad - state.default_joint_pos_rad


def joint_vel(state: RobotState) -> torch.Tensor:
    return state.joint_vel_rad_s


def last_action(state: RobotState) -> torch.Tensor:
    """The previous raw policy output, as the next policy call sees it: the action just applied."""
    return state.action


def target_pose(state: RobotState) -> torch.Tensor:
    if state.target_pose is None:
        raise ConfigError("observation term 'target_pose' needs a task that sets a target pose")
    return state.target_pose


# privileged terms, critic only
def base_lin_vel(state: RobotState) -> torch.Tensor:
    return state.base_lin_vel_b


def foot_contacts(state: RobotState) -> torch.Tensor:
    return state.foot_contact.float()


POLICY_TERMS: dict[str, Callable[[RobotState], torch.Tensor]] = {
    "base_ang_vel": base_ang_vel,
    "projected_gravity": projected_gravity,
    "velocity_command": velocity_command,
    "joint_pos_rel": joint_pos_rel,
    "joint_vel": joint_vel,
    "last_action": last_action,
    "target_pose": target_pose,
    # manipulation, simulation only so far: a robot needs forward kinematics and perception for them
    "ee_pose": ee_pose,
    "object_pose": object_pose,
}

# terms with no source on a robot yet (the C++ core and the deploy bundle do not know them)
SIMULATION_ONLY_TERMS = ("ee_pose", "object_pose")

CRITIC_TERMS: dict[str, Callable[[RobotState], torch.Tensor]] = {
    "base_lin_vel": base_lin_vel,
    "foot_contacts": foot_contacts,
}


def term_dim(name: str, num_joints: int) -> int:
    """Width of a policy term (DESIGN.md §3 table)."""
    fixed = {
        "base_ang_vel": 3,
        "projected_gravity": 3,
        "velocity_command": 3,
        "target_pose": 7,
        "ee_pose": 7,
        "object_pose": 7,
    }
    if name in fixed:
        return fixed[name]
    if name in ("joint_pos_rel", "joint_vel", "last_action"):
        return num_joints
    raise ConfigError(f"unknown observation term '{name}'; known terms: {', '.join(POLICY_TERMS)}")
