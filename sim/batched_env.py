"""What every simreal task env shares: a simulation backend of one robot, stepped by policy actions.

One backend (sim/backends/: mujoco.batch on CPU threads, or MuJoCo Warp on a GPU
or Warp's CPU device) holds every environment's simulation; a policy step is one
`backend.step(decimation)` on all of them. Its state is torch tensors on the
backend's device, and everything here runs on that device too: on CUDA the env
makes torch's default device the backend's while it works. Actions are joint-position offsets from the default pose (the
deploy bundle's `joint_position_offset`). Observations are built from the
DESIGN.md §3 vocabulary over a per-step state snapshot, with history and
simulation-only noise. Domain randomization writes per-simulation model fields
at reset (sim/terms/randomization.py), so nothing is recompiled.
Environment ids are index tensors on the device throughout.

Subclasses (sim/vec_env.LocomotionEnv, sim/manipulation_env.ManipulationEnv)
supply the task: the state snapshot, rewards, terminations, the initial state and
the per-episode results evaluation reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import mujoco
import numpy as np
import torch

from sim.backends import make_backend
from sim.config_io import ConfigError
from sim.robot_params import RobotParams, robot_params_from_dict
from sim.robot_spec import RobotSpec, SpecError, actuator_ids, joint_dof_ids, joint_qpos_ids, load_robot_spec
from sim.tasks.config import EnvConfig
from sim.terms.observations import POLICY_TERMS, term_dim
from sim.terms.randomization import RANDOMIZED_MODEL_FIELDS, DomainRandomizer

SOFT_LIMIT_FRACTION = 0.9
# joint_limits reward starts at 90 % of the range


class BatchedRobotEnv:
    """Batched simulation of `cfg.num_envs` copies of one robot and its scene."""

    def __init__(self, cfg: EnvConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.spec: RobotSpec = load_robot_spec(cfg.robot)
        self.robot_params = self._load_robot_params()
        self.model = self._build_model()
        if self.robot_params is not None:
            self.robot_params.apply_to_model(self.model, self.spec)
        self._write_spec_gains()
        self._apply_solver_settings()
        self.num_envs = cfg.num_envs
        if self.num_envs < 1:
            raise ConfigError(f"num_envs must be at least 1, got {self.num_envs}")
        self.num_actions = self.spec.num_joints
        self.step_dt = self.spec.control_dt
        self.decimation = self.spec.decimation
        self.max_episode_length = round(cfg.terminations.episode_length_s / self.step_dt)
        self.backend = make_backend(cfg.backend, self.model, self.num_envs, cfg.num_threads, RANDOMIZED_MODEL_FIELDS)
        self.device = self.backend.device
        with self.on_device():
            self.generator = torch.Generator(device=self.device).manual_seed(seed)
            self.randomizer = DomainRandomizer(
                self.backend,
                self.spec,
                cfg.randomization,
                self.generator,
                robot_params=self.robot_params,
                **self._randomizer_args(),
            )
            self._resolve_joint_indices()
            self._resolve_task_indices()
            self._allocate_joint_buffers()
            self._allocate_task_buffers()
        # simulations that diverged and were reset, since construction (a device counter: no sync per reset)
        self._nonfinite_resets = torch.zeros((), dtype=torch.long, device=self.device)
        self.reset()

    def on_device(self) -> contextlib.AbstractContextManager:
        """Tensors made inside are made on the backend's device (torch's default is the CPU already)."""
        return contextlib.nullcontext() if self.device.type == "cpu" else self.device

    # ----------------------------------------------------------------- set-up
    def _build_model(self) -> mujoco.MjModel:
        """The compiled scene; a task may add to the robot's MJCF (objects, targets)."""
        return self.spec.load_model()

    def _load_robot_params(self) -> RobotParams | None:
        """The fitted robot of cfg.robot_params, the one place where parameter overrides enter the env.

        They move the nominal robot (joint properties, PD gains, actuation delay) and, through the
        randomizer, the centre of its ranges (sim/robot_params.centre_randomization); the spec keeps the
        gains the robot is commanded with, so bundles still carry those. Joint offsets are ignored here.
        """
        if not self.cfg.robot_params:
            return None
        return robot_params_from_dict(self.cfg.robot_params, self.spec, "env.robot_params")

    def _write_spec_gains(self) -> None:
        """The spec is the source of truth for gains and effort limits (the bundle carries them);
        fitted gain scales say what the motors really apply for them."""
        ids = actuator_ids(self.model, self.spec)
        kp, kd = (
            (self.spec.kp, self.spec.kd) if self.robot_params is None else self.robot_params.nominal_gains(self.spec)
        )
        self.model.actuator_gainprm[ids, 0] = kp
        self.model.actuator_biasprm[ids, 1] = -kp
        self.model.actuator_biasprm[ids, 2] = -kd
        self.model.actuator_forcerange[ids, 0] = -self.spec.effort_limit
        self.model.actuator_forcerange[ids, 1] = self.spec.effort_limit
        self.model.actuator_forcelimited[ids] = 1

    def _apply_solver_settings(self) -> None:
        """cfg.solver's non-zero settings replace the MJCF's."""
        for name, value in vars(self.cfg.solver).items():
            if value < 0:
                raise ConfigError(f"solver.{name} must be >= 0 (0 keeps the MJCF's), got {value}")
            if value:
                setattr(self.model.opt, name, value)

    def _resolve_joint_indices(self) -> None:
        model, spec = self.model, self.spec
        self.qpos_ids = torch.as_tensor(joint_qpos_ids(model, spec))
        self.dof_ids = torch.as_tensor(joint_dof_ids(model, spec))
        self.actuator_ids = torch.as_tensor(actuator_ids(model, spec))
        backend = self.backend
        self.qpos = backend.data("qpos")
        self.qvel = backend.data("qvel")
        self.ctrl = backend.data("ctrl")
        self.history = backend.data("history")
        # mjData.history per actuator: 2 header slots, nsample times, nsample values
        actuators = actuator_ids(model, spec)
        samples = model.actuator_history[actuators, 0]
        if samples.min() != samples.max():
            raise SpecError(f"{spec.mjcf_path}: every policy actuator needs the same nsample")
        values_start = model.actuator_historyadr[actuators] + 2 + samples
        self.history_value_ids = torch.as_tensor(values_start[:, None] + np.arange(samples[0])[None, :])
        self.sensordata = backend.data("sensordata")
        self.actuator_force = backend.data("actuator_force")
        low, high = model.jnt_range[[model.joint(n).id for n in spec.joint_names]].T
        middle, half = 0.5 * (low + high), 0.5 * (high - low)
        self.joint_range = torch.as_tensor(np.stack([low, high], axis=1))
        self.soft_joint_limits = torch.tensor(
            np.stack([middle - SOFT_LIMIT_FRACTION * half, middle + SOFT_LIMIT_FRACTION * half], axis=1),
            dtype=torch.float32,
        )

    def _randomizer_args(self) -> dict:
        """Task-specific DomainRandomizer arguments (the object, the critic's terms)."""
        return {}

    def _resolve_task_indices(self) -> None:
        """Bodies, sites and sensors the task reads."""

    def _allocate_joint_buffers(self) -> None:
        n, j = self.num_envs, self.num_actions
        obs_cfg = self.cfg.observations
        for term in obs_cfg.policy:
            term_dim(term.name, j)  # validates the name early
        if obs_cfg.history < 1:
            raise ConfigError(f"observations.history must be at least 1, got {obs_cfg.history}")
        known_extra = {*self.critic_terms(), "randomization"}
        unknown = [name for name in obs_cfg.critic_extra if name not in known_extra]
        if unknown:
            raise ConfigError(f"observations.critic_extra: unknown {unknown}; known: {sorted(known_extra)}")
        self.frame_dim = sum(term_dim(t.name, j) for t in obs_cfg.policy)
        self.default_joint_pos = torch.tensor(self.spec.default_joint_pos, dtype=torch.float32)
        self.default_joint_pos_f64 = torch.tensor(self.spec.default_joint_pos, dtype=torch.float64)
        self.actions = torch.zeros(n, j)
        self.last_actions = torch.zeros(n, j)
        self.last_joint_vel = torch.zeros(n, j)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.policy_history = torch.zeros(n, obs_cfg.history, self.frame_dim)
        self.reward_weights = self.active_rewards()
        self.episode_sums = {name: torch.zeros(n) for name in self.reward_weights}
        self.terminated = torch.zeros(n, dtype=torch.bool)
        self.time_outs = torch.zeros(n, dtype=torch.bool)
        self.nonfinite = torch.zeros(n, dtype=torch.bool)
        self.extras: dict = {"log": {}}

    def _allocate_task_buffers(self) -> None:
        """Task state beyond joints and actions (commands, timers, targets)."""

    # ------------------------------------------------------------ task hooks
    def critic_terms(self) -> dict:
        """Privileged critic-only terms of this task: name -> function of the state."""
        raise NotImplementedError

    def active_rewards(self) -> dict[str, float]:
        """Reward term name -> weight per second, for the terms in use."""
        raise NotImplementedError

    def _read_state(self) -> Any:
        raise NotImplementedError

    def _compute_rewards(self) -> torch.Tensor:
        """Sets self.terminated and self.time_outs; returns the (N,) reward of this step."""
        raise NotImplementedError

    def _write_initial_state(self, ids: torch.Tensor) -> None:
        raise NotImplementedError

    def _reset_task(self, ids: torch.Tensor) -> None:
        """Task buffers of the environments `ids` at the start of their episode."""

    def _before_physics(self) -> None:
        """Disturbances applied just before stepping (pushes)."""

    def _after_rewards(self) -> None:
        """Task updates that the next observation shows (command resampling)."""

    def _episode_log(self, ids: torch.Tensor) -> dict:
        raise NotImplementedError

    def _finished_episodes(self, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def summarize_episodes(self, episodes: dict[str, np.ndarray]) -> dict:
        """Evaluation metrics over one _finished_episodes row per episode."""
        raise NotImplementedError

    # ------------------------------------------------------ stepping and reset
    def get_observations(self) -> dict[str, torch.Tensor]:
        return self._observations

    def reset(self) -> dict[str, torch.Tensor]:
        """Reset every environment."""
        with self.on_device():
            ids = torch.arange(self.num_envs)
            self._reset_envs(ids)
            self.state = self._read_state()
            self._observations = self._compute_observations(reset_ids=ids)
        return self._observations

    def step(
        self, actions: torch.Tensor, record_state_into: list | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict]:
        """One policy step; `record_state_into` gets the backend's save_state() from just before
        stepping appended (the env benchmark replays them)."""
        with single_threaded_torch(self.device), self.on_device():
            return self._step(actions, record_state_into)

    def _step(
        self, actions: torch.Tensor, record_state_into: list | None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict]:
        actions = actions.detach().to(self.device, torch.float32)
        clip = self.cfg.action_clip
        # a non-finite action would reach the motors: treat it like a diverged simulation
        bad_action = ~torch.isfinite(actions).all(dim=1)
        actions = torch.nan_to_num(actions, nan=0.0, posinf=0.0, neginf=0.0).clamp(-clip, clip)
        self.last_actions = self.actions
        self.actions = actions
        self._apply_actions(actions)
        self._before_physics()
        if record_state_into is not None:
            record_state_into.append(self.backend.save_state())
        failed = self.backend.step(self.decimation)
        self.episode_length_buf += 1
        self.state = self._read_state()
        self.nonfinite = failed | bad_action | ~torch.isfinite(self.qpos_t).all(1) | ~torch.isfinite(self.qvel_t).all(1)
        # rewards score the command the policy acted on; a resampled one shows in the next observation
        rewards = self._compute_rewards()
        # a diverged simulation's numbers are garbage: give it the termination penalty only
        penalty = torch.full_like(rewards, self.termination_penalty() * self.step_dt)
        rewards = torch.nan_to_num(torch.where(self.nonfinite, penalty, rewards))
        self._after_rewards()
        reset_ids = torch.nonzero(self.terminated | self.time_outs | self.nonfinite).flatten()
        self.extras = {"time_outs": self.time_outs.clone(), "log": self._episode_log(reset_ids)}
        self._finished = self._finished_episodes(reset_ids)
        dones = self.terminated | self.time_outs | self.nonfinite
        if len(reset_ids):
            self._reset_envs(reset_ids)
            self.state = self._read_state()
        self._observations = self._compute_observations(reset_ids=reset_ids)
        return self._observations, rewards, dones.long(), self.extras

    @property
    def nonfinite_resets(self) -> int:
        """Simulations that diverged (or overflowed a Warp buffer) and were reset, since construction."""
        return int(self._nonfinite_resets)

    @property
    def finished_episodes(self) -> dict[str, np.ndarray]:
        """Per-environment results of the episodes that ended at the last step, copied to the host only
        when read (evaluation), so that training keeps them on the device."""
        return {name: value.detach().cpu().numpy().copy() for name, value in self._finished.items()}

    def termination_penalty(self) -> float:
        """Reward per second given on a failure (and to a diverged simulation)."""
        return self.reward_weights.get("termination", 0.0)

    def _weighted_rewards(self, terms: dict, state: Any, context: Any) -> torch.Tensor:
        """Sum of weight * term * control period over the active terms; per-term episode sums."""
        total = torch.zeros(self.num_envs)
        self.reward_terms = {}  # this step's weighted value of each term, (N,)
        for name, weight in self.reward_weights.items():
            value = terms[name](state, context) * (weight * self.step_dt)
            self.reward_terms[name] = value
            self.episode_sums[name] += value
            total += value
        return total

    def _reward_log(self, t: torch.Tensor) -> dict:
        """Per-second episode means of every reward term over the environments `t`."""
        seconds = (self.episode_length_buf[t].float() * self.step_dt).clamp(min=self.step_dt)
        return {f"Episode_Reward/{name}": torch.mean(sums[t] / seconds) for name, sums in self.episode_sums.items()}

    # --------------------------------------------------------------- physics
    def _apply_actions(self, actions: torch.Tensor) -> None:
        """q* = q_default + scale * a in encoder coordinates; the motor sees the true angle."""
        targets = self.default_joint_pos + self.spec.action_scale * actions
        true_targets = targets.double() - self.randomizer.params["encoder_offset_rad"]
        true_targets = torch.clamp(true_targets, self.joint_range[:, 0], self.joint_range[:, 1])
        self.ctrl[:, self.actuator_ids] = true_targets.to(self.ctrl.dtype)

    def _read_joint_state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(qpos, qvel, joint velocities in policy order) as float32; keeps the finite-check copies."""
        qpos = self.qpos.float()
        qvel = self.qvel.float()
        self.qpos_t, self.qvel_t = qpos, qvel
        return qpos, qvel, qvel[:, self.dof_ids]

    # ----------------------------------------------------------------- reset
    def _reset_envs(self, ids: torch.Tensor) -> None:
        self._nonfinite_resets += self.nonfinite[ids].sum()
        self.randomizer.sample(ids)
        self.backend.reset(ids)
        self._write_initial_state(ids)
        self.backend.forward(ids)
        self.actions[ids] = 0.0
        self.last_actions[ids] = 0.0
        self.last_joint_vel[ids] = self.qvel[ids][:, self.dof_ids].float()
        self.episode_length_buf[ids] = 0
        for sums in self.episode_sums.values():
            sums[ids] = 0.0
        self._reset_task(ids)

    def _write_initial_joints(self, ids: torch.Tensor, offset_rad: torch.Tensor) -> None:
        """Joints at the default pose plus `offset_rad` (float64), at rest, held there by the actuators."""
        joint_pos = torch.clamp(self.default_joint_pos_f64 + offset_rad, self.joint_range[:, 0], self.joint_range[:, 1])
        rows = ids[:, None]
        self.qpos[rows, self.qpos_ids] = joint_pos.to(self.qpos.dtype)
        self.qvel[ids] = 0.0
        # hold the spawn pose until the first action arrives, also in the delayed-control history
        # (a reset clears it to 0 rad, which would kick the joints for the first latency period)
        self.ctrl[rows, self.actuator_ids] = joint_pos.to(self.ctrl.dtype)
        samples = self.history_value_ids.shape[1]
        self.history[rows, self.history_value_ids.reshape(-1)] = joint_pos.repeat_interleave(samples, dim=1).to(
            self.history.dtype
        )

    # ---------------------------------------------------------- observations
    def _compute_observations(self, reset_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        frame_clean, frame_noisy = self._policy_frame()
        history = self.policy_history
        history[:, :-1] = history[:, 1:].clone()
        history[:, -1] = frame_noisy
        if len(reset_ids):
            # a fresh episode starts with its history filled by its first frame
            history[reset_ids] = frame_noisy[reset_ids].unsqueeze(1)
        critic_parts = [frame_clean]
        critic_terms = self.critic_terms()
        for name in self.cfg.observations.critic_extra:
            if name == "randomization":
                critic_parts.append(self.randomizer.critic_features_t)
            else:
                critic_parts.append(critic_terms[name](self.state))
        return {"policy": history.reshape(self.num_envs, -1).clone(), "critic": torch.cat(critic_parts, dim=1)}

    def _policy_frame(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One policy frame without and with sensor noise (noise only in simulation)."""
        clean, noisy = [], []
        use_noise = self.cfg.randomization.observation_noise
        for term in self.cfg.observations.policy:
            value = POLICY_TERMS[term.name](self.state)
            clean.append(torch.clamp(value * term.scale, -term.clip, term.clip))
            if use_noise and term.noise > 0:
                value = value + uniform(-term.noise, term.noise, value.shape, self.generator)
            noisy.append(torch.clamp(value * term.scale, -term.clip, term.clip))
        return torch.cat(clean, dim=1), torch.cat(noisy, dim=1)

    def observation_layout(self) -> list[tuple[str, int, float, float]]:
        """(term, dim, scale, clip) of one policy frame, in order."""
        return [(t.name, term_dim(t.name, self.num_actions), t.scale, t.clip) for t in self.cfg.observations.policy]

    def observation_names(self) -> list[str]:
        """One name per component of a policy frame: `<term>.<index>` (a dataset's observation.state names)."""
        return [f"{term}.{i}" for term, dim, _, _ in self.observation_layout() for i in range(dim)]

    def observation_slices(self) -> dict[str, slice]:
        """Where each term sits in one policy frame."""
        slices, start = {}, 0
        for name, dim, _, _ in self.observation_layout():
            slices[name] = slice(start, start + dim)
            start += dim
        return slices

    def close(self) -> None:
        """Release the simulations."""
        self.backend.close()


@contextlib.contextmanager
def single_threaded_torch(device: torch.device) -> Iterator[None]:
    """Run the env's small CPU tensor ops on one thread: torch's idle worker threads would otherwise
    spin on the cores that the simulation steps on (measured: -25 % env throughput on 2 cores)."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def uniform(low: float, high: float, shape, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=generator.device)


def range_or_zero(term, shape, generator: torch.Generator) -> torch.Tensor:
    """Uniform samples of a randomization Range, or zeros while it is disabled."""
    if not term.enabled:
        return torch.zeros(shape, device=generator.device)
    return uniform(term.low, term.high, shape, generator)
