"""`simreal train`: PPO on a registered task, into a run directory."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from policies.config import TrainConfig, check_actor_rnn, rsl_rl_config
from policies.learning_curve import plot_learning_curve, read_progress
from policies.progress import CSV_FIELDS
from policies.rsl_rl_env import RslRlVecEnv
from policies.run_dir import (
    RunConfig,
    RunDirError,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_run_config,
    record_resume,
    truncate_progress,
    write_run_files,
    write_yaml_atomic,
)
from policies.runner import SimrealRunner
from sim.batched_env import BatchedRobotEnv
from sim.config_io import to_dict
from sim.envs import make_env
from sim.tasks.config import BackendConfig, EnvConfig


def seed_everything(seed: int) -> None:
    """Seed every generator before the env exists, so that the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(env_cfg: EnvConfig, train_cfg: TrainConfig, run_dir: Path) -> Path:
    """Train a new run; returns the path of the final checkpoint."""
    if list_checkpoints(run_dir):
        raise RunDirError(f"{run_dir} already holds checkpoints: pass --resume to continue it, or pick a new --run-dir")
    check_actor_rnn(train_cfg.ppo)  # before anything is written, so a bad setting leaves no half-made run
    seed_everything(train_cfg.seed)
    env = make_env(env_cfg, seed=train_cfg.seed)
    write_run_files(run_dir, RunConfig(env=env_cfg, train=train_cfg), env.randomizer.ranges())
    return _learn(env, env_cfg, train_cfg, run_dir, checkpoint=None)


def resume_training(
    run_dir: Path,
    max_iterations: int | None,
    max_wall_time_s: float | None = None,
    backend: BackendConfig | None = None,
) -> Path:
    """Continue a run from its latest checkpoint with its saved config; only the budget may grow, and
    the backend may change (`backend`: e.g. move a run to a GPU; the task and physics stay the same).

    The wall-time budget counts the whole run (earlier sessions included), as the iterations do.
    """
    saved = load_run_config(run_dir)
    if backend is not None:
        saved.env.backend = backend
    checkpoint = find_checkpoint(run_dir)
    if max_iterations is not None:
        saved.train.max_iterations = max_iterations
    content = load_checkpoint(checkpoint)
    iteration = int(content["iter"])
    if max_wall_time_s is not None:
        saved.train.max_wall_time_s = max_wall_time_s
    spent_s = float(content.get("wall_time_s", 0.0))
    if 0 < saved.train.max_wall_time_s <= spent_s:
        raise RunDirError(
            f"{run_dir} used its wall-time budget ({spent_s:.0f} s of {saved.train.max_wall_time_s:.0f} s): "
            "pass a larger --max-minutes to train further"
        )
    if saved.train.max_iterations <= iteration + 1:
        raise RunDirError(
            f"{run_dir} is complete at iteration {iteration} of {saved.train.max_iterations}: "
            "pass a larger --max-iterations to train further"
        )
    # rows logged after the checkpoint belong to iterations that will run again
    truncate_progress(run_dir, last_iteration=iteration, columns=CSV_FIELDS)
    seed_everything(saved.train.seed + iteration + 1)
    env = make_env(saved.env, seed=saved.train.seed + iteration + 1)
    record_resume(run_dir, iteration, saved.train.max_iterations, saved.train.max_wall_time_s)
    return _learn(env, saved.env, saved.train, run_dir, checkpoint=checkpoint)


def _learn(env: BatchedRobotEnv, env_cfg: EnvConfig, train_cfg: TrainConfig, run_dir: Path, checkpoint: Path | None):
    metadata = {
        "task": env_cfg.task,
        "env_config": to_dict(env_cfg),
        "train_config": to_dict(train_cfg),
        "randomization": env.randomizer.ranges(),
    }
    print(f"simulation: {describe_simulation(env)}", flush=True)
    runner = SimrealRunner(
        RslRlVecEnv(env), rsl_rl_config(train_cfg, run_dir.name), run_dir, metadata, train_cfg.max_wall_time_s
    )
    if checkpoint is not None:
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


def _task_metrics(last: dict) -> dict:
    """The last logged values of the task's own metrics (success rate, or velocity tracking errors)."""
    names = {"success_rate": "final_success_rate", "lin_vel_error_m_s": "final_lin_vel_error_m_s"}
    names["yaw_rate_error_rad_s"] = "final_yaw_rate_error_rad_s"
    return {summary: float(last[key]) for key, summary in names.items() if key in last and last[key] == last[key]}


def write_summary(run_dir: Path, env: BatchedRobotEnv, session_wall_s: float) -> None:
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
            **_task_metrics(last),
            "nonfinite_resets_this_session": env.nonfinite_resets,
            "this_session_wall_s": round(session_wall_s, 1),
        },
    )


def describe_simulation(env: BatchedRobotEnv) -> str:
    """One line on what steps the simulations, e.g. `warp on cpu (Warp 1.19.0), 64 envs, startup 25.8 s`."""
    info = env.backend.describe()
    parts = [f"{info['backend']} on {info['device']}"]
    if "warp" in info:
        parts[0] += f" (Warp {info['warp']}{', CUDA graphs' if info['cuda_graph'] else ''})"
    elif info.get("threads"):
        parts[0] += f" ({info['threads']} threads)"
    parts.append(f"{env.num_envs} envs")
    if "startup_s" in info:
        parts.append(f"kernels compiled or loaded in {info['startup_s']:.1f} s (cache: {info['kernel_cache']})")
    return ", ".join(parts)
