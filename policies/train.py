"""`simreal train`: PPO on a registered task, into a run directory."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from policies.config import TrainConfig, rsl_rl_config
from policies.learning_curve import plot_learning_curve, read_progress
from policies.rsl_rl_env import RslRlVecEnv
from policies.run_dir import (
    RunConfig,
    RunDirError,
    find_checkpoint,
    load_run_config,
    write_run_files,
    write_yaml_atomic,
)
from policies.runner import SimrealRunner
from sim.config_io import to_dict
from sim.tasks.config import EnvConfig
from sim.vec_env import LocomotionEnv


def seed_everything(seed: int) -> None:
    """Seed every generator before the env exists, so that the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(env_cfg: EnvConfig, train_cfg: TrainConfig, run_dir: Path, resume: bool = False) -> Path:
    """Train (or resume) a run; returns the path of the final checkpoint."""
    if resume:
        saved = load_run_config(run_dir)
        # a resumed run keeps its task and env; only the iteration budget may grow
        saved.train.max_iterations = train_cfg.max_iterations
        env_cfg, train_cfg = saved.env, saved.train
        checkpoint = find_checkpoint(run_dir)
    elif (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise RunDirError(f"{run_dir} already holds checkpoints: pass --resume to continue it, or pick a new --run-dir")
    config = RunConfig(env=env_cfg, train=train_cfg)
    seed_everything(train_cfg.seed)
    env = LocomotionEnv(env_cfg, seed=train_cfg.seed)
    randomization = env.randomizer.ranges()
    write_run_files(run_dir, config, randomization)
    metadata = {
        "task": env_cfg.task,
        "env_config": to_dict(env_cfg),
        "train_config": to_dict(train_cfg),
        "randomization": randomization,
    }
    runner = SimrealRunner(RslRlVecEnv(env), rsl_rl_config(train_cfg, run_dir.name), run_dir, metadata)
    if resume:
        runner.load(str(checkpoint))
        print(f"resuming {run_dir} from {checkpoint.name} at iteration {runner.current_learning_iteration}")
    start = time.monotonic()
    runner.learn_until(train_cfg.max_iterations)
    final = find_checkpoint(run_dir)
    curve = plot_learning_curve(run_dir)
    write_summary(run_dir, env, time.monotonic() - start)
    print(f"checkpoints: {run_dir / 'checkpoints'} (latest {final.name})")
    print(f"learning curve: {curve}")
    print(f"tensorboard: tensorboard --logdir {run_dir / 'tensorboard'}")
    return final


def write_summary(run_dir: Path, env: LocomotionEnv, session_wall_s: float) -> None:
    rows = read_progress(run_dir)
    last = rows[-1] if rows else {}
    write_yaml_atomic(
        run_dir / "summary.yaml",
        {
            "iterations": int(last.get("iteration", -1)) + 1,
            "wall_time_s": float(last.get("wall_time_s", 0.0)),
            "env_steps": int(last.get("env_steps", 0)),
            "final_mean_reward": float(last.get("mean_reward", float("nan"))),
            "final_mean_episode_length_s": float(last.get("mean_episode_length_s", float("nan"))),
            "final_lin_vel_error_m_s": float(last.get("lin_vel_error_m_s", float("nan"))),
            "final_yaw_rate_error_rad_s": float(last.get("yaw_rate_error_rad_s", float("nan"))),
            "nonfinite_resets_this_session": env.nonfinite_resets,
            "this_session_wall_s": round(session_wall_s, 1),
        },
    )
