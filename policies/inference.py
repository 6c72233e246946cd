"""Load a trained actor from a run directory for inference (eval, play, export)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rsl_rl.models import MLPModel

from policies.config import rsl_rl_config
from policies.rsl_rl_env import as_tensordict
from policies.run_dir import RunConfig, RunDirError, find_checkpoint, load_checkpoint, load_run_config


@dataclass
class LoadedPolicy:
    config: RunConfig
    checkpoint: Path
    iteration: int
    actor: MLPModel

    @torch.no_grad()
    def __call__(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic actions (the distribution mean)."""
        return self.actor(as_tensordict(observations))


def load_policy(
    run_dir: Path, iteration: int | None, observations: dict[str, torch.Tensor], num_actions: int
) -> LoadedPolicy:
    """Build the actor of a run for observations shaped like `observations` and load its weights."""
    config = load_run_config(run_dir)
    path = find_checkpoint(run_dir, iteration)
    content = load_checkpoint(path)
    actor_cfg = dict(rsl_rl_config(config.train, run_dir.name)["actor"])
    actor_cfg.pop("class_name")
    actor = MLPModel(as_tensordict(observations), {"actor": ["policy"]}, "actor", num_actions, **actor_cfg)
    try:
        actor.load_state_dict(content["actor_state_dict"])
    except (KeyError, RuntimeError) as error:
        raise RunDirError(f"{path}: the actor weights do not fit the run's config: {error}") from None
    actor.eval()
    return LoadedPolicy(config=config, checkpoint=path, iteration=int(content.get("iter", -1)), actor=actor)
