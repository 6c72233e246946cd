"""Shared fixtures: small configs of the real task, real MuJoCo underneath."""

from __future__ import annotations

import copy

import pytest
import torch

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


def in_float64(module: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of a policy network: the exact answer our own implementations (the C++ core, the folded
    network) are held to. Two float32 evaluations differ by their summation order, which torch picks per machine
    (AVX-512 vs AVX2 kernels): on outputs near 16 that alone reaches 1.5e-5, so a 1e-5 bound against torch's float32
    result is a statement about the machine's kernels as much as about our code."""
    return copy.deepcopy(module).double()
