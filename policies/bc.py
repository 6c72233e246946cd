"""Behaviour cloning: the task's actor network fitted to recorded demonstrations (`simreal train-bc`).

The dataset's `observation.state` is the task's policy observation (the teleop recorder writes it so).
What is cloned (`BCConfig.action`):
- "ee_delta" (default): the dataset's `action`, the teleoperator's end-effector delta and gripper command;
  the actor runs them through the teleop session's differential IK (policies/ee_delta_actor.py);
- "joint_step": `action.joint_target` as a step from the last action (policies/residual_actor.py);
- "joint_target": `action.joint_target` itself; the env's action is (target - default) / scale.
The result is an ordinary run directory (config.yaml, run.yaml, checkpoints/model_<epochs>.pt with
`actor_state_dict`, summary.yaml, progress.csv), so `simreal eval`, `play` and `export` read it like a
PPO run. Episodes, not frames, are split into training and validation: neighbouring frames are near
copies, and a frame split would measure memory, not generalization.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from policies.config import TrainConfig
from policies.ee_delta_actor import DELTA_DIM
from policies.inference import build_actor
from policies.rsl_rl_env import as_tensordict
from policies.run_dir import (
    RunConfig,
    RunDirError,
    list_checkpoints,
    save_checkpoint,
    write_run_files,
    write_text_atomic,
    write_yaml_atomic,
)
from policies.train import seed_everything
from sim.envs import make_env
from sim.tasks import make_task_config


class BCError(RunDirError):
    """A dataset that does not fit the task, or a bad setting; the message names it."""


@dataclass
class BCConfig:
    # 100 epochs and weight decay 1e-3: 50 demonstrations overfit (at 200 epochs and 1e-5 the arm-lift success
    # over 100 randomized episodes was 0.79-0.93 across three seeds; with these, 0.89-0.98 (0.83-0.96 once a
    # fresh episode started from the measured joints, as the demonstrations do, not jerked to the default pose)
    epochs: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-3
    validation_fraction: float = 0.1  # of the episodes (at least one when there are two or more)
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256, 128])
    seed: int = 1
    action: str = "ee_delta"  # what is cloned: "ee_delta", "joint_step" or "joint_target" (see the module doc)
    # training states get Gaussian noise of this fraction of each component's spread (fresh every batch):
    # the cloned policy then meets states a little off the demonstrated ones and still answers sensibly
    state_noise: float = 0.0


ACTOR_OUTPUT_OF = {"ee_delta": "ee_delta", "joint_step": "residual", "joint_target": "absolute"}


@dataclass
class Demonstrations:
    """Recorded frames, whatever file they came from (the CLI reads the dataset: policies import only sim)."""

    states: np.ndarray  # (frames, observation dim) float32: observation.state
    joint_targets: np.ndarray  # (frames, joints) float32: action.joint_target
    commands: np.ndarray  # (frames, 7) float32: action, the device's [dx, dy, dz, droll, dpitch, dyaw, gripper]
    episode_of_frame: np.ndarray  # (frames,) int
    state_names: list[str]  # one per observation.state component
    source: str  # where they came from, for messages and the summary

    @property
    def num_episodes(self) -> int:
        return len(np.unique(self.episode_of_frame))


def check_fits_task(demos: Demonstrations, state_names: list[str], num_joints: int, action: str) -> None:
    """BCError unless the states are this task's policy observation and the targets its joints."""
    if not len(demos.states):
        raise BCError(f"{demos.source} holds no complete episode")
    if demos.state_names != state_names:
        raise BCError(
            f"{demos.source}: observation.state has {len(demos.state_names)} components that are not this task's "
            f"policy observation ({len(state_names)}: {state_names[0]} .. {state_names[-1]}); record it with this task"
        )
    if action == "ee_delta" and demos.commands.shape[1] != DELTA_DIM + 1:
        raise BCError(
            f"{demos.source}: action has {demos.commands.shape[1]} components, not a 6-D delta and gripper; "
            "clone its joint targets with --action joint_target"
        )
    if demos.joint_targets.shape[1] != num_joints:
        raise BCError(
            f"{demos.source}: action.joint_target has {demos.joint_targets.shape[1]} joints, the task {num_joints}"
        )


