"""Reward and termination terms on hand-made states."""

from __future__ import annotations

import math

import torch

from sim.tasks.config import RewardConfig, TerminationConfig
from sim.terms import rewards, terminations
from sim.terms.state import RobotState

N, J = 3, 12


def make_state(**overrides) -> RobotState:
    zeros3 = torch.zeros(N, 3)
    gravity = torch.tensor([[0.0, 0.0, -1.0]]).repeat(N, 1)
    default = torch.full((J,), 0.5)
    fields = dict(
        base_pos_w=zeros3.clone(),
        base_quat_w=torch.tensor([[1.0, 0, 0, 0]]).repeat(N, 1),
        base_lin_vel_b=zeros3.clone(),
        base_ang_vel_b=zeros3.clone(),
        projected_gravity_b=gravity,
        joint_pos_rad=default.repeat(N, 1),
        joint_vel_rad_s=torch.zeros(N, J),
        joint_acc_rad_s2=torch.zeros(N, J),
        joint_torque_nm=torch.zeros(N, J),
        foot_contact_force_n=torch.full((N, 4), 30.0),
        trunk_contact_force_n=torch.zeros(N),
        measured_ang_vel_b=zeros3.clone(),
        measured_gravity_b=gravity.clone(),
        measured_joint_pos_rad=default.repeat(N, 1),
        default_joint_pos_rad=default,
        velocity_command=zeros3.clone(),
        action=torch.zeros(N, J),
        last_action=torch.zeros(N, J),
    )
    fields.update(overrides)
    return RobotState(**fields)


def make_context(**overrides) -> rewards.RewardContext:
    fields = dict(
        cfg=RewardConfig(),
        terminated=torch.zeros(N, dtype=torch.bool),
        first_contact=torch.zeros(N, 4, dtype=torch.bool),
        air_time_at_touchdown_s=torch.zeros(N, 4),
        soft_joint_limits_rad=torch.tensor([[-1.0, 1.0]]).repeat(J, 1),
        small_command_threshold=0.1,
    )
    fields.update(overrides)
    return rewards.RewardContext(**fields)


def test_velocity_tracking_is_one_when_perfect_and_decays_with_error():
    command = torch.tensor([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.5, 0.0, 0.0]])
    velocity = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    value = rewards.track_lin_vel_xy(make_state(velocity_command=command, base_lin_vel_b=velocity), make_context())
    expected = torch.tensor([1.0, math.exp(-0.25 / 0.25), math.exp(-1.0 / 0.25)])
    torch.testing.assert_close(value, expected)


def test_yaw_rate_tracking_uses_body_z_rate():
    command = torch.tensor([[0.0, 0.0, 1.0]]).repeat(N, 1)
    rates = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.5], [5.0, 5.0, 1.0]])  # roll/pitch rate ignored
    value = rewards.track_yaw_rate(make_state(velocity_command=command, base_ang_vel_b=rates), make_context())
    torch.testing.assert_close(value, torch.tensor([1.0, math.exp(-0.25 / 0.25), 1.0]))


def test_penalties_measure_what_they_name():
    state = make_state(
        base_lin_vel_b=torch.tensor([[0.0, 0.0, 0.5]]).repeat(N, 1),
        base_ang_vel_b=torch.tensor([[1.0, 2.0, 9.0]]).repeat(N, 1),
        projected_gravity_b=torch.tensor([[0.6, 0.0, -0.8]]).repeat(N, 1),
        joint_torque_nm=torch.full((N, J), 2.0),
        action=torch.full((N, J), 1.0),
        last_action=torch.full((N, J), 0.5),
        joint_acc_rad_s2=torch.full((N, J), 10.0),
    )
    ctx = make_context()
    torch.testing.assert_close(rewards.lin_vel_z(state, ctx), torch.full((N,), 0.25))
    torch.testing.assert_close(rewards.ang_vel_xy(state, ctx), torch.full((N,), 5.0))
    torch.testing.assert_close(rewards.orientation(state, ctx), torch.full((N,), 0.36))
    torch.testing.assert_close(rewards.torques(state, ctx), torch.full((N,), 48.0))
    torch.testing.assert_close(rewards.action_rate(state, ctx), torch.full((N,), 3.0))
    torch.testing.assert_close(rewards.joint_acc(state, ctx), torch.full((N,), 1200.0))


def test_feet_air_time_rewards_long_steps_only_when_moving():
    touchdown = torch.tensor([[0.5, 0.1, 0.0, 0.0]]).repeat(N, 1)
    first = torch.tensor([[True, True, False, False]]).repeat(N, 1)
    command = torch.tensor([[0.8, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    value = rewards.feet_air_time(
        make_state(velocity_command=command),
        make_context(first_contact=first, air_time_at_touchdown_s=touchdown),
    )
    # (0.5 - 0.3) + (0.1 - 0.3) = 0.0 while moving; 0 when standing
    torch.testing.assert_close(value, torch.tensor([0.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    first = torch.tensor([[True, False, False, False]]).repeat(N, 1)
    value = rewards.feet_air_time(
        make_state(velocity_command=command), make_context(first_contact=first, air_time_at_touchdown_s=touchdown)
    )
    torch.testing.assert_close(value, torch.tensor([0.2, 0.0, 0.2]))


def test_pose_terms_and_stand_still():
    joints = torch.full((N, J), 0.5)
    joints[:, 0] = 0.8
    command = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.05, 0.0, 0.0]])
    state = make_state(joint_pos_rad=joints, velocity_command=command)
    ctx = make_context()
    torch.testing.assert_close(rewards.default_pose(state, ctx), torch.full((N,), 0.3))
    torch.testing.assert_close(rewards.stand_still(state, ctx), torch.tensor([0.3, 0.0, 0.3]))


def test_joint_limits_counts_distance_outside_soft_limits():
    joints = torch.zeros(N, J)
    joints[0, 0] = 1.25
    joints[1, 3] = -1.5
    value = rewards.joint_limits(make_state(joint_pos_rad=joints), make_context())
    torch.testing.assert_close(value, torch.tensor([0.25, 0.5, 0.0]))


def test_termination_penalty_only_for_failures():
    terminated = torch.tensor([True, False, False])
    torch.testing.assert_close(
        rewards.termination(make_state(), make_context(terminated=terminated)), torch.tensor([1.0, 0.0, 0.0])
    )


def test_trunk_contact_and_tilt_terminations():
    cfg = TerminationConfig(max_tilt_rad=1.0)
    tilted = torch.tensor(
        [[0.0, 0.0, -1.0], [math.sin(1.1), 0.0, -math.cos(1.1)], [math.sin(0.9), 0.0, -math.cos(0.9)]]
    )
    state = make_state(projected_gravity_b=tilted, trunk_contact_force_n=torch.tensor([0.0, 0.0, 50.0]))
    assert terminations.tilt(state, cfg).tolist() == [False, True, False]
    assert terminations.trunk_contact(state, cfg).tolist() == [False, False, True]
