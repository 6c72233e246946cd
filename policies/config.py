"""Training configuration: PPO hyper-parameters and run settings, as one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.config_io import ConfigError

RNN_TYPES = ("none", "gru")


@dataclass
class PPOConfig:
    num_steps_per_env: int = 24
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    clip_param: float = 0.2
    gamma: float = 0.99
    lam: float = 0.95
    value_loss_coef: float = 1.0
    entropy_coef: float = 0.005
    learning_rate: float = 1e-3
    max_grad_norm: float = 1.0
    schedule: str = "adaptive"
    desired_kl: float = 0.01
    actor_hidden_dims: list[int] = field(default_factory=lambda: [256, 128, 128])
    critic_hidden_dims: list[int] = field(default_factory=lambda: [256, 128, 128])
    activation: str = "elu"
    init_noise_std: float = 1.0
    # "gru": a GRU (one step per control tick) in front of the actor MLP; the critic stays an MLP
    actor_rnn_type: str = "none"
    actor_rnn_hidden_dim: int = 128
    actor_rnn_num_layers: int = 1
    # behaviour cloning: "residual" outputs last_action + a scaled step (policies/residual_actor.py), "ee_delta"
    # an end-effector delta and gripper command that IK turns into joint targets (policies/ee_delta_actor.py)
    actor_output: str = "absolute"


@dataclass
class TrainConfig:
    max_iterations: int = 700
    # stop after the iteration that crosses this much training wall time (0: no limit); the checkpoint is kept
    max_wall_time_s: float = 0.0
    save_interval: int = 50
    seed: int = 1
    ppo: PPOConfig = field(default_factory=PPOConfig)


ACTOR_OUTPUTS = ("absolute", "residual", "ee_delta")


def check_actor_rnn(ppo: PPOConfig) -> None:
    """Raise ConfigError naming the field when the actor's recurrent settings are unusable."""
    if ppo.actor_output not in ACTOR_OUTPUTS:
        raise ConfigError(f"train.ppo.actor_output {ppo.actor_output!r} is not one of {ACTOR_OUTPUTS}")
    if ppo.actor_rnn_type not in RNN_TYPES:
        raise ConfigError(f"train.ppo.actor_rnn_type {ppo.actor_rnn_type!r} is not one of {RNN_TYPES}")
    if ppo.actor_rnn_type == "none":
        return
    for name in ("actor_rnn_hidden_dim", "actor_rnn_num_layers"):
        value = getattr(ppo, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"train.ppo.{name} must be a positive integer, got {value!r}")
    if not ppo.actor_hidden_dims:
        # rsl_rl's MLP head needs at least one hidden layer
        raise ConfigError("train.ppo.actor_hidden_dims must not be empty for a recurrent actor")


def rsl_rl_config(cfg: TrainConfig, run_name: str) -> dict:
    """The train_cfg dict rsl_rl 5.5's OnPolicyRunner expects."""
    ppo = cfg.ppo
    check_actor_rnn(ppo)

    def model(hidden_dims: list[int], with_distribution: bool) -> dict:
        spec = {
            "class_name": "MLPModel",
            "hidden_dims": list(hidden_dims),
            "activation": ppo.activation,
            "obs_normalization": True,
        }
        if with_distribution:
            spec["distribution_cfg"] = {
                "class_name": "GaussianDistribution",
                "init_std": ppo.init_noise_std,
                "std_type": "scalar",
            }
        return spec

    return {
        "num_steps_per_env": ppo.num_steps_per_env,
        "save_interval": cfg.save_interval,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "run_name": run_name,
        "logger": "tensorboard",
        "check_for_nan": False,  # the env resets diverged simulations itself and counts them
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": ppo.num_learning_epochs,
            "num_mini_batches": ppo.num_mini_batches,
            "clip_param": ppo.clip_param,
            "gamma": ppo.gamma,
            "lam": ppo.lam,
            "value_loss_coef": ppo.value_loss_coef,
            "entropy_coef": ppo.entropy_coef,
            "learning_rate": ppo.learning_rate,
            "max_grad_norm": ppo.max_grad_norm,
            "schedule": ppo.schedule,
            "desired_kl": ppo.desired_kl,
        },
        "actor": _actor_spec(ppo, model(ppo.actor_hidden_dims, with_distribution=True)),
        "critic": model(ppo.critic_hidden_dims, with_distribution=False),
    }


def _actor_spec(ppo: PPOConfig, mlp_spec: dict) -> dict:
    """The MLP actor as is, or rsl_rl's RNNModel: the same normalizer, head and distribution behind a GRU."""
    if ppo.actor_rnn_type == "none":
        return mlp_spec
    return {
        **mlp_spec,
        "class_name": "RNNModel",
        "rnn_type": ppo.actor_rnn_type,
        "rnn_hidden_dim": ppo.actor_rnn_hidden_dim,
        "rnn_num_layers": ppo.actor_rnn_num_layers,
    }
