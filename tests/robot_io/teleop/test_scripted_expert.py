"""The scripted expert lifts the cube through the same scaling and IK a person's device goes through.

Real `arm-lift` environments with the task's randomization on (cube size, mass, friction, pose; motor
gains, latency, encoder offsets, initial joints). The success rate over 100 episodes:

    nice -n 10 .venv/bin/python -m tests.robot_io.teleop.test_scripted_expert --episodes 100
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pytest
import torch

from robot_io.teleop.command import TeleopDevice, TeleopReading
from robot_io.teleop.scripted import LiftPlan, ReplayDevice, ScriptedLiftExpert, grasp_finger_yaw
from sim.arm_ik import ArmDeltaLimits, ArmDifferentialIK
from sim.envs import make_env
from sim.manipulation_env import ManipulationEnv
from sim.tasks import make_task_config


def lift_env(num_envs: int, seed: int, randomized: bool = True) -> ManipulationEnv:
    cfg = make_task_config("arm-lift")
    cfg.num_envs = num_envs
    cfg.num_threads = 2
    if not randomized:
        cfg.randomization = cfg.randomization.disabled()
    return make_env(cfg, seed=seed)


def run_episodes(env: ManipulationEnv, devices: list[TeleopDevice], seed: int) -> tuple[np.ndarray, list]:
    """One episode per environment, all started together, each driven by its device through its own IK.

    The session's path: observe (a scripted expert), poll, clip, scale to metres and radians, IK from the
    measured joints, joint targets -> actions. Returns each episode's success flag and each device's readings.
    """
    limits = ArmDeltaLimits()
    env.reset()
    iks = [
        ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
        for _ in devices
    ]
    for i, (ik, device) in enumerate(zip(iks, devices, strict=True)):
        ik.reset(env.state.measured_joint_pos_rad[i].numpy().astype(np.float64))
        if hasattr(device, "reset"):
            device.reset(np.random.default_rng([seed, i]))
    success = np.full(len(devices), -1)  # -1: still running
    readings: list[list[TeleopReading]] = [[] for _ in devices]
    while (success < 0).any():
        state, targets = env.state, []
        for i, (ik, device) in enumerate(zip(iks, devices, strict=True)):
            measured = state.measured_joint_pos_rad[i].numpy().astype(np.float64)
            if hasattr(device, "observe"):
                device.observe(
                    state.ee_pos_b[i].numpy(),
                    state.ee_quat_b[i].numpy(),
                    state.object_pos_b[i].numpy(),
                    state.object_quat_b[i].numpy(),
                    float(measured[ik.finger_index]),
                )
            reading = device.poll().clipped()
            readings[i].append(reading)
            targets.append(ik.joint_targets(measured, limits.scale(reading.arm_delta), reading.gripper))
        actions = (torch.from_numpy(np.array(targets)).float() - env.default_joint_pos) / env.spec.action_scale
        env.step(actions)
        finished = env.finished_episodes
        first = success[finished["ids"]] < 0
        success[finished["ids"][first]] = finished["success"][first]
    return success.astype(bool), readings


@pytest.mark.slow
def test_the_expert_lifts_the_cube_in_at_least_90_percent_of_randomized_episodes():
    num_envs = 48
    env = lift_env(num_envs, seed=11)
    success, readings = run_episodes(env, [ScriptedLiftExpert() for _ in range(num_envs)], seed=11)
    print(f"scripted expert: {success.sum()}/{num_envs} randomized episodes lifted")
    assert success.mean() >= 0.9, f"{success.sum()}/{num_envs}"
    assert all(len(episode) == env.max_episode_length for episode in readings)  # it acted every control step
    deltas = np.array([reading.arm_delta for episode in readings for reading in episode])
    assert np.abs(deltas).max() <= 1.0  # normalized like a person's device


@pytest.mark.slow
def test_a_recorded_demonstration_replays_to_the_same_lift():
    """What a dataset stores (the readings) is enough: replayed into the same simulation, the cube goes up."""
    recorded_success, readings = run_episodes(lift_env(1, seed=5), [ScriptedLiftExpert()], seed=5)
    rows = [[*reading.arm_delta, reading.gripper] for reading in readings[0]]  # a dataset's `action` column
    replayed_success, replayed = run_episodes(lift_env(1, seed=5), [ReplayDevice(rows)], seed=5)
    assert recorded_success[0] and replayed_success[0]
    assert np.allclose([r.arm_delta for r in replayed[0]], [r.arm_delta for r in readings[0]])


def test_demonstrations_vary_with_the_rng():
    first, second = LiftPlan.sample(np.random.default_rng(1)), LiftPlan.sample(np.random.default_rng(2))
    assert first.speed_m_s != second.speed_m_s and not np.allclose(first.grasp_offset_m, second.grasp_offset_m)
    again = LiftPlan.sample(np.random.default_rng(1))
    assert again.speed_m_s == first.speed_m_s and np.allclose(again.grasp_offset_m, first.grasp_offset_m)
    assert 0.13 <= first.lift_height_m <= 0.17  # about 15 cm: clear of the task's 10 cm


@pytest.mark.parametrize(
    ("finger_yaw_deg", "cube_yaw_deg", "goal_deg"),
    [
        (0.0, 80.0, -10.0),  # a quarter turn of the cube looks the same: turn 10 degrees, not 80
        (0.0, 30.0, 30.0),
        (0.0, -170.0, 10.0),
        (90.0, 100.0, 100.0),
        (-90.0, 44.0, -46.0),  # 134 degrees apart: a 44-degree turn
    ],
)
def test_the_grasp_yaw_is_the_smallest_wrist_turn_to_a_face_pair(finger_yaw_deg, cube_yaw_deg, goal_deg):
    goal_rad = grasp_finger_yaw(math.radians(finger_yaw_deg), math.radians(cube_yaw_deg))
    assert math.degrees(goal_rad) == pytest.approx(goal_deg, abs=1e-9)


def test_without_a_cube_the_expert_stands_still():
    expert = ScriptedLiftExpert()
    expert.observe(np.array([0.5, 0.0, 0.3]), np.array([0.0, 1.0, 0.0, 0.0]), None, None)
    reading = expert.poll()
    assert not reading.arm_delta.any() and reading.gripper == 0.0


def test_replay_device_plays_rows_and_readings_then_asks_for_the_next_episode():
    row = [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    device = ReplayDevice([row, TeleopReading(arm_delta=np.array([0.0, 0.2, 0.0, 0.0, 0.0, 0.0]), gripper=1.0)])
    first, second, after = device.poll(), device.poll(), device.poll()
    assert first.arm_delta[0] == 0.1 and second.arm_delta[1] == 0.2 and second.gripper == 1.0
    assert not first.events.any() and not second.events.any()
    assert device.finished and after.events.next_episode
    assert not after.arm_delta.any() and after.gripper == 1.0  # past the end: still, and a held cube stays held
    device.rewind()
    assert device.poll().arm_delta[0] == 0.1


def test_replay_device_rejects_rows_that_are_not_actions():
    with pytest.raises(ValueError, match="dx, dy, dz, droll, dpitch, dyaw, gripper"):
        ReplayDevice([[0.1, 0.0, 0.0]])


def main() -> None:
    """The expert's success rate over many randomized episodes (run in batches of environments)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_s, results = time.perf_counter(), []
    for batch, first in enumerate(range(0, args.episodes, args.batch)):
        count, seed = min(args.batch, args.episodes - first), args.seed + batch
        success, _ = run_episodes(lift_env(count, seed), [ScriptedLiftExpert() for _ in range(count)], seed)
        results.append(success)
    success = np.concatenate(results)
    elapsed_s = time.perf_counter() - start_s
    print(f"scripted expert: {success.sum()}/{len(success)} = {success.mean():.1%} randomized episodes lifted")
    print(f"({elapsed_s:.0f} s)")


if __name__ == "__main__":
    main()
