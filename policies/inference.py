"""Load a trained actor from a run directory for inference (eval, play, export)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rsl_rl.models import MLPModel, RNNModel

from policies.config import TrainConfig, rsl_rl_config
from policies.ee_delta_actor import DELTA_DIM, EndEffectorDeltaActor, ObservationColumns, network_inputs
from policies.residual_actor import ResidualActor
from policies.rsl_rl_env import as_tensordict
from policies.run_dir import RunConfig, RunDirError, find_checkpoint, load_checkpoint, load_run_config
from sim.arm_ik import ArmDifferentialIK
from sim.batched_env import BatchedRobotEnv
from sim.envs import make_env
from sim.tasks.config import BackendConfig


@dataclass
class LoadedPolicy:
    config: RunConfig
    checkpoint: Path
    iteration: int
    actor: MLPModel  # an RNNModel (a subclass) for a recurrent actor

    @property
    def is_recurrent(self) -> bool:
        return bool(self.actor.is_recurrent)

    @torch.no_grad()
    def __call__(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic actions (the distribution mean); a recurrent actor advances its hidden state."""
        return self.actor(as_tensordict(observations))

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Zero the hidden state of the environments whose episode ended (all when `dones` is None).

        Call it after every env.step with the step's dones, as rsl_rl does in training:
        the observations returned for a done env already belong to its next episode.
        """
        if dones is None:
            self.actor.reset()
        else:
            self.actor.reset(torch.as_tensor(dones).flatten().bool())


def open_run(
    run_dir: Path,
    iteration: int | None,
    num_envs: int,
    dynamics: str,
    seed: int,
    backend: BackendConfig | None = None,
) -> tuple[BatchedRobotEnv, LoadedPolicy]:
    """The run's task as an env of `num_envs` ('nominal': every randomization term off) and its policy.

    The env runs on `backend` (default: mujoco.batch on the CPU), whatever backend trained the run.
    """
    config = load_run_config(run_dir)
    config.env.num_envs = num_envs
    config.env.backend = backend or BackendConfig()
    if dynamics == "nominal":
        config.env.randomization = config.env.randomization.disabled()
    env = make_env(config.env, seed=seed)
    return env, _load_actor(config, run_dir, iteration, env.get_observations(), env.num_actions, env)


def load_policy(
    run_dir: Path, iteration: int | None, observations: dict[str, torch.Tensor], num_actions: int
) -> LoadedPolicy:
    """Build the actor of a run for observations shaped like `observations` and load its weights."""
    return _load_actor(load_run_config(run_dir), run_dir, iteration, observations, num_actions)


def build_actor(
    train: TrainConfig,
    observations: dict[str, torch.Tensor],
    num_actions: int,
    env: BatchedRobotEnv | None = None,
) -> MLPModel:
    """The actor network a run's train config describes (PPO and behaviour cloning build the same one).

    An end-effector delta actor acts only when given the arm's `env` (its IK needs the kinematics).
    """
    actor_cfg = dict(rsl_rl_config(train, "actor")["actor"])
    model_class = {"MLPModel": MLPModel, "RNNModel": RNNModel}[actor_cfg.pop("class_name")]
    output = train.ppo.actor_output
    if output == "ee_delta":
        return _end_effector_delta_actor(model_class, actor_cfg, observations, env)
    network = model_class(as_tensordict(observations), {"actor": ["policy"]}, "actor", num_actions, **actor_cfg)
    if output == "residual":
        return ResidualActor(network, num_actions)
    return network


def _end_effector_delta_actor(model_class, actor_cfg: dict, observations: dict[str, torch.Tensor], env):
    if env is None or getattr(env.spec, "ee_site", None) is None:
        robot = "no robot" if env is None else f"the robot {env.spec.name!r}"
        raise RunDirError(f"an end-effector delta actor drives an arm's ee_site through IK; {robot} has none")
    try:
        columns = ObservationColumns.of(env.observation_layout())
    except ValueError as error:
        raise RunDirError(str(error)) from None
    inputs = {"policy": network_inputs(observations["policy"], columns)}
    network = model_class(as_tensordict(inputs), {"actor": ["policy"]}, "actor", DELTA_DIM + 1, **actor_cfg)
    ik = ArmDifferentialIK(
        env.model, env.spec, env.base_pos_w.cpu().numpy(), env.base_quat_w.cpu().numpy(), env.step_dt
    )
    return EndEffectorDeltaActor(network, columns, env.default_joint_pos, env.spec.action_scale, ik)


def _load_actor(
    config: RunConfig,
    run_dir: Path,
    iteration: int | None,
    observations: dict[str, torch.Tensor],
    num_actions: int,
    env: BatchedRobotEnv | None = None,
) -> LoadedPolicy:
    path = find_checkpoint(run_dir, iteration)
    content = load_checkpoint(path)
    actor = build_actor(config.train, observations, num_actions, env)
    try:
        actor.load_state_dict(content["actor_state_dict"])
    except (KeyError, RuntimeError) as error:
        raise RunDirError(f"{path}: the actor weights do not fit the run's config: {error}") from None
    actor.eval()
    if env is not None:
        actor.to(env.device)
    return LoadedPolicy(config=config, checkpoint=path, iteration=int(content.get("iter", -1)), actor=actor)
