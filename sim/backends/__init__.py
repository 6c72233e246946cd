"""Simulation backends: what steps an env's simulations (sim/backends/base.py says what one provides)."""

from __future__ import annotations

import mujoco

from sim.backends.base import BackendError, SimBackend
from sim.tasks.config import BACKENDS, BackendConfig


def make_backend(
    cfg: BackendConfig, model: mujoco.MjModel, num_envs: int, num_threads: int, per_env_fields: tuple[str, ...]
) -> SimBackend:
    """The backend `cfg.name` with `num_envs` simulations of `model`; `per_env_fields` are the model
    fields each simulation holds its own value of (domain randomization)."""
    if cfg.name == "batch":
        if cfg.device != "cpu":
            raise BackendError(f"--device {cfg.device}: the batch backend runs on the CPU; use --backend warp")
        from sim.backends.batch import BatchBackend

        return BatchBackend(model, num_envs, per_env_fields, num_threads)
    if cfg.name == "warp":
        from sim.backends.warp import WarpBackend

        return WarpBackend(
            model,
            num_envs,
            per_env_fields,
            device=cfg.device,
            max_contacts_per_env=cfg.max_contacts_per_env,
            max_constraints_per_env=cfg.max_constraints_per_env,
            cuda_graph=cfg.cuda_graph,
        )
    raise BackendError(f"backend {cfg.name!r} is not one of {BACKENDS}")


__all__ = ["BACKENDS", "BackendError", "SimBackend", "make_backend"]
