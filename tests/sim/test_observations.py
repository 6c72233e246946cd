"""Observation layout, scales and history on hand-made simulator states."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sim.tasks.config import ObservationTerm
from sim.vec_env import LocomotionEnv
from tests.conftest import small_config


def _pose(env: LocomotionEnv, roll_rad: float, joint_offset: np.ndarray, ang_vel: np.ndarray) -> None:
    """Write a base orientation, joint angles and body rates into every simulation."""
    half = 0.5 * roll_rad
    b, d, dtype = env.base_qpos, env.base_dof, env.qpos.dtype
    env.qpos[:, b + 3 : b + 7] = torch.tensor([math.cos(half), math.sin(half), 0.0, 0.0], dtype=dtype)
    env.qpos[:, env.qpos_ids] = torch.as_tensor(env.spec.default_joint_pos + joint_offset, dtype=dtype)
    env.qvel[:] = 0.0
    env.qvel[:, d + 3 : d + 6] = torch.as_tensor(ang_vel, dtype=env.qvel.dtype)
    env.backend.forward(torch.arange(env.num_envs))
    env.state = env._read_state()


def test_policy_layout_matches_design_order_and_widths(nominal_config):
    env = LocomotionEnv(nominal_config, seed=0)
    layout = env.observation_layout()
    assert [(name, dim) for name, dim, _, _ in layout] == [
        ("base_ang_vel", 3),
        ("projected_gravity", 3),
        ("velocity_command", 3),
        ("joint_pos_rel", 12),
        ("joint_vel", 12),
        ("last_action", 12),
    ]
    obs = env.get_observations()
    assert obs["policy"].shape == (8, 45)
    # critic: noise-free policy frame + base_lin_vel (3) + foot contacts (4) + randomized parameters
    assert obs["critic"].shape[1] == 45 + 3 + 4 + env.randomizer.critic_features().shape[1]


def test_terms_and_scales_on_a_hand_made_state(nominal_config):
    env = LocomotionEnv(nominal_config, seed=0)
    offsets = np.linspace(-0.2, 0.2, 12)
    _pose(env, roll_rad=0.3, joint_offset=offsets, ang_vel=np.array([0.4, -0.8, 1.2]))
    env.set_velocity_command([0.7, -0.2, 0.5])
    env.state = env._read_state()
    obs = env._compute_observations(reset_ids=torch.arange(8))["policy"]
    s = env.observation_slices()
    # rolled by +0.3 rad about x: gravity appears as (0, -sin, -cos)... in the body frame
    expected_gravity = torch.tensor([0.0, -math.sin(0.3), -math.cos(0.3)])
    torch.testing.assert_close(obs[0, s["projected_gravity"]], expected_gravity, atol=1e-5, rtol=0)
    torch.testing.assert_close(obs[0, s["base_ang_vel"]], 0.25 * torch.tensor([0.4, -0.8, 1.2]), atol=1e-6, rtol=0)
    torch.testing.assert_close(obs[0, s["velocity_command"]], torch.tensor([0.7, -0.2, 0.5]))
    torch.testing.assert_close(
        obs[0, s["joint_pos_rel"]], torch.tensor(offsets, dtype=torch.float32), atol=1e-6, rtol=0
    )


def test_joint_velocity_scale_and_last_action(nominal_config):
    env = LocomotionEnv(nominal_config, seed=0)
    actions = torch.linspace(-1, 1, 12).repeat(8, 1)
    env.step(torch.zeros(8, 12))
    obs, *_ = env.step(actions)
    s = env.observation_slices()
    # the observation that follows an action carries it as the previous policy output
    torch.testing.assert_close(obs["policy"][:, s["last_action"]], actions)
    joint_vel = env.qvel[:, env.dof_ids].float()
    torch.testing.assert_close(obs["policy"][:, s["joint_vel"]], 0.05 * joint_vel, atol=1e-6, rtol=0)


def test_clip_applies_after_scale():
    cfg = small_config(num_envs=2, randomized=False)
    cfg.observations.policy = [ObservationTerm("velocity_command", scale=2.0, clip=1.5)]
    env = LocomotionEnv(cfg, seed=0)
    env.set_velocity_command([1.0, -0.5, 0.25])
    env.state = env._read_state()
    obs = env._compute_observations(reset_ids=torch.tensor([], dtype=torch.int64))["policy"]
    torch.testing.assert_close(obs[0], torch.tensor([1.5, -1.0, 0.5]))


def test_history_is_time_major_oldest_first():
    cfg = small_config(num_envs=2, randomized=False)
    cfg.observations.policy = [ObservationTerm("last_action")]
    cfg.observations.history = 3
    env = LocomotionEnv(cfg, seed=0)
    first = env.get_observations()["policy"]
    torch.testing.assert_close(first, torch.zeros(2, 36))  # filled with the reset frame
    a1, a2 = torch.full((2, 12), 0.1), torch.full((2, 12), 0.2)
    env.step(a1)
    env.step(a2)
    obs, *_ = env.step(torch.zeros(2, 12))
    # frames: [t-2: a1, t-1: a2, t: the zeros just applied]
    torch.testing.assert_close(obs["policy"], torch.cat([a1, a2, torch.zeros(2, 12)], dim=1))


def test_noise_only_when_enabled():
    quiet = LocomotionEnv(small_config(num_envs=4, randomized=False, noise=False), seed=2)
    noisy = LocomotionEnv(small_config(num_envs=4, randomized=False, noise=True), seed=2)
    q_obs = quiet.get_observations()
    n_obs = noisy.get_observations()
    # the critic frame is noise-free in both; only the policy frame carries sensor noise
    torch.testing.assert_close(q_obs["critic"][:, :45], n_obs["critic"][:, :45])
    assert not torch.allclose(q_obs["policy"], n_obs["policy"])


def test_unknown_term_is_named():
    cfg = small_config(num_envs=1)
    cfg.observations.policy = [ObservationTerm("base_height")]
    with pytest.raises(ValueError, match="unknown observation term 'base_height'"):
        LocomotionEnv(cfg, seed=0)


def test_imu_readings_are_in_the_imu_site_frame(tmp_path):
    """A robot whose IMU is mounted yawed by 90 degrees reports rates and gravity in that frame."""
    from sim.robot_spec import ROBOTS_DIR

    source = ROBOTS_DIR / "quadruped"
    xml = (source / "quadruped.xml").read_text()
    xml = xml.replace(
        '<site name="imu" pos="0 0 0" size="0.01"/>',
        '<site name="imu" pos="0 0 0" size="0.01" quat="0.70710678 0 0 0.70710678"/>',
    )
    (tmp_path / "quadruped.xml").write_text(xml)
    (tmp_path / "quadruped.yaml").write_text((source / "quadruped.yaml").read_text())
    cfg = small_config(num_envs=1, randomized=False)
    cfg.robot = str(tmp_path / "quadruped.yaml")
    env = LocomotionEnv(cfg, seed=0)
    _pose(env, roll_rad=0.3, joint_offset=np.zeros(12), ang_vel=np.array([1.0, 0.0, 0.0]))
    obs = env._compute_observations(reset_ids=torch.arange(1))["policy"]
    s = env.observation_slices()
    # body x is the IMU's -y; rolled gravity (0, -sin, -cos) in the body frame is (-sin, 0, -cos) for the IMU
    torch.testing.assert_close(obs[0, s["base_ang_vel"]], 0.25 * torch.tensor([0.0, -1.0, 0.0]), atol=1e-6, rtol=0)
    expected = torch.tensor([-math.sin(0.3), 0.0, -math.cos(0.3)])
    torch.testing.assert_close(obs[0, s["projected_gravity"]], expected, atol=1e-5, rtol=0)
