"""`simreal eval`: a trained policy's task metrics over complete episodes, randomized or nominal dynamics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from policies.inference import open_run
from policies.train import seed_everything
from sim.config_io import ConfigError
from sim.tasks.config import BackendConfig


def evaluate_run(
    run_dir: Path, iteration: int | None, episodes: int, dynamics: str, seed: int, backend: BackendConfig | None = None
) -> dict:
    """One episode per environment, every environment started together; the task's metrics over them.

    dynamics 'nominal' turns every randomization term (including pushes and sensor
    noise) off; 'randomized' keeps the ranges the policy was trained with.
    Locomotion reports fall_rate and tracking errors, manipulation success_rate
    and final end-effector errors (the env's summarize_episodes).
    """
    if episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    seed_everything(seed)
    env, policy = open_run(run_dir, iteration, episodes, dynamics, seed, backend)
    done = np.zeros(episodes, dtype=bool)
    results: dict[str, np.ndarray] = {}
    observations = env.get_observations()
    for _ in tqdm(range(env.max_episode_length + 1), desc=f"eval ({dynamics})", unit="step", mininterval=2.0):
        observations, _, dones, _ = env.step(policy(observations))
        policy.reset(dones)  # a recurrent actor starts each new episode from a zero hidden state
        finished = env.finished_episodes
        first = ~done[finished["ids"]]
        ids = finished["ids"][first]
        for key, values in finished.items():
            if key != "ids":
                results.setdefault(key, np.zeros(episodes, dtype=np.asarray(values).dtype))[ids] = values[first]
        done[ids] = True
        if done.all():
            break
    return {**env.summarize_episodes(results), "num_episodes": int(done.sum()), "dynamics": dynamics}
