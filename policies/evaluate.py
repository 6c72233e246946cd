"""`simreal eval`: run a trained policy for whole episodes and report locomotion metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from policies.inference import open_run
from policies.train import seed_everything
from sim.config_io import ConfigError


def evaluate_run(run_dir: Path, iteration: int | None, episodes: int, dynamics: str, seed: int) -> dict:
    """One episode per environment, every environment started together; metrics over all steps.

    dynamics 'nominal' turns every randomization term (including pushes and sensor
    noise) off; 'randomized' keeps the ranges the policy was trained with.
    """
    if episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    seed_everything(seed)
    env, policy = open_run(run_dir, iteration, episodes, dynamics, seed)
    done = np.zeros(episodes, dtype=bool)
    fell = np.zeros(episodes, dtype=bool)
    length_s = np.zeros(episodes)
    lin_error_sum = np.zeros(episodes)
    yaw_error_sum = np.zeros(episodes)
    steps = np.zeros(episodes)
    observations = env.get_observations()
    for _ in tqdm(range(env.max_episode_length + 1), desc=f"eval ({dynamics})", unit="step", mininterval=2.0):
        observations, _, dones, _ = env.step(policy(observations))
        policy.reset(dones)  # a recurrent actor starts each new episode from a zero hidden state
        finished = env.finished_episodes
        first = ~done[finished["ids"]]
        ids = finished["ids"][first]
        fell[ids] = finished["fell"][first]
        length_s[ids] = finished["length_s"][first]
        lin_error_sum[ids] = finished["lin_vel_error_sum"][first]
        yaw_error_sum[ids] = finished["yaw_rate_error_sum"][first]
        steps[ids] = finished["steps"][first]
        done[ids] = True
        if done.all():
            break
    total_steps = max(float(steps.sum()), 1.0)
    return {
        "fall_rate": float(fell.mean()),
        "lin_vel_error_m_s": float(lin_error_sum.sum() / total_steps),
        "yaw_rate_error_rad_s": float(yaw_error_sum.sum() / total_steps),
        "episode_length_s": float(length_s.mean()),
        "num_episodes": int(done.sum()),
        "dynamics": dynamics,
    }
