"""rsl_rl's OnPolicyRunner with simreal checkpoints (no pickles) and progress reporting."""

from __future__ import annotations

from pathlib import Path

from rsl_rl.runners import OnPolicyRunner

from policies.progress import ProgressLogger, WallTimeBudgetError
from policies.rsl_rl_env import RslRlVecEnv
from policies.run_dir import checkpoint_path, load_checkpoint, save_checkpoint


class SimrealRunner(OnPolicyRunner):
    """PPO runner whose checkpoints carry the task, configs and randomization ranges."""

    def __init__(
        self, env: RslRlVecEnv, train_cfg: dict, run_dir: Path, metadata: dict, max_wall_time_s: float = 0.0
    ) -> None:
        super().__init__(env, train_cfg, log_dir=str(run_dir / "tensorboard"), device=str(env.device))
        self.run_dir = run_dir
        self.metadata = metadata
        self.logger = ProgressLogger(
            log_dir=str(run_dir / "tensorboard"),
            cfg=self.cfg,
            env_cfg=env.cfg,
            num_envs=env.num_envs,
            is_distributed=False,
            gpu_world_size=1,
            gpu_global_rank=0,
            device=str(env.device),
            run_dir=run_dir,
            step_dt=env.env.step_dt,
            wall_time_offset_s=0.0,
            env_steps_offset=0,
            nonfinite_counter=lambda: env.env.nonfinite_resets,
            max_wall_time_s=max_wall_time_s,
        )

    def learn_until(self, max_iterations: int) -> None:
        """Run iterations current..max_iterations-1 (so a resumed run ends where the config says)."""
        remaining = max_iterations - self.current_learning_iteration
        if remaining <= 0:
            return
        self.logger.open_bar(self.current_learning_iteration, max_iterations)
        try:
            self.learn(remaining, init_at_random_ep_len=self.current_learning_iteration == 0)
        except WallTimeBudgetError:
            # the iteration that crossed the budget is complete: keep it
            self.save(str(checkpoint_path(self.run_dir, self.current_learning_iteration)))
            self.logger.stop_logging_writer()
            print(f"stopped at iteration {self.current_learning_iteration}: train.max_wall_time_s reached")
        finally:
            self.logger.close()

    def save(self, path: str, infos: dict | None = None) -> None:
        content = self.alg.save()
        content.update(self.metadata)
        content["iter"] = self.current_learning_iteration
        content["wall_time_s"] = self.logger.wall_time_s()
        content["env_steps"] = self.logger.env_steps
        save_checkpoint(checkpoint_path(self.run_dir, self.current_learning_iteration), content)

    def load(self, path: str, load_cfg: dict | None = None, strict: bool = True, map_location=None) -> dict:
        content = load_checkpoint(Path(path))
        self.alg.load(content, load_cfg, strict)
        # the checkpoint's iteration is complete: continue with the next one
        self.current_learning_iteration = int(content["iter"]) + 1
        self.logger.wall_start -= float(content.get("wall_time_s", 0.0))
        self.logger.env_steps = int(content.get("env_steps", 0))
        return content
