"""The vectorized env: rsl_rl interface, determinism, resets, time-outs and divergence handling."""

from __future__ import annotations

import pytest
import torch

from sim.config_io import ConfigError
from sim.tasks import UnknownTaskError, make_task_config
from sim.vec_env import LocomotionEnv
from tests.conftest import small_config


def _rollout(seed: int, steps: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    env = LocomotionEnv(small_config(num_envs=6, noise=True), seed=seed)
    generator = torch.Generator().manual_seed(0)
    observations, rewards = [], []
    for _ in range(steps):
        obs, reward, _, _ = env.step(0.5 * torch.randn(6, 12, generator=generator))
        observations.append(obs["policy"])
        rewards.append(reward)
    return torch.stack(observations), torch.stack(rewards)


def test_same_seed_same_rollout_and_other_seed_differs():
    obs_a, rew_a = _rollout(seed=11)
    obs_b, rew_b = _rollout(seed=11)
    obs_c, _ = _rollout(seed=12)
    assert torch.equal(obs_a, obs_b) and torch.equal(rew_a, rew_b)
    assert not torch.equal(obs_a, obs_c)


def test_reward_is_weighted_sum_of_terms():
    env = LocomotionEnv(small_config(num_envs=4), seed=1)
    before = {name: sums.clone() for name, sums in env.episode_sums.items()}
    _, reward, dones, _ = env.step(0.3 * torch.ones(4, 12))
    assert not dones.any()
    total = sum(env.episode_sums[name] - before[name] for name in env.episode_sums)
    torch.testing.assert_close(reward, total)


def test_time_out_is_reported_as_time_out_not_failure():
    cfg = small_config(num_envs=3, randomized=False)
    cfg.terminations.episode_length_s = 0.1  # 5 policy steps
    env = LocomotionEnv(cfg, seed=0)
    for step in range(5):
        _, _, dones, extras = env.step(torch.zeros(3, 12))
        if step < 4:
            assert not dones.any()
    assert dones.all() and extras["time_outs"].all()
    assert extras["log"]["Episode_Termination/time_out"] == 3
    assert int(env.episode_length_buf.max()) == 0  # reset for the next episode


def test_trunk_on_the_ground_terminates_with_penalty():
    env = LocomotionEnv(small_config(num_envs=2, randomized=False), seed=0)
    # flip env 0 upside down just above the floor
    env.qpos[0, env.base_qpos : env.base_qpos + 7] = torch.tensor(
        [0.0, 0.0, 0.08, 0.0, 1.0, 0.0, 0.0], dtype=env.qpos.dtype
    )
    _, reward, dones, extras = env.step(torch.zeros(2, 12))
    assert dones.tolist() == [1, 0]
    assert not extras["time_outs"][0]
    assert reward[0] < reward[1] - 1.0  # termination weight -100 per second -> -2 at 50 Hz
    assert env.episode_length_buf[0] == 0


def test_non_finite_simulation_is_reset_and_counted_others_continue():
    env = LocomotionEnv(small_config(num_envs=3), seed=0)
    env.step(torch.zeros(3, 12))
    length_before = env.episode_length_buf.clone()
    env.qvel[1, :] = float("nan")
    obs, reward, dones, extras = env.step(torch.zeros(3, 12))
    assert dones.tolist() == [0, 1, 0]
    assert env.nonfinite_resets == 1 and extras["log"]["Episode_Termination/nonfinite"] == 1
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(obs["critic"]).all() and torch.isfinite(reward).all()
    assert torch.isfinite(env.qpos).all() and torch.isfinite(env.qvel).all()
    assert env.episode_length_buf[0] == length_before[0] + 1 and env.episode_length_buf[1] == 0
    # the env goes on stepping normally
    _, _, dones, _ = env.step(torch.zeros(3, 12))
    assert not dones.any()


def test_non_finite_action_never_reaches_the_motors():
    env = LocomotionEnv(small_config(num_envs=2), seed=0)
    actions = torch.zeros(2, 12)
    actions[0, 3] = float("nan")
    _, _, dones, _ = env.step(actions)
    assert torch.isfinite(env.ctrl).all()
    assert dones.tolist() == [1, 0] and env.nonfinite_resets == 1


def test_targets_stay_within_joint_ranges():
    env = LocomotionEnv(small_config(num_envs=2), seed=0)
    env.step(torch.full((2, 12), 50.0))
    ctrl = env.ctrl[:, env.actuator_ids]
    assert torch.all(ctrl <= env.joint_range[:, 1] + 1e-12) and torch.all(ctrl >= env.joint_range[:, 0] - 1e-12)


def test_commands_cover_the_configured_box_with_standing_share():
    env = LocomotionEnv(small_config(num_envs=512), seed=4)
    commands = env.commands
    cfg = env.cfg.commands
    assert commands[:, 0].min() >= cfg.lin_vel_x_m_s[0] and commands[:, 0].max() <= cfg.lin_vel_x_m_s[1]
    assert commands[:, 1].abs().max() <= 0.5 and commands[:, 2].abs().max() <= 1.0
    assert commands[:, 0].max() > 0.8 and commands[:, 0].min() < -0.8
    standing = (commands.abs().sum(dim=1) == 0).float().mean()
    assert 0.04 < standing < 0.2
    timer = env.command_timer_s
    assert timer.min() >= 0.8 * cfg.resample_interval_s and timer.max() <= 1.2 * cfg.resample_interval_s


def test_unknown_task_lists_known_tasks():
    with pytest.raises(
        UnknownTaskError, match="unknown task 'quadruped-rough'; known tasks: arm-lift, arm-reach, quadruped-flat"
    ):
        make_task_config("quadruped-rough")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("history", 0, "observations.history must be at least 1"),
        ("critic_extra", ["base_height"], r"observations.critic_extra: unknown \['base_height'\]"),
    ],
)
def test_bad_observation_config_is_named(field, value, message):
    cfg = small_config(num_envs=1)
    setattr(cfg.observations, field, value)
    with pytest.raises(ConfigError, match=message):
        LocomotionEnv(cfg, seed=0)
