"""The adapter gives rsl_rl 5.5 exactly the VecEnv it expects."""

from __future__ import annotations

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from policies.rsl_rl_env import RslRlVecEnv
from sim.vec_env import LocomotionEnv
from tests.conftest import small_config


def test_meets_rsl_rl_vec_env_interface():
    env = RslRlVecEnv(LocomotionEnv(small_config(num_envs=4), seed=0))
    assert isinstance(env, VecEnv)
    assert env.num_actions == 12 and env.max_episode_length == 1000  # 20 s at 50 Hz
    obs, rewards, dones, extras = env.step(torch.zeros(4, 12))
    assert isinstance(obs, TensorDict) and set(obs.keys()) == {"policy", "critic"}
    assert obs.batch_size == torch.Size([4])
    assert rewards.shape == (4,) and dones.shape == (4,)
    assert extras["time_outs"].shape == (4,) and isinstance(extras["log"], dict)


def test_episode_length_is_shared_with_the_env():
    inner = LocomotionEnv(small_config(num_envs=4), seed=0)
    env = RslRlVecEnv(inner)
    env.episode_length_buf = torch.tensor([5, 6, 7, 8])  # as OnPolicyRunner does for random starts
    env.step(torch.zeros(4, 12))
    assert inner.episode_length_buf.tolist() == [6, 7, 8, 9]