def split_episodes(num_episodes: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The episode indices held out for validation."""
    count = round(fraction * num_episodes)
    if num_episodes >= 2 and fraction > 0:
        count = max(count, 1)
    return rng.permutation(num_episodes)[:count]


def train_bc(demos: Demonstrations, task: str, run_dir: Path, cfg: BCConfig) -> Path:
    """Fit the actor, write the run directory; the checkpoint's path."""
    if list_checkpoints(run_dir):
        raise BCError(f"{run_dir} already holds checkpoints: pick a new --run-dir")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise BCError("--epochs and --batch-size must be at least 1")
    if cfg.action not in ACTOR_OUTPUT_OF:
        raise BCError(f"--action {cfg.action!r} is not one of {sorted(ACTOR_OUTPUT_OF)}")
    seed_everything(cfg.seed)
    env_cfg = make_task_config(task)
    env_cfg.num_envs = 1
    env = make_env(env_cfg, seed=cfg.seed)
    check_fits_task(demos, env.observation_names(), env.num_actions, cfg.action)
    train_cfg = TrainConfig(seed=cfg.seed)
    train_cfg.ppo.actor_hidden_dims = list(cfg.hidden_dims)
    train_cfg.ppo.actor_output = ACTOR_OUTPUT_OF[cfg.action]
    env_cfg.num_envs = make_task_config(task).num_envs  # eval and play choose their own; keep the task's
    write_run_files(run_dir, RunConfig(env=env_cfg, train=train_cfg), env.randomizer.ranges())
    try:
        actor = build_actor(train_cfg, env.get_observations(), env.num_actions, env)
    except RunDirError as error:
        raise BCError(f"{task}: {error}") from None
    episodes = np.unique(demos.episode_of_frame)
    held_out = episodes[split_episodes(len(episodes), cfg.validation_fraction, np.random.default_rng(cfg.seed))]
    validation = np.isin(demos.episode_of_frame, held_out)
    states = torch.from_numpy(np.asarray(demos.states, dtype=np.float32))
    network, inputs, targets = _network_and_targets(actor, cfg.action, env, demos, states, ~validation)
    loss = actor.loss if cfg.action == "ee_delta" else mean_squared_error
    losses = _fit(network, loss, inputs, targets, validation, cfg, run_dir)
    actor.eval()
    path = run_dir / "checkpoints" / f"model_{cfg.epochs}.pt"
    save_checkpoint(path, {"actor_state_dict": actor.state_dict(), "iter": cfg.epochs})
    write_yaml_atomic(
        run_dir / "summary.yaml",
        {
            "kind": "behaviour cloning",
            "dataset": demos.source,
            "episodes": demos.num_episodes,
            "validation_episodes": sorted(int(e) for e in held_out),
            "frames": len(demos.states),
            "epochs": cfg.epochs,
            "cloned_action": cfg.action,
            **losses,
        },
    )
    return path


def _network_and_targets(
    actor, action: str, env, demos: Demonstrations, states: torch.Tensor, training: np.ndarray
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The network to fit, its inputs and its targets per frame; output statistics come from the training frames."""
    if action == "ee_delta":
        commands = torch.from_numpy(np.asarray(demos.commands, dtype=np.float32))
        actor.set_command_statistics(commands[torch.from_numpy(training)])
        return actor.network, actor.inputs(states)["policy"], actor.normalized_commands(commands)
    joint_actions = (demos.joint_targets - env.default_joint_pos.numpy()) / env.spec.action_scale
    actions = torch.from_numpy(np.asarray(joint_actions, dtype=np.float32))
    if action == "joint_target":
        return actor, states, actions
    mask = torch.from_numpy(training)
    _set_residual(actor, env.observation_layout(), states[mask], actions[mask])
    return actor.network, states, actor.step_of(as_tensordict({"policy": states}), actions)


def _set_residual(actor, layout: list[tuple[str, int, float, float]], states: torch.Tensor, actions: torch.Tensor):
    """Where last_action sits in the observation, and the demonstrations' step size per joint."""
    start = 0
    for term, dim, scale, _ in layout:
        if term == "last_action":
            if scale != 1.0:
                raise BCError(f"a residual actor reads last_action unscaled; the task scales it by {scale}")
            actor.last_action_index.copy_(torch.arange(start, start + dim))
            break
        start += dim
    else:
        raise BCError("a residual actor needs the task to observe last_action")
    steps = actions - states[:, actor.last_action_index]
    actor.step_scale.copy_(steps.std(dim=0).clamp(min=1e-3))


def mean_squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.mean((outputs - targets) ** 2)


def _fit(
    network,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    states: torch.Tensor,
    targets: torch.Tensor,
    validation: np.ndarray,
    cfg: BCConfig,
    run_dir: Path,
):
    """`loss_of` (network outputs, targets), Adam, minibatches; the observation normalizer's
    statistics come from the training frames and stay fixed."""
    train_ids = torch.from_numpy(np.flatnonzero(~validation))
    val_ids = torch.from_numpy(np.flatnonzero(validation))
    network.train()
    network.update_normalization(as_tensordict({"policy": states[train_ids]}))
    network.obs_normalizer.eval()
    spread = states[train_ids].std(dim=0)
    optimizer = torch.optim.Adam(network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    rows = ["epoch,wall_time_s,train_loss,validation_loss"]
    start = time.monotonic()
    train_loss = validation_loss = float("nan")
    progress = tqdm(range(1, cfg.epochs + 1), desc="train-bc", unit="epoch", mininterval=2.0)
    for epoch in progress:
        order = train_ids[torch.randperm(len(train_ids))]
        total = 0.0
        for batch in order.split(cfg.batch_size):
            noisy = states[batch] + cfg.state_noise * spread * torch.randn_like(states[batch])
            loss = loss_of(network(as_tensordict({"policy": noisy})), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        train_loss = total / len(train_ids)
        validation_loss = _loss(network, loss_of, states[val_ids], targets[val_ids])
        rows.append(f"{epoch},{time.monotonic() - start:.2f},{train_loss:.6f},{validation_loss:.6f}")
        progress.set_postfix_str(f"train {train_loss:.4f} | validation {validation_loss:.4f}", refresh=False)
    network.eval()
    write_text_atomic(run_dir / "progress.csv", "\n".join(rows) + "\n")
    return {"final_train_loss": train_loss, "final_validation_loss": validation_loss}


@torch.no_grad()
def _loss(network, loss_of, states: torch.Tensor, targets: torch.Tensor) -> float:
    if not len(states):
        return float("nan")
    return float(loss_of(network(as_tensordict({"policy": states})), targets))
