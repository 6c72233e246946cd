"""Replay a recorded arm episode in simulation (`simreal dataset replay DIR`).

The episode's recorded joint targets (`action.joint_target`) drive the task's simulation open loop, from
the episode's first recorded state: the joints as the encoders read them, and the cube where
`object_pose` saw it. Frames are recorded at the dataset's fps (30) and the arm is controlled at 50 Hz,
so the control steps between two frames get the targets interpolated linearly in time.

The replay runs the task's nominal dynamics: a dataset stores neither the randomized masses, frictions
and cube size of a simulated recording nor the real robot's. How far the replayed end effector strays
from the recorded one, and whether the replay still lifts the cube, says how much a demonstration relied
on them (a recording made with `--nominal` replays to within a millimetre or two).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import torch

from robot_io.datasets import DatasetError, load_dataset
from sim.envs import make_env
from sim.manipulation_env import ManipulationEnv
from sim.tasks import make_task_config


@dataclass
class EpisodeReplay:
    episode: int
    frames: int
    recorded_success: bool
    replayed_success: bool
    ee_error_rms_m: float  # replayed vs recorded end-effector position, over the recorded frames
    ee_error_max_m: float
    recorded_object_lift_m: float  # the cube's highest point above its start
    replayed_object_lift_m: float


def replay_dataset(root: Path, task: str, episodes: list[int] | None = None, viewer: bool = False) -> dict:
    """Replay the episodes (all by default); per-episode results and their summary."""
    dataset = load_dataset(root)
    chosen = list(range(dataset.num_episodes)) if episodes is None else episodes
    for episode in chosen:
        if not 0 <= episode < dataset.num_episodes:
            raise DatasetError(f"{root} has episodes 0..{dataset.num_episodes - 1}, not {episode}")
    env = _make_env(task)
    _check_state_names(dataset.features(), env, root, task)
    show = _Viewer(env) if viewer else None
    try:
        results = [_replay_episode(env, dataset, episode, show) for episode in chosen]
    finally:
        if show is not None:
            show.close()
        env.close()
    return {
        "dataset": str(root),
        "episodes": len(results),
        "recorded_success_rate": _mean([r.recorded_success for r in results]),
        "replayed_success_rate": _mean([r.replayed_success for r in results]),
        "ee_error_rms_m": _mean([r.ee_error_rms_m for r in results]),
        "per_episode": [vars(r) for r in results],
    }


def _make_env(task: str) -> ManipulationEnv:
    cfg = make_task_config(task)
    if cfg.robot != "arm":
        raise DatasetError(f"replay drives the arm tasks; {task!r} is a {cfg.robot} task")
    cfg.num_envs = 1
    cfg.num_threads = 1
    cfg.randomization = cfg.randomization.disabled()
    return make_env(cfg, seed=0)


def _check_state_names(features: dict, env: ManipulationEnv, root: Path, task: str) -> None:
    """DatasetError unless observation.state is this task's policy observation and joint targets are recorded."""
    for key in ("observation.state", "action.joint_target"):
        if key not in features:
            raise DatasetError(f"{root} has no {key!r} feature: replay needs the recorded state and joint targets")
    ours = env.observation_names()
    theirs = list(features["observation.state"].names or [])
    if theirs != ours:
        raise DatasetError(f"{root}: observation.state is not the {task} task's policy observation; pass its --task")
    for term in ("joint_pos_rel", "ee_pose"):
        if term not in env.observation_slices():
            raise DatasetError(f"replay needs the task to observe {term}; {task} does not")


def _replay_episode(env: ManipulationEnv, dataset, episode: int, show: _Viewer | None) -> EpisodeReplay:
    frames = dataset.frames(episode)
    states = np.asarray(frames["observation.state"], dtype=np.float64)
    targets = np.asarray(frames["action.joint_target"], dtype=np.float64)
    slices = env.observation_slices()
    default = env.default_joint_pos.double().numpy()
    object_pose = states[0, slices["object_pose"]] if "object_pose" in slices else None
    env.start_from(states[0, slices["joint_pos_rel"]] + default, object_pose)
    step_dt = env.step_dt
    # frame k was recorded at the first control step whose time reaches k / fps: replay on those step times
    frame_times_s = np.ceil(np.arange(len(states)) / dataset.fps / step_dt - 1e-9) * step_dt
    steps = min(math.ceil(frame_times_s[-1] / step_dt - 1e-9) + 1, env.max_episode_length)
    recorded_ee = states[:, slices["ee_pose"]][:, :3]
    replayed_ee = np.full_like(recorded_ee, np.nan)
    step_times_s = np.arange(steps) * step_dt
    step_targets = np.column_stack([np.interp(step_times_s, frame_times_s, column) for column in targets.T])
    actions = (torch.from_numpy(step_targets).float() - env.default_joint_pos) / env.spec.action_scale
    lift_m, success = 0.0, False
    for step in range(steps):
        time_s = step_times_s[step]
        frame = int(np.searchsorted(frame_times_s, time_s + 1e-9, side="right")) - 1
        if abs(frame_times_s[frame] - time_s) < 1e-9:  # the step this frame was recorded at
            replayed_ee[frame] = env.state.ee_pos_b[0].numpy()
        env.step(actions[step : step + 1])
        if env.state.object_lift_m is not None:
            lift_m = max(lift_m, float(env.state.object_lift_m[0]))
        success |= bool(env.success[0])
        finished = env.finished_episodes  # a host copy per read
        if len(finished["ids"]):
            success |= bool(finished["success"][0])
            break
        if show is not None:
            show.sync(step_dt)
    errors = np.linalg.norm(replayed_ee - recorded_ee, axis=1)
    errors = errors[np.isfinite(errors)]
    return EpisodeReplay(
        episode=episode,
        frames=len(states),
        recorded_success=bool(np.any(frames["next.success"])) if "next.success" in frames else False,
        replayed_success=success,
        ee_error_rms_m=float(np.sqrt(np.mean(errors**2))),
        ee_error_max_m=float(errors.max()),
        recorded_object_lift_m=_recorded_lift(states, slices),
        replayed_object_lift_m=lift_m,
    )


def _recorded_lift(states: np.ndarray, slices: dict[str, slice]) -> float:
    if "object_pose" not in slices:
        return 0.0
    heights = states[:, slices["object_pose"]][:, 2]
    return float(heights.max() - heights[0])


def _mean(values: list) -> float:
    return float(np.mean(values)) if values else float("nan")


class _Viewer:
    """A passive MuJoCo viewer on the replaying simulation, paced to the wall clock."""

    def __init__(self, env: ManipulationEnv) -> None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            raise DatasetError("--viewer needs a display (DISPLAY or WAYLAND_DISPLAY)")
        import mujoco.viewer  # loads GLFW: only with a display

        self.env, self.data = env, mujoco.MjData(env.model)
        self.model = env.backend.copy_to_host(0, self.data)
        self.handle = mujoco.viewer.launch_passive(self.model, self.data)

    def sync(self, step_dt: float) -> None:
        self.env.backend.copy_to_host(0, self.data)
        mujoco.mj_forward(self.model, self.data)
        self.handle.sync()
        time.sleep(step_dt)

    def close(self) -> None:
        self.handle.close()
