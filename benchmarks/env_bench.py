"""`simreal bench env`: env throughput against a bare Batch.step loop measured in the same run."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from tqdm import tqdm

from sim.envs import make_env
from sim.tasks import make_task_config

WARMUP_STEPS = 20


def bench_env(task: str, num_envs: int, steps: int, repeats: int) -> dict:
    """Median env steps/s (full task, all randomization on) and median raw physics steps/s.

    The raw loop runs `Batch.step(nstep=decimation)` on the env's own batch (same
    model, per-simulation fields, threads and decimation). The cost of a physics
    step depends on the state (contacts, solver iterations), so the raw loop
    replays the exact states and controls the env stepped from: before each raw
    step the recorded state rows are copied back (a memcpy, counted against the
    raw loop). Raw and env measurements alternate so that both see the same load.
    """
    cfg = make_task_config(task)
    cfg.num_envs = num_envs
    env = make_env(cfg, seed=0)
    generator = torch.Generator().manual_seed(0)

    def actions() -> torch.Tensor:
        # exploration-sized actions, as during training
        return 0.5 * torch.randn(num_envs, env.num_actions, generator=generator)

    for _ in range(WARMUP_STEPS):
        env.step(actions())
    env_rates, raw_rates = [], []
    state = env.batch.state
    recorded = np.empty((steps, *state.shape), dtype=state.dtype)
    for _ in tqdm(range(repeats), desc="bench env", unit="repeat"):
        action_batch = [actions() for _ in range(steps)]
        start = time.perf_counter()
        for i, action in enumerate(action_batch):
            env.step(action, record_state_into=recorded[i])
        env_rates.append(steps * num_envs / (time.perf_counter() - start))
        after_env = state.copy()
        start = time.perf_counter()
        for i in range(steps):
            state[:] = recorded[i]
            env.batch.step(nstep=env.decimation)
        raw_rates.append(steps * num_envs * env.decimation / (time.perf_counter() - start))
        state[:] = after_env
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
