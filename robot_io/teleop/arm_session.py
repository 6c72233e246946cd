"""Teleoperate the arm in simulation and record demonstrations (`simreal teleop --task arm-lift ...`).

One simulation of the task (randomized like training), stepped at the task's control rate (50 Hz for the
arm). Each step: poll the device, scale its end-effector delta (`ArmDeltaLimits`), turn it into joint
targets by differential IK (integrated from the previous targets), and step. Frames are recorded at the dataset's fps
(30 by default): the step whose time crosses the next frame time is recorded, with the observation the
policy saw before the step, the device's action, the joint targets sent, the reward, done and success
after it, and both cameras rendered from this simulation's own (randomized) model.

`observation.state` is the task's policy observation, so a policy cloned from the dataset runs in the
task's env and in `simreal eval` unchanged; its names list each term's components.
Keys (any device): `n` commit the episode and start the next, `r` discard and record it again, `q` stop
(the episode in progress is discarded), space toggles `complementary_info.is_intervention`, `s` marks the
episode a success. A scripted device's episodes end with the task's episode (time-out or failure).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from robot_io.datasets import DatasetWriter, FeatureSpec
from robot_io.teleop.command import TeleopDevice, TeleopReading
from sim.arm_ik import ArmDeltaLimits, ArmDifferentialIK
from sim.envs import make_env
from sim.errors import SimrealError
from sim.manipulation_env import ManipulationEnv
from sim.tasks import make_task_config

ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
TASK_TEXT = {
    "arm-lift": "pick up the cube and lift it 10 cm",
    "arm-reach": "move the end effector to the target pose",
}


class TeleopError(SimrealError):
    """A teleop session that cannot start or go on; the message says why."""


@dataclass
class ArmTeleopConfig:
    task: str = "arm-lift"
    episodes: int = 10
    fps: int = 30
    seed: int = 0
    randomized: bool = True  # the task's domain randomization, as in training
    image_width: int = 128
    image_height: int = 96
    realtime: bool = True  # pace the loop to the wall clock (a human at the device); scripted runs go flat out
    viewer: bool = False  # a MuJoCo viewer window (needs a display)
    # a scripted expert's executed delta gets this much Gaussian noise (normalized units) while the recorded
    # action stays the expert's own: the demonstrations then show how to recover from small errors (DART)
    expert_noise: float = 0.0


@dataclass
class EpisodeOutcome:
    committed: bool
    frames: int
    success: bool
    stop: bool


class ArmTeleopSession:
    """The simulation, the IK, the cameras and the dataset of one `simreal teleop` run."""

    def __init__(self, config: ArmTeleopConfig, device: TeleopDevice, dataset: Path) -> None:
        if config.task not in TASK_TEXT:
            raise TeleopError(f"teleop drives the arm tasks {sorted(TASK_TEXT)}, not {config.task!r}")
        if config.fps <= 0:
            raise TeleopError(f"--fps must be positive, got {config.fps}")
        self.config, self.device = config, device
        self.env = self._make_env()
        if 1.0 / config.fps < self.env.step_dt - 1e-9:
            raise TeleopError(f"--fps {config.fps} is above the control rate {1.0 / self.env.step_dt:g} Hz")
        self.limits = ArmDeltaLimits()
        self.ik = ArmDifferentialIK(
            self.env.model, self.env.spec, self.env.base_pos_w.numpy(), self.env.base_quat_w.numpy(), self.env.step_dt
        )
        self.cameras = list(self.env.spec.cameras)
        self.writer = self._open_dataset(dataset)
        self._renderers: list = []
        self._data = None
        self._viewer = None
        self.intervention = False
        self._noise = np.random.default_rng(config.seed + 7919)

    # ---- set-up --------------------------------------------------------------------------------------------

    def _make_env(self) -> ManipulationEnv:
        cfg = make_task_config(self.config.task)
        cfg.num_envs = 1
        cfg.num_threads = 1
        if not self.config.randomized:
            cfg.randomization = cfg.randomization.disabled()
        return make_env(cfg, seed=self.config.seed)

    def state_names(self) -> list[str]:
        """One name per observation.state component: term name and index."""
        return self.env.observation_names()

    def features(self) -> dict[str, FeatureSpec]:
        shape = (self.config.image_height, self.config.image_width, 3)
        cameras = {
            f"observation.images.{camera}": FeatureSpec("video", shape, names=["height", "width", "channels"])
            for camera in self.cameras
        }
        joints = list(self.env.spec.joint_names)
        return {
            "observation.state": FeatureSpec("float32", (len(self.state_names()),), names=self.state_names()),
            **cameras,
            "action": FeatureSpec("float32", (len(ACTION_NAMES),), names=ACTION_NAMES),
            "action.joint_target": FeatureSpec("float32", (len(joints),), names=joints),
            "next.reward": FeatureSpec("float32", (1,)),
            "next.done": FeatureSpec("bool", (1,)),
            "next.success": FeatureSpec("bool", (1,)),
            "complementary_info.is_intervention": FeatureSpec("bool", (1,)),
        }

    def _open_dataset(self, root: Path) -> DatasetWriter:
        """A new dataset, or more episodes appended to an existing one of the same features and fps."""
        if (root / "meta" / "info.json").is_file():
            writer = DatasetWriter.open(root)
            self._check_compatible(writer, root)
            return writer
        return DatasetWriter.create(root, fps=self.config.fps, robot_type=self.env.spec.name, features=self.features())

    def _check_compatible(self, writer: DatasetWriter, root: Path) -> None:
        if writer.fps != self.config.fps:
            raise TeleopError(f"{root} was recorded at {writer.fps} fps; this session records at {self.config.fps}")
        theirs = {key: tuple(spec.shape) for key, spec in writer.features.items()}
        ours = {key: tuple(spec.shape) for key, spec in self.features().items()}
        for key, shape in ours.items():
            if theirs.get(key) != shape:
                raise TeleopError(f"{root}: feature {key!r} is {theirs.get(key)} there, {shape} in this session")

    # ---- cameras -------------------------------------------------------------------------------------------

    def _render(self) -> dict[str, np.ndarray]:
        """Every camera of this simulation's own model (randomized camera poses and lights show)."""
        import mujoco

        if self._data is None:
            self._data = mujoco.MjData(self.env.model)
        model = self.env.backend.copy_to_host(0, self._data)
        if not self._renderers:
            self._renderers = [
                mujoco.Renderer(model, height=self.config.image_height, width=self.config.image_width)
                for _ in self.cameras
            ]
        mujoco.mj_forward(model, self._data)
        images = {}
        for camera, renderer in zip(self.cameras, self._renderers, strict=True):
            renderer.update_scene(self._data, camera=camera)
            images[f"observation.images.{camera}"] = renderer.render().copy()
        if self._viewer is not None:
            self._viewer.sync()
        return images

    # ---- the loop ------------------------------------------------------------------------------------------

    def run(self, on_episode: Callable[[int, EpisodeOutcome], None] | None = None) -> int:
        """Record until `episodes` are committed or the device says stop; the number committed."""
        committed = 0
        try:
            self._start_viewer()
            while committed < self.config.episodes:
                outcome = self.record_episode()
                committed += outcome.committed
                if on_episode is not None:
                    on_episode(self.writer.num_episodes - 1 if outcome.committed else -1, outcome)
                if outcome.stop:
                    break
        finally:
            self.close()
        return committed

    def record_episode(self) -> EpisodeOutcome:
        """One episode, from a fresh reset; committed unless re-recorded or stopped."""
        env = self.env
        observations = env.reset()
        self.ik.reset(env.state.measured_joint_pos_rad[0].numpy().astype(np.float64))
        self._reset_device()
        self.writer.start_episode(task=TASK_TEXT[self.config.task])
        frame_period_s, next_frame_s = 1.0 / self.config.fps, 0.0
        frames, success, marked_success = 0, False, False
        step_start = time.perf_counter()
        for step in range(env.max_episode_length):
            now_s = step * env.step_dt
            reading = self._poll()
            events = reading.events
            if events.toggle_intervention:
                self.intervention = not self.intervention
            marked_success |= events.mark_success
            if events.stop or events.rerecord:
                self.writer.discard_episode()
                return EpisodeOutcome(committed=False, frames=frames, success=False, stop=events.stop)
            if events.next_episode and frames > 0:
                break
            state = observations["policy"][0].numpy()
            targets, executed = self._joint_targets(reading, env.state.measured_joint_pos_rad[0].numpy())
            action = (torch.from_numpy(executed).float() - env.default_joint_pos) / env.spec.action_scale
            record = now_s + 1e-9 >= next_frame_s
            images = self._render() if record else {}
            observations, rewards, dones, _ = env.step(action.unsqueeze(0))
            finished = env.finished_episodes
            done = bool(dones[0])
            if done and len(finished["ids"]):
                success = bool(finished["success"][0])
            if record:
                self.writer.add_frame(
                    {
                        "observation.state": state.astype(np.float32),
                        **images,
                        "action": np.append(reading.arm_delta, reading.gripper).astype(np.float32),
                        "action.joint_target": targets.astype(np.float32),
                        "next.reward": np.array([float(rewards[0])], dtype=np.float32),
                        "next.done": np.array([done]),
                        "next.success": np.array([success or marked_success]),
                        "complementary_info.is_intervention": np.array([self.intervention]),
                    }
                )
                frames += 1
                next_frame_s += frame_period_s
            if done:
                break
            self._pace(step_start, step + 1)
        if frames == 0:
            self.writer.discard_episode()
            return EpisodeOutcome(committed=False, frames=0, success=False, stop=False)
        self.writer.commit_episode()
        return EpisodeOutcome(committed=True, frames=frames, success=success or marked_success, stop=False)

    def _joint_targets(self, reading: TeleopReading, measured_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the targets the device asked for: recorded, the targets sent: with the expert noise, if any)."""
        measured = measured_rad.astype(np.float64)
        if self.config.expert_noise <= 0.0:
            targets = self.ik.joint_targets(measured, self.limits.scale(reading.arm_delta), reading.gripper)
            return targets, targets
        before = None if self.ik.targets is None else self.ik.targets.copy()
        clean = self.ik.joint_targets(measured, self.limits.scale(reading.arm_delta), reading.gripper)
        self.ik.targets = before
        noisy_delta = reading.arm_delta + self._noise.normal(0.0, self.config.expert_noise, 6)
        return clean, self.ik.joint_targets(measured, self.limits.scale(np.clip(noisy_delta, -1, 1)), reading.gripper)

    def _poll(self) -> TeleopReading:
        """The device's reading; a scripted expert first sees the simulation's state (the ee, and the cube
        or the reach target)."""
        observe = getattr(self.device, "observe", None)
        if observe is not None:
            state = self.env.state
            if state.object_pos_b is not None:  # lift: the cube
                goal_pos, goal_quat = state.object_pos_b[0].numpy(), state.object_quat_b[0].numpy()
            else:  # reach: the target pose
                goal_pos, goal_quat = state.target_pose[0, :3].numpy(), state.target_pose[0, 3:].numpy()
            observe(
                state.ee_pos_b[0].numpy(),
                state.ee_quat_b[0].numpy(),
                goal_pos,
                goal_quat,
                float(state.measured_joint_pos_rad[0, self.ik.gripper]),
            )
        return self.device.poll().clipped()

    def _reset_device(self) -> None:
        reset = getattr(self.device, "reset", None)
        if reset is not None:
            reset(np.random.default_rng(self.config.seed + self.writer.num_episodes))

    def _pace(self, start_s: float, steps_done: int) -> None:
        if not self.config.realtime:
            return
        wait_s = start_s + steps_done * self.env.step_dt - time.perf_counter()
        if wait_s > 0:
            time.sleep(wait_s)

    def _start_viewer(self) -> None:
        if not self.config.viewer:
            return
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            raise TeleopError("--viewer needs a display (DISPLAY or WAYLAND_DISPLAY); record headless without it")
        import mujoco.viewer

        self._render()  # creates the data the viewer shows
        self._viewer = mujoco.viewer.launch_passive(self.env.backend.copy_to_host(0, self._data), self._data)

    def close(self) -> None:
        self.writer.close()
        for renderer in self._renderers:
            renderer.close()
        self._renderers = []
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None
        self.device.close()
