"""The env class of a task config: one place that maps EnvConfig.env to its class."""

from __future__ import annotations

from sim.batched_env import BatchedRobotEnv
from sim.config_io import ConfigError
from sim.manipulation_env import ManipulationEnv
from sim.tasks.config import EnvConfig
from sim.vec_env import LocomotionEnv

ENV_CLASSES: dict[str, type[BatchedRobotEnv]] = {"locomotion": LocomotionEnv, "manipulation": ManipulationEnv}


def make_env(cfg: EnvConfig, seed: int = 0) -> BatchedRobotEnv:
    """The env that runs `cfg` (locomotion or manipulation), with `cfg.num_envs` simulations."""
    if cfg.env not in ENV_CLASSES:
        raise ConfigError(f"env {cfg.env!r} is not one of {sorted(ENV_CLASSES)}")
    return ENV_CLASSES[cfg.env](cfg, seed=seed)
