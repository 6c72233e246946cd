"""Differential IK on the real arm in real MuJoCo: deltas move the end effector as asked, within every limit.

Tolerances: the IK's targets move the ee by the command to within its Newton residual (< 0.1 mm); what
is left is the position servo's steady-state error once it settles (joint friction loss 0.05 N m over
kp >= 150 N m/rad: < 0.4 mrad per joint, under a millimetre at the hand). After SETTLE_STEPS (0.5 s,
five servo lag constants) the measured error is 0.1-0.2 mm; the tests allow 2 mm and 0.01 rad.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.arm_ik import ArmDifferentialIK, WorkspaceBounds, rotation_error_vector
from sim.envs import make_env
from sim.manipulation_env import ManipulationEnv
from sim.tasks import make_task_config

SETTLE_STEPS = 25
POSITION_TOLERANCE_M = 0.002
ROTATION_TOLERANCE_RAD = 0.01


@pytest.fixture(scope="module")
def env() -> ManipulationEnv:
    """The arm-lift task, nominal (no randomization): a deterministic arm to measure against."""
    cfg = make_task_config("arm-lift")
    cfg.num_envs = 1
    cfg.num_threads = 1
    cfg.randomization = cfg.randomization.disabled()
    return make_env(cfg, seed=0)


def fresh_ik(env: ManipulationEnv) -> ArmDifferentialIK:
    """A new episode and an IK started from its measured joints."""
    env.reset()
    ik = ArmDifferentialIK(env.model, env.spec, env.base_pos_w.numpy(), env.base_quat_w.numpy(), env.step_dt)
    ik.reset(measured_joints(env))
    return ik


def measured_joints(env: ManipulationEnv) -> np.ndarray:
    return env.state.measured_joint_pos_rad[0].numpy().astype(np.float64)


def send(env: ManipulationEnv, targets: np.ndarray) -> None:
    env.step(((torch.from_numpy(targets).float() - env.default_joint_pos) / env.spec.action_scale)[None])


def drive(env: ManipulationEnv, ik: ArmDifferentialIK, delta: list[float], steps: int, gripper: float = 0.0):
    """The same per-step delta for `steps` control steps, then the last targets held to settle; targets sent."""
    sent = [ik.targets.copy()]
    for _ in range(steps):
        sent.append(ik.joint_targets(measured_joints(env), np.array(delta, dtype=np.float64), gripper))
        send(env, sent[-1])
    for _ in range(SETTLE_STEPS):
        send(env, sent[-1])
    return np.array(sent)


def ee_pose_now(env: ManipulationEnv, ik: ArmDifferentialIK) -> tuple[np.ndarray, np.ndarray]:
    """The simulated ee pose: forward kinematics of the true joint angles, base frame."""
    return ik.ee_pose(env.state.joint_pos_rad[0].numpy().astype(np.float64))


def test_a_translation_delta_moves_the_end_effector_by_that_delta(env):
    ik = fresh_ik(env)
    start_m, start_rotation = ee_pose_now(env, ik)
    assert np.allclose(start_m, env.state.ee_pos_b[0].numpy(), atol=1e-4)  # the IK's kinematics are the sim's
    drive(env, ik, [0.005, -0.004, -0.003, 0.0, 0.0, 0.0], steps=20)  # 10, -8, -6 cm in 0.4 s
    end_m, end_rotation = ee_pose_now(env, ik)
    assert np.allclose(end_m - start_m, [0.10, -0.08, -0.06], atol=POSITION_TOLERANCE_M), end_m - start_m
    assert np.linalg.norm(rotation_error_vector(end_rotation, start_rotation)) < ROTATION_TOLERANCE_RAD


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_orientation_deltas_rotate_the_end_effector_about_base_axes(env, axis):
    ik = fresh_ik(env)
    start_m, start_rotation = ee_pose_now(env, ik)
    delta = np.zeros(6)
    delta[3 + axis] = 0.015
    drive(env, ik, list(delta), steps=20)  # 0.3 rad about base x, y or z
    end_m, end_rotation = ee_pose_now(env, ik)
    turned = rotation_error_vector(end_rotation, start_rotation)  # base frame: R_end = exp(turned) R_start
    assert np.allclose(turned, 20 * delta[3:], atol=ROTATION_TOLERANCE_RAD), turned
    assert np.linalg.norm(end_m - start_m) < POSITION_TOLERANCE_M  # turning in place


def test_one_large_step_lands_where_asked(env):
    """The Newton iterations: a 1 cm step (the speed limits allow about 1.4 cm here) is exact, not linearized."""
    ik = fresh_ik(env)
    before_m, _ = ik.ee_pose(ik.targets)
    targets = ik.joint_targets(measured_joints(env), np.array([0.0, 0.01, 0.0, 0.0, 0.0, 0.05]), 0.0)
    after_m, _ = ik.ee_pose(targets)
    assert np.allclose(after_m - before_m, [0.0, 0.01, 0.0], atol=1e-4)


def test_per_step_target_changes_stay_within_speed_limits_and_joint_ranges(env):
    """Full-scale random commands (5 cm, 0.5 rad a step: far past what the joints can do) and gripper flips."""
    ik = fresh_ik(env)
    rng = np.random.default_rng(3)
    sent = [ik.targets.copy()]
    for step in range(150):
        delta = rng.uniform(-1.0, 1.0, 6) * np.array([0.05, 0.05, 0.05, 0.5, 0.5, 0.5])
        sent.append(ik.joint_targets(measured_joints(env), delta, float(step // 20 % 2)))
        send(env, sent[-1])
    sent = np.array(sent)
    per_step = np.abs(np.diff(sent, axis=0))
    assert (per_step <= ik.max_step + 1e-12).all(), (per_step / ik.max_step).max(axis=0)
    assert (per_step[:, ik.arm_ids] > 0.999 * ik.max_step[ik.arm_ids]).any()  # the limits were reached
    assert (sent >= ik.range[:, 0]).all() and (sent <= ik.range[:, 1]).all()


def test_a_joint_at_its_range_stays_there(env):
    """Turning the hand one way for 3 s drives the wrist joints into their ranges; targets never leave them."""
    ik = fresh_ik(env)
    sent = drive(env, ik, [0.0, 0.0, 0.0, 0.0, 0.0, 0.5], steps=150)
    at_bound = np.isclose(sent, ik.range[:, 0]) | np.isclose(sent, ik.range[:, 1])
    assert at_bound[:, ik.arm_ids].any()  # some arm joint did reach its range
    assert (sent >= ik.range[:, 0]).all() and (sent <= ik.range[:, 1]).all()


def test_the_finger_target_is_the_open_width_times_one_minus_gripper_reached_at_its_speed(env):
    ik = fresh_ik(env)
    sent = drive(env, ik, [0.0] * 6, steps=15, gripper=0.75)
    open_m = ik.range[ik.finger_index, 1]
    finger = sent[:, ik.finger_index]
    assert finger[-1] == pytest.approx(open_m * 0.25)
    assert np.abs(np.diff(finger)).max() <= ik.max_step[ik.finger_index] + 1e-12  # 4 mm a step: 0.2 m/s
    assert np.abs(env.state.joint_pos_rad[0, ik.finger_index].item() - open_m * 0.25) < 0.002  # and it got there


@pytest.mark.parametrize(
    ("delta", "axis", "bound_m"),
    [
        ([0.0, 0.0, -0.02], 2, WorkspaceBounds().low_m[2]),  # down into the table
        ([0.02, 0.0, 0.0], 0, WorkspaceBounds().high_m[0]),  # forward past the far edge of the box
        ([0.0, 0.02, 0.0], 1, WorkspaceBounds().high_m[1]),  # sideways
    ],
)
def test_a_command_out_of_the_workspace_stops_at_its_boundary(env, delta, axis, bound_m):
    ik = fresh_ik(env)
    start_m, _ = ee_pose_now(env, ik)
    sent = drive(env, ik, [*delta, 0.0, 0.0, 0.0], steps=60)  # 1.2 m asked: far past every bound
    commanded_m, _ = ik.ee_pose(sent[-1])
    reached_m, _ = ee_pose_now(env, ik)
    assert commanded_m[axis] == pytest.approx(bound_m, abs=1e-4)
    assert reached_m[axis] == pytest.approx(bound_m, abs=POSITION_TOLERANCE_M)
    others = [i for i in range(3) if i != axis]
    assert np.allclose(reached_m[others], start_m[others], atol=POSITION_TOLERANCE_M)  # straight at the bound
    assert not env.state.finger_contacts[0].any()


def test_the_workspace_never_pushes_a_position_further_out_nor_yanks_it_in():
    bounds = WorkspaceBounds()
    outside = np.array([0.80, 0.0, 0.3])  # already past x = 0.75 (e.g. a human moved the arm there)
    forward, back, down = np.array([0.01, 0.0, 0.0]), np.array([-0.01, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])
    assert np.allclose(bounds.clamp(outside + forward, outside), outside)
    assert np.allclose(bounds.clamp(outside + back, outside), outside + back)
    inside = np.array([0.5, 0.0, 0.3])
    assert np.allclose(bounds.clamp(inside + down, inside), [0.5, 0.0, bounds.low_m[2]])
