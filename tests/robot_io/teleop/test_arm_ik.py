"""Differential IK on the real arm model: deltas move the end effector as asked, within every limit."""

from __future__ import annotations

import numpy as np
import torch

from robot_io.teleop.arm_ik import ArmDifferentialIK, WorkspaceBounds
from sim.envs import make_env
from sim.tasks import make_task_config


def nominal_arm():
    cfg = make_task_config("arm-lift")
    cfg.num_envs = 1
    cfg.randomization = cfg.randomization.disabled()
    env = make_env(cfg, seed=0)
    ik = ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
    return env, ik


def drive(env, ik, delta: np.ndarray, steps: int, gripper: float = 0.0) -> list[np.ndarray]:
    """Command the same per-step delta for `steps` control steps in simulation; the targets sent."""
    sent = []
    for _ in range(steps):
        q = env.state.measured_joint_pos_rad[0].numpy().astype(np.float64)
        targets = ik.joint_targets(q, delta, gripper)
        sent.append(targets)
        env.step(((torch.from_numpy(targets).float() - env.default_joint_pos) / env.spec.action_scale)[None])
    for _ in range(25):  # let the motors settle on the last target
        env.step(((torch.from_numpy(sent[-1]).float() - env.default_joint_pos) / env.spec.action_scale)[None])
    return sent


def test_a_translation_delta_moves_the_end_effector_by_that_much():
    env, ik = nominal_arm()
    env.reset()
    ik.reset(env.state.measured_joint_pos_rad[0].numpy())
    start = env.state.ee_pos_b[0].numpy().copy()
    drive(env, ik, np.array([0.004, -0.002, -0.003, 0.0, 0.0, 0.0]), steps=25)  # 10, -5, -7.5 cm in total
    moved = env.state.ee_pos_b[0].numpy() - start
    assert np.allclose(moved, [0.10, -0.05, -0.075], atol=0.01), moved


def test_a_yaw_delta_turns_the_fingers_about_the_vertical():
    env, ik = nominal_arm()
    env.reset()
    ik.reset(env.state.measured_joint_pos_rad[0].numpy())
    _, before = ik.ee_pose(env.state.joint_pos_rad[0].numpy())
    drive(env, ik, np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.02]), steps=20)  # 0.4 rad about base z
    _, after = ik.ee_pose(env.state.joint_pos_rad[0].numpy())
    turned = np.arctan2(after[1, 1], after[0, 1]) - np.arctan2(before[1, 1], before[0, 1])
    assert abs(turned - 0.4) < 0.04 and after[2, 2] < -0.99  # still pointing down


def test_targets_respect_speed_limits_ranges_and_the_workspace():
    env, ik = nominal_arm()
    env.reset()
    ik.reset(env.state.measured_joint_pos_rad[0].numpy())
    sent = drive(env, ik, np.array([0.05, 0.05, -0.05, 0.5, 0.5, 0.5]), steps=60, gripper=1.0)  # far too much
    steps = np.abs(np.diff(np.array(sent)[:, ik.arm], axis=0))
    assert (steps <= ik.max_step[ik.arm] + 1e-9).all()
    targets = np.array(sent)
    assert (targets >= ik.range[:, 0] - 1e-9).all() and (targets <= ik.range[:, 1] + 1e-9).all()
    assert targets[-1, ik.gripper] == ik.range[ik.gripper, 0]  # gripper 1 = closed
    # straight down into the table: the commanded position stops at the workspace floor
    ik2 = ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
    env.reset()
    ik2.reset(env.state.measured_joint_pos_rad[0].numpy())
    drive(env, ik2, np.array([0.0, 0.0, -0.05, 0.0, 0.0, 0.0]), steps=60)
    assert env.state.ee_pos_b[0, 2] >= WorkspaceBounds().low_m[2] - 0.005
