"""The learning curve PNG of a run: reward and tracking errors (or success rate) against wall-clock time."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_progress(run_dir: Path) -> list[dict[str, float]]:
    path = run_dir / "progress.csv"
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def plot_learning_curve(run_dir: Path, out: Path | None = None) -> Path | None:
    rows = read_progress(run_dir)
    if not rows:
        return None
    minutes = [r["wall_time_s"] / 60.0 for r in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(minutes, [r["mean_reward"] for r in rows], color="tab:blue")
    top.set_ylabel("mean episode reward")
    top.grid(alpha=0.3)
    success = [r.get("success_rate", math.nan) for r in rows]
    if any(math.isfinite(value) for value in success):
        bottom.plot(minutes, success, color="tab:green", label="success rate (episodes ending in the iteration)")
        bottom.set_ylim(0.0, 1.02)
        bottom.set_ylabel("success rate")
    else:
        bottom.plot(minutes, [r["lin_vel_error_m_s"] for r in rows], label="lin. velocity error (m/s)")
        bottom.plot(minutes, [r["yaw_rate_error_rad_s"] for r in rows], label="yaw rate error (rad/s)")
        bottom.set_ylabel("tracking error")
    bottom.set_xlabel("wall-clock time (min)")
    bottom.legend()
    bottom.grid(alpha=0.3)
    figure.suptitle(f"{run_dir.name}: learning curve")
    figure.tight_layout()
    out = out or run_dir / "learning_curve.png"
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
