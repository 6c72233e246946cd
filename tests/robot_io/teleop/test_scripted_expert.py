"""The scripted expert lifts the cube through the same IK a person's device drives, randomization on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_io.teleop.arm_ik import ArmDifferentialIK
from robot_io.teleop.command import ArmDeltaLimits
from robot_io.teleop.scripted import ReplayDevice, ScriptedLiftExpert
from sim.envs import make_env
from sim.tasks import make_task_config

pytestmark = pytest.mark.slow


def test_expert_lifts_the_cube_in_most_randomized_episodes():
    n = 32
    cfg = make_task_config("arm-lift")
    cfg.num_envs = n
    env = make_env(cfg, seed=11)
    env.reset()
    limits = ArmDeltaLimits()
    iks = [ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)]
    iks += [ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
            for _ in range(n - 1)]  # fmt: skip
    experts = [ScriptedLiftExpert() for _ in range(n)]
    for i, expert in enumerate(experts):
        expert.reset(np.random.default_rng(i))
    success = None
    for _ in range(env.max_episode_length):
        s = env.state
        actions = []
        for i in range(n):
            finger = float(s.measured_joint_pos_rad[i, iks[i].gripper])
            experts[i].observe(s.ee_pos_b[i], s.ee_quat_b[i], s.object_pos_b[i], s.object_quat_b[i], finger)
            reading = experts[i].poll().clipped()
            q = s.measured_joint_pos_rad[i].numpy().astype(np.float64)
            targets = iks[i].joint_targets(q, limits.scale(reading.arm_delta), reading.gripper)
            actions.append((torch.from_numpy(targets).float() - env.default_joint_pos) / env.spec.action_scale)
        env.step(torch.stack(actions))
        if len(env.finished_episodes["ids"]) == n:
            success = env.finished_episodes["success"]
    assert success is not None
    print(f"expert success {success.mean():.3f} over {n} randomized episodes")
    assert success.mean() >= 0.85  # measured 60/64 = 0.94 (seed 3) and 29/32 here; a few stall in the approach


def test_replay_device_plays_rows_then_asks_for_the_next_episode():
    device = ReplayDevice([[0.1, 0, 0, 0, 0, 0, 0.0], [0, 0.2, 0, 0, 0, 0, 1.0]])
    first, second, after = device.poll(), device.poll(), device.poll()
    assert first.arm_delta[0] == 0.1 and second.arm_delta[1] == 0.2 and second.gripper == 1.0
    assert after.events.next_episode and not first.events.any()
