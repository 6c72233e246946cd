"""Training configuration: PPO hyper-parameters and run settings, as one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class TrainConfig:
    max_iterations: int = 700
    save_interval: int = 50
    seed: int = 1
    ppo: PPOConfig = field(default_factory=PPOConfig)


def rsl_rl_config(cfg: TrainConfig, run_name: str) -> dict:
    """The train_cfg dict rsl_rl 5.5's OnPolicyRunner expects."""
    ppo = cfg.ppo

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
        "actor": model(ppo.actor_hidden_dims, with_distribution=True),
        "critic": model(ppo.critic_hidden_dims, with_distribution=False),
    }
