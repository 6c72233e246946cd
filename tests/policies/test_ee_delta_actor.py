"""The end-effector delta actor: teleop commands in, the joint targets the teleop session would send out.

The actor keeps no IK state of its own (it integrates from the `last_action` observation), so driving the
real arm-lift env with it must give the same targets as an IK that remembers its own, as `simreal teleop`'s does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from policies.config import TrainConfig
from policies.ee_delta_actor import RELATIVE_DIM, EndEffectorDeltaActor, ObservationColumns, network_inputs
from policies.inference import build_actor
from policies.run_dir import RunDirError
from sim.arm_ik import ArmDeltaLimits, ArmDifferentialIK
from sim.envs import make_env
from sim.tasks import make_task_config


def _env(task: str = "arm-lift", randomized: bool = False):
    cfg = make_task_config(task)
    cfg.num_envs = 1
    if not randomized:
        cfg.randomization = cfg.randomization.disabled()
    return make_env(cfg, seed=3)


def _actor(env) -> EndEffectorDeltaActor:
    train = TrainConfig()
    train.ppo.actor_output = "ee_delta"
    return build_actor(train, env.get_observations(), env.num_actions, env)


def _commands(steps: int) -> np.ndarray:
    """Smooth deltas that sweep the hand around, and the gripper closing half way through."""
    time_s = np.arange(steps)[:, None] * 0.02
    delta = 0.3 * np.sin(2 * np.pi * time_s * np.array([[0.5, 0.7, 0.3, 0.4, 0.6, 0.8]]) + np.arange(6))
    gripper = (np.arange(steps) >= steps // 2).astype(float)[:, None]
    return np.hstack([delta, gripper])


def test_actor_sends_the_session_ik_targets():
    env = _env()
    actor = _actor(env)
    session_ik = ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
    observations = env.reset()
    session_ik.reset(env.state.measured_joint_pos_rad[0].numpy().astype(np.float64))
    start_m = env.state.ee_pos_b[0].numpy().copy()
    limits, largest_gap = ArmDeltaLimits(), 0.0
    for command in _commands(100):
        measured = env.state.measured_joint_pos_rad[0].numpy().astype(np.float64)
        expected = session_ik.joint_targets(measured, limits.scale(command[:6]), command[6])
        action = actor.act(observations["policy"], torch.from_numpy(command)[None])
        targets = (env.default_joint_pos + env.spec.action_scale * action)[0].numpy()
        largest_gap = max(largest_gap, float(np.max(np.abs(targets - expected))))
        observations, _, _, _ = env.step(action)
    assert largest_gap < 1e-4
    assert np.linalg.norm(env.state.ee_pos_b[0].numpy() - start_m) > 0.02  # the commands really moved the hand
    assert env.state.measured_joint_pos_rad[0, session_ik.gripper] < 0.02  # and closed the gripper


def test_a_fresh_episode_starts_from_the_randomized_spawn_pose():
    """After a reset last_action is 0; the IK must start from the measured joints, not the default pose."""
    env = _env(randomized=True)
    actor = _actor(env)
    observations = env.reset()
    spawn_rad = env.state.measured_joint_pos_rad[0].clone()
    start_m = env.state.ee_pos_b[0].numpy().copy()
    assert (spawn_rad - env.default_joint_pos).abs().max() > 0.05  # the reset really moved the joints
    hold = torch.tensor([[0.0] * 6 + [0.0]])
    for step in range(10):
        action = actor.act(observations["policy"], hold)
        if step == 0:
            targets = env.default_joint_pos + env.spec.action_scale * action[0]
            # within the encoder-reading noise (5 mrad) and one step of posture pull, not the reset's offsets
            assert (targets - spawn_rad).abs().max() < 0.03
        observations, _, _, _ = env.step(action)
    assert np.linalg.norm(env.state.ee_pos_b[0].numpy() - start_m) < 0.01  # a held command holds the hand


def test_network_targets_and_commands_undo_each_other():
    env = _env()
    actor = _actor(env)
    rng = np.random.default_rng(0)
    recorded = np.hstack([rng.normal(0.0, 0.05, (200, 6)), rng.integers(0, 2, (200, 1))]).astype(np.float32)
    recorded = torch.from_numpy(recorded)
    actor.set_command_statistics(recorded)
    assert bool(actor.gripper_is_binary)
    targets = actor.normalized_commands(recorded[:5])
    logits = torch.where(targets[:, 6:] > 0.5, 4.0, -4.0)  # what a trained network outputs for closed / open
    with torch.no_grad():
        actor.network.forward = lambda _: torch.cat([targets[:, :6], logits], dim=1)  # a perfectly fitted network
        commands = actor.commands(env.get_observations())
    torch.testing.assert_close(commands, recorded[:5])


def test_actor_commands_stay_in_the_device_range():
    env = _env(randomized=True)
    actor = _actor(env)
    with torch.no_grad():
        for parameter in actor.network.parameters():
            parameter.normal_(0.0, 3.0)  # a wild network: its outputs must still be a device's
        commands = actor.commands(env.get_observations())
    assert commands[:, :6].abs().max() <= 1.0
    assert 0.0 <= float(commands[0, 6]) <= 1.0
    action = actor(env.get_observations())
    assert torch.isfinite(action).all()


def test_actor_needs_an_arm():
    env = _env("quadruped-flat")
    with pytest.raises(RunDirError, match="ee_site"):
        _actor(env)


def test_network_sees_the_goal_from_the_hand():
    env = _env()
    columns = ObservationColumns.of(env.observation_layout())
    policy = torch.zeros(1, env.get_observations()["policy"].shape[1])
    half_turn_about_x = [0.0, 1.0, 0.0, 0.0]  # fingers down: the ee's y and z axes point along -y and -z
    policy[0, columns.ee_pose] = torch.tensor([0.5, 0.0, 0.2, *half_turn_about_x])
    yaw_90 = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]
    policy[0, columns.goal_pose] = torch.tensor([0.6, 0.1, 0.02, *yaw_90])
    inputs = network_inputs(policy, columns)
    assert inputs.shape[1] == policy.shape[1] + RELATIVE_DIM
    torch.testing.assert_close(inputs[0, : policy.shape[1]], policy[0])
    offset, offset_in_ee, rotation = inputs[0, -10:-7], inputs[0, -7:-4], inputs[0, -4:]
    torch.testing.assert_close(offset, torch.tensor([0.1, 0.1, -0.18]))
    torch.testing.assert_close(offset_in_ee, torch.tensor([0.1, -0.1, 0.18]))
    # the goal's rotation from the hand, worked by hand: conj(half turn about x) * (yaw 90) = (0, -c, s, 0)
    # with c = s = cos 45 deg; canonical_quat fixes its sign
    half = math.cos(math.pi / 4)
    torch.testing.assert_close(rotation.abs(), torch.tensor([0.0, half, half, 0.0]))
    assert math.isclose(float(rotation[1]), -float(rotation[2]), abs_tol=1e-6)
