"""Training progress: a tqdm bar with ETA and per-iteration stats, TensorBoard, progress.csv."""

from __future__ import annotations

import csv
import statistics
import time
from pathlib import Path

import torch
from rsl_rl.utils.logger import Logger
from tqdm import tqdm

CSV_FIELDS = (
    "iteration",
    "wall_time_s",
    "env_steps",
    "mean_reward",
    "mean_episode_length_s",
    "lin_vel_error_m_s",
    "yaw_rate_error_rad_s",
    "steps_per_s",
    "nonfinite_resets",
    "success_rate",
)


class WallTimeBudgetError(Exception):
    """Raised after logging the iteration that used up train.max_wall_time_s."""


class ProgressLogger(Logger):
    """Replaces rsl_rl's console block with one progress bar and a CSV the curve is drawn from."""

    def __init__(
        self,
        *args,
        run_dir: Path,
        step_dt: float,
        wall_time_offset_s: float,
        env_steps_offset: int,
        nonfinite_counter,
        max_wall_time_s: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.git_status_repos = []  # run.yaml records our commit; rsl_rl's own diff is noise
        self.run_dir = run_dir
        self.step_dt = step_dt
        self.wall_start = time.monotonic() - wall_time_offset_s
        self.env_steps = env_steps_offset
        self.nonfinite_counter = nonfinite_counter
        self.max_wall_time_s = max_wall_time_s
        self.bar: tqdm | None = None
        self.csv_path = run_dir / "progress.csv"

    def wall_time_s(self) -> float:
        return time.monotonic() - self.wall_start

    def open_bar(self, start_it: int, total_it: int) -> None:
        self.bar = tqdm(total=total_it, initial=start_it, desc="train", unit="it", dynamic_ncols=True, mininterval=5.0)

    def log(
        self,
        it: int,
        start_it: int,
        total_it: int,
        collect_time: float,
        learn_time: float,
        loss_dict: dict,
        learning_rate: float,
        action_std: torch.Tensor,
        rnd_weight,
        **_,
    ) -> None:
        if self.writer is None:
            return
        collection_size = self.cfg["num_steps_per_env"] * self.num_envs
        self.env_steps += collection_size
        steps_per_s = collection_size / max(collect_time + learn_time, 1e-9)
        extras = self._episode_means()
        self.ep_extras.clear()
        reward = statistics.mean(self.rewbuffer) if self.rewbuffer else float("nan")
        length_s = statistics.mean(self.lenbuffer) * self.step_dt if self.lenbuffer else float("nan")
        row = {
            "iteration": it,
            "wall_time_s": round(self.wall_time_s(), 2),
            "env_steps": self.env_steps,
            "mean_reward": round(reward, 4),
            "mean_episode_length_s": round(length_s, 3),
            "lin_vel_error_m_s": round(extras.get("Metrics/lin_vel_error", float("nan")), 4),
            "yaw_rate_error_rad_s": round(extras.get("Metrics/yaw_rate_error", float("nan")), 4),
            "steps_per_s": round(steps_per_s),
            "nonfinite_resets": self.nonfinite_counter(),
            "success_rate": round(extras.get("Metrics/success", float("nan")), 4),
        }
        self._append_csv(row)
        for key, value in extras.items():
            self.writer.add_scalar(key, value, it)
        for key, value in loss_dict.items():
            self.writer.add_scalar(f"Loss/{key}", value, it)
        self.writer.add_scalar("Loss/learning_rate", learning_rate, it)
        self.writer.add_scalar("Policy/mean_std", action_std.mean().item(), it)
        self.writer.add_scalar("Perf/steps_per_s", steps_per_s, it)
        self.writer.add_scalar("Train/mean_reward", reward, it)
        self.writer.add_scalar("Train/mean_episode_length_s", length_s, it)
        self.writer.add_scalar("Train/nonfinite_resets", row["nonfinite_resets"], it)
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"reward {reward:.2f} | ep {length_s:.1f}s | {self._task_metrics(row)}", refresh=False
            )
            self.bar.update(1)
        if self.max_wall_time_s > 0 and row["wall_time_s"] >= self.max_wall_time_s:
            raise WallTimeBudgetError

    @staticmethod
    def _task_metrics(row: dict) -> str:
        if row["success_rate"] == row["success_rate"]:  # not NaN: a task with a success criterion
            return f"success {row['success_rate']:.2f} | {row['steps_per_s']:.0f} steps/s"
        return (
            f"v_err {row['lin_vel_error_m_s']:.3f} m/s | yaw_err {row['yaw_rate_error_rad_s']:.3f} rad/s"
            f" | {row['steps_per_s']:.0f} steps/s"
        )

    def _episode_means(self) -> dict[str, float]:
        sums: dict[str, list[float]] = {}
        for info in self.ep_extras:
            for key, value in info.items():
                sums.setdefault(key, []).append(float(value))
        means = {}
        for key, values in sums.items():
            if key.startswith("Episode_Termination/"):
                means[key] = sum(values)
            else:
                means[key] = sum(values) / len(values)
        return means

    def _append_csv(self, row: dict) -> None:
        new = not self.csv_path.is_file()
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow(row)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
