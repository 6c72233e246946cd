"""`simreal bench env`: env throughput against a bare Batch.step loop measured in the same run."""

from __future__ import annotations

import statistics
import time

import torch

from sim.tasks import make_task_config
from sim.vec_env import LocomotionEnv

WARMUP_STEPS = 20


def bench_env(task: str, num_envs: int, steps: int, repeats: int) -> dict:
    """Median env steps/s (full task, all randomization on) and median raw physics steps/s.

    The raw loop runs `Batch.step(nstep=decimation)` on the env's own batch (same
    model, per-simulation fields, states, threads and decimation), interleaved with
    the env measurements so that both see the same machine load.
    """
    cfg = make_task_config(task)
    cfg.num_envs = num_envs
    env = LocomotionEnv(cfg, seed=0)
    generator = torch.Generator().manual_seed(0)

    def actions() -> torch.Tensor:
        # exploration-sized actions, as during training
        return 0.5 * torch.randn(num_envs, env.num_actions, generator=generator)

    for _ in range(WARMUP_STEPS):
        env.step(actions())
    env_rates, raw_rates = [], []
    for _ in range(repeats):
        action_batch = [actions() for _ in range(steps)]
        start = time.perf_counter()
        for action in action_batch:
            env.step(action)
        env_rates.append(steps * num_envs / (time.perf_counter() - start))
        start = time.perf_counter()
        for _ in range(steps):
            env.batch.step(nstep=env.decimation)
        raw_rates.append(steps * num_envs * env.decimation / (time.perf_counter() - start))
    env_steps_per_s = statistics.median(env_rates)
    raw_physics_steps_per_s = statistics.median(raw_rates)
    return {
        "task": task,
        "num_envs": num_envs,
        "threads": env.batch.nthread,
        "decimation": env.decimation,
        "env_steps_per_s": round(env_steps_per_s, 1),
        "raw_physics_steps_per_s": round(raw_physics_steps_per_s, 1),
        "ratio": round(env_steps_per_s * env.decimation / raw_physics_steps_per_s, 4),
        "repeats": repeats,
        "steps_per_repeat": steps,
    }
