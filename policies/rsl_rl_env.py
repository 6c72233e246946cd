"""Adapter from simreal's BatchedRobotEnv to rsl_rl 5.5's VecEnv (TensorDict observation groups).

It lives in `policies/` so that `sim/` depends on nothing but numpy, torch and mujoco (DESIGN.md §1).
"""

from __future__ import annotations

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from sim.batched_env import BatchedRobotEnv


def as_tensordict(observations: dict[str, torch.Tensor]) -> TensorDict:
    """Observation groups ('policy', 'critic') as the TensorDict rsl_rl models take."""
    first = next(iter(observations.values()))
    return TensorDict(observations, batch_size=[first.shape[0]])


class RslRlVecEnv(VecEnv):
    """rsl_rl's view of a BatchedRobotEnv: same step, observations as TensorDict."""

    def __init__(self, env: BatchedRobotEnv) -> None:
        self.env = env
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.max_episode_length = env.max_episode_length
        self.device = env.device
        self.cfg = env.cfg

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.env.episode_length_buf

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        # OnPolicyRunner randomizes initial episode lengths through this attribute
        self.env.episode_length_buf = value

    def get_observations(self) -> TensorDict:
        return as_tensordict(self.env.get_observations())

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        observations, rewards, dones, extras = self.env.step(actions)
        return as_tensordict(observations), rewards, dones, extras
