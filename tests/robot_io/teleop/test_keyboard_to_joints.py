"""Key bytes typed into a pseudo-terminal come out as joint targets that move the arm's end effector."""

from __future__ import annotations

import os

import numpy as np

from robot_io.teleop.keyboard import KeyboardTeleop
from sim.arm_ik import ArmDeltaLimits, ArmDifferentialIK
from sim.envs import make_env
from sim.tasks import make_task_config


def test_held_forward_key_drives_the_end_effector_forward_and_g_closes_the_gripper():
    cfg = make_task_config("arm-lift")
    cfg.num_envs = 1
    cfg.randomization = cfg.randomization.disabled()
    env = make_env(cfg, seed=0)
    ik = ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
    joints = env.state.joint_pos_rad[0].numpy().astype(np.float64)
    ik.reset(joints)
    start_b, _ = ik.ee_pose(joints)
    limits = ArmDeltaLimits(max_translation_m=0.005)  # 5 mm per step: 10 steps of a held key move 5 cm
    master, slave = os.openpty()
    keyboard = KeyboardTeleop(slave)
    try:
        os.write(master, b"g")  # close the gripper
        targets = ik.joint_targets(joints, limits.scale(keyboard.poll().arm_delta), keyboard.poll().gripper)
        for _ in range(10):
            os.write(master, b"i")  # forward (+x), as the terminal's key repeat would send it
            reading = keyboard.poll()
            targets = ik.joint_targets(targets, limits.scale(reading.arm_delta), reading.gripper)
    finally:
        keyboard.close()
        os.close(master)
        os.close(slave)
    end_b, _ = ik.ee_pose(targets)
    assert np.allclose(end_b - start_b, [0.05, 0.0, 0.0], atol=0.005), end_b - start_b
    assert targets[ik.gripper] < joints[ik.gripper]  # the finger target moved toward closed
