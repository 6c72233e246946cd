"""`simreal bench env`: env throughput against a bare Batch.step loop measured in the same run."""

from __future__ import annotations

import statistics
import time

import torch
from tqdm import tqdm

from sim.envs import make_env
from sim.tasks import make_task_config

WARMUP_STEPS = 20


def bench_env(task: str, num_envs: int, steps: int, repeats: int, backend: str = "batch", device: str = "cpu") -> dict:
    """Median env steps/s (full task, all randomization on) and median raw physics steps/s.

    The raw loop runs `backend.step(decimation)` on the env's own backend (same
    model, per-simulation fields, threads or device, and decimation). The cost of
    a physics step depends on the state (contacts, solver iterations), so the raw
    loop replays the exact states and controls the env stepped from: before each
    raw step the recorded state is copied back (counted against the raw loop). Raw
    and env measurements alternate so that both see the same load. `startup_s` is
    the time from building the env to the end of its first step: for Warp, mostly
    compiling or loading its kernels.
    """
    cfg = make_task_config(task)
    cfg.num_envs = num_envs
    cfg.backend.name, cfg.backend.device = backend, device
    generator = torch.Generator().manual_seed(0)

    def actions() -> torch.Tensor:
        # exploration-sized actions, as during training
        return 0.5 * torch.randn(num_envs, env.num_actions, generator=generator)

    start = time.perf_counter()
    env = make_env(cfg, seed=0)
    env.step(actions())
    _synchronize(env.device)
    startup_s = time.perf_counter() - start
    for _ in range(WARMUP_STEPS):
        env.step(actions())
    env_rates, raw_rates = [], []
    sim = env.backend
    for _ in tqdm(range(repeats), desc="bench env", unit="repeat"):
        action_batch = [actions().to(env.device) for _ in range(steps)]
        recorded: list = []
        _synchronize(env.device)
        start = time.perf_counter()
        for action in action_batch:
            env.step(action, record_state_into=recorded)
        _synchronize(env.device)
        env_rates.append(steps * num_envs / (time.perf_counter() - start))
        after_env = sim.save_state()
        start = time.perf_counter()
        for state in recorded:
            sim.restore_state(state)
            sim.step(env.decimation)
        _synchronize(env.device)
        raw_rates.append(steps * num_envs * env.decimation / (time.perf_counter() - start))
        sim.restore_state(after_env)
    env_steps_per_s = statistics.median(env_rates)
    raw_physics_steps_per_s = statistics.median(raw_rates)
    description = sim.describe()
    return {
        "task": task,
        "backend": description["backend"],
        "device": description["device"],
        "num_envs": num_envs,
        "threads": description.get("threads"),
        "decimation": env.decimation,
        "startup_s": round(startup_s, 2),
        "env_steps_per_s": round(env_steps_per_s, 1),
        "raw_physics_steps_per_s": round(raw_physics_steps_per_s, 1),
        "ratio": round(env_steps_per_s * env.decimation / raw_physics_steps_per_s, 4),
        "repeats": repeats,
        "steps_per_repeat": steps,
    }


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
