"""Shared fixtures: small configs of the real task, real MuJoCo underneath."""

from __future__ import annotations

import pytest

from sim.tasks import make_task_config
from sim.tasks.config import EnvConfig


def small_config(num_envs: int = 8, randomized: bool = True, noise: bool = False) -> EnvConfig:
    cfg = make_task_config("quadruped-flat")
    cfg.num_envs = num_envs
    cfg.num_threads = 2
    if not randomized:
        cfg.randomization = cfg.randomization.disabled()
    cfg.randomization.observation_noise = noise
    return cfg


@pytest.fixture
def nominal_config() -> EnvConfig:
    return small_config(randomized=False)
