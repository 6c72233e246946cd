"""What every simreal task env shares: a mujoco.batch.Batch of one robot, stepped by policy actions.

One Batch holds every environment's simulation; a policy step is one
`Batch.step(nstep=decimation)` on all of them, threaded over the CPU cores with
the GIL released. Actions are joint-position offsets from the default pose (the
deploy bundle's `joint_position_offset`). Observations are built from the
DESIGN.md §3 vocabulary over a per-step state snapshot, with history and
simulation-only noise. Domain randomization writes per-simulation model fields
at reset (sim/terms/randomization.py), so nothing is recompiled.

Subclasses (sim/vec_env.LocomotionEnv, sim/manipulation_env.ManipulationEnv)
supply the task: the state snapshot, rewards, terminations, the initial state and
the per-episode results evaluation reads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import mujoco
import mujoco.batch
import numpy as np
import torch

from sim.config_io import ConfigError
from sim.robot_params import RobotParams, robot_params_from_dict
from sim.robot_spec import RobotSpec, SpecError, actuator_ids, joint_dof_ids, joint_qpos_ids, load_robot_spec
from sim.tasks.config import EnvConfig
from sim.terms.observations import POLICY_TERMS, term_dim
from sim.terms.randomization import DomainRandomizer

SOFT_LIMIT_FRACTION = 0.9
# joint_limits reward starts at 90 % of the range


class BatchedRobotEnv:
    """Batched simulation of `cfg.num_envs` copies of one robot and its scene."""

    def __init__(self, cfg: EnvConfig, seed: int = 0, device: str = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.spec: RobotSpec = load_robot_spec(cfg.robot)
        self.robot_params = self._load_robot_params()
        self.model = self._build_model()
        if self.robot_params is not None:
            self.robot_params.apply_to_model(self.model, self.spec)
        self._write_spec_gains()
        self.num_envs = cfg.num_envs
        if self.num_envs < 1:
            raise ConfigError(f"num_envs must be at least 1, got {self.num_envs}")
        self.num_actions = self.spec.num_joints
        self.step_dt = self.spec.control_dt
        self.decimation = self.spec.decimation
        self.max_episode_length = round(cfg.terminations.episode_length_s / self.step_dt)
        threads = cfg.num_threads or os.cpu_count() or 1
        self.batch = mujoco.batch.Batch(self.model, nsim=self.num_envs, nthread=threads, persistent=True)
        self.generator = torch.Generator().manual_seed(seed)
        self.randomizer = DomainRandomizer(
            self.batch,
            self.spec,
            cfg.randomization,
            np.random.default_rng(seed),
            robot_params=self.robot_params,
            **self._randomizer_args(),
        )
        self._resolve_joint_indices()
        self._resolve_task_indices()
        self._allocate_joint_buffers()
        self._allocate_task_buffers()
        self.nonfinite_resets = 0  # simulations that diverged and were reset, since construction
        self.reset()

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

    def _resolve_joint_indices(self) -> None:
        model, spec = self.model, self.spec
        self.qpos_ids = joint_qpos_ids(model, spec)
        self.dof_ids = joint_dof_ids(model, spec)
        self.actuator_ids = actuator_ids(model, spec)
        self.qpos = self.batch.bind("qpos")
        self.qvel = self.batch.bind("qvel")
        self.ctrl = self.batch.bind("ctrl")
        self.sim_time = self.batch.bind("time")
        self.history = self.batch.bind("history")
        # mjData.history per actuator: 2 header slots, nsample times, nsample values
        samples = model.actuator_history[self.actuator_ids, 0]
        if samples.min() != samples.max():
            raise SpecError(f"{spec.mjcf_path}: every policy actuator needs the same nsample")
        values_start = model.actuator_historyadr[self.actuator_ids] + 2 + samples
        self.history_value_ids = values_start[:, None] + np.arange(samples[0])[None, :]
        self.sensordata = self.batch.bind("sensordata")
        self.actuator_force = self.batch.bind("actuator_force")
        low, high = model.jnt_range[[model.joint(n).id for n in spec.joint_names]].T
        middle, half = 0.5 * (low + high), 0.5 * (high - low)
        self.joint_range = np.stack([low, high], axis=1)
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

    def _write_initial_state(self, ids: np.ndarray) -> None:
        raise NotImplementedError

    def _reset_task(self, ids: torch.Tensor) -> None:
        """Task buffers of the environments `ids` at the start of their episode."""

    def _before_physics(self) -> None:
        """Disturbances applied just before stepping (pushes)."""

    def _after_rewards(self) -> None:
        """Task updates that the next observation shows (command resampling)."""

    def _episode_log(self, ids: np.ndarray) -> dict:
        raise NotImplementedError

    def _finished_episodes(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def summarize_episodes(self, episodes: dict[str, np.ndarray]) -> dict:
        """Evaluation metrics over one _finished_episodes row per episode."""
        raise NotImplementedError

    # ------------------------------------------------------ stepping and reset
    def get_observations(self) -> dict[str, torch.Tensor]:
        return self._observations

    def reset(self) -> dict[str, torch.Tensor]:
        """Reset every environment."""
        ids = np.arange(self.num_envs)
        self._reset_envs(ids)
        self.state = self._read_state()
        self._observations = self._compute_observations(reset_ids=ids)
        return self._observations

    def step(
        self, actions: torch.Tensor, record_state_into: np.ndarray | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict]:
        """One policy step; `record_state_into` receives the physics state rows just before stepping
        (the env benchmark replays them)."""
        with single_threaded_torch():
            return self._step(actions, record_state_into)

    def _step(
        self, actions: torch.Tensor, record_state_into: np.ndarray | None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, dict]:
        actions = actions.detach().to("cpu", torch.float32)
        clip = self.cfg.action_clip
        # a non-finite action would reach the motors: treat it like a diverged simulation
        bad_action = ~torch.isfinite(actions).all(dim=1)
        actions = torch.nan_to_num(actions, nan=0.0, posinf=0.0, neginf=0.0).clamp(-clip, clip)
        self.last_actions = self.actions
        self.actions = actions
        self._apply_actions(actions)
        self._before_physics()
        if record_state_into is not None:
            record_state_into[:] = self.batch.state
        failed = self._step_physics()
        self.episode_length_buf += 1
        self.state = self._read_state()
        self.nonfinite = failed | bad_action | ~torch.isfinite(self.qpos_t).all(1) | ~torch.isfinite(self.qvel_t).all(1)
        # rewards score the command the policy acted on; a resampled one shows in the next observation
        rewards = self._compute_rewards()
        # a diverged simulation's numbers are garbage: give it the termination penalty only
        penalty = torch.full_like(rewards, self.termination_penalty() * self.step_dt)
        rewards = torch.nan_to_num(torch.where(self.nonfinite, penalty, rewards))
        self._after_rewards()
        reset_ids = torch.nonzero(self.terminated | self.time_outs | self.nonfinite).flatten().numpy()
        self.extras = {"time_outs": self.time_outs.clone(), "log": self._episode_log(reset_ids)}
        self.finished_episodes = self._finished_episodes(reset_ids)
        dones = self.terminated | self.time_outs | self.nonfinite
        if len(reset_ids):
            self._reset_envs(reset_ids)
            self.state = self._read_state()
        self._observations = self._compute_observations(reset_ids=reset_ids)
        return self._observations, rewards, dones.long(), self.extras

    def termination_penalty(self) -> float:
        """Reward per second given on a failure (and to a diverged simulation)."""
        return self.reward_weights.get("termination", 0.0)

    def _weighted_rewards(self, terms: dict, state: Any, context: Any) -> torch.Tensor:
        """Sum of weight * term * control period over the active terms; per-term episode sums."""
        total = torch.zeros(self.num_envs)
        for name, weight in self.reward_weights.items():
            value = terms[name](state, context) * (weight * self.step_dt)
            self.episode_sums[name] += value
            total += value
        return total

    def _reward_log(self, ids: np.ndarray) -> dict:
        """Per-second episode means of every reward term over the environments `ids`."""
        t = torch.from_numpy(ids)
        seconds = (self.episode_length_buf[t].float() * self.step_dt).clamp(min=self.step_dt)
        return {f"Episode_Reward/{name}": torch.mean(sums[t] / seconds) for name, sums in self.episode_sums.items()}

    # --------------------------------------------------------------- physics
    def _apply_actions(self, actions: torch.Tensor) -> None:
        """q* = q_default + scale * a in encoder coordinates; the motor sees the true angle."""
        targets = self.default_joint_pos + self.spec.action_scale * actions
        offsets = self.randomizer.params["encoder_offset_rad"]
        true_targets = targets.numpy().astype(np.float64) - offsets
        self.ctrl[:, self.actuator_ids] = np.clip(true_targets, self.joint_range[:, 0], self.joint_range[:, 1])

    def _step_physics(self) -> torch.Tensor:
        """One policy step of physics; returns which simulations failed (MuJoCo error or warning)."""
        failed = np.zeros(self.num_envs, dtype=bool)
        expected_time = self.sim_time + self.decimation * self.model.opt.timestep
        try:
            self.batch.step(nstep=self.decimation, stage=mujoco.mjtStage.mjSTAGE_VEL)
        except mujoco.batch.SimulationError as error:
            failed[error.ids] = True
        # MuJoCo resets a diverging simulation by itself (time restarts at 0): count those too
        failed |= self.sim_time < expected_time - 1e-9
        return torch.from_numpy(failed)

    def _read_joint_state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(qpos, qvel, joint velocities in policy order) as float32; keeps the finite-check copies."""
        qpos = torch.from_numpy(self.qpos).float()
        qvel = torch.from_numpy(self.qvel).float()
        self.qpos_t, self.qvel_t = qpos, qvel
        return qpos, qvel, qvel[:, self.dof_ids]

    # ----------------------------------------------------------------- reset
    def _reset_envs(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int32)
        self.nonfinite_resets += int(self.nonfinite[ids].sum()) if len(ids) else 0
        self.randomizer.sample(ids)
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        self._write_initial_state(ids)
        self.batch.forward(ids, stage=mujoco.mjtStage.mjSTAGE_VEL)
        t = torch.from_numpy(ids.astype(np.int64))
        self.actions[t] = 0.0
        self.last_actions[t] = 0.0
        self.last_joint_vel[t] = torch.from_numpy(self.qvel[ids][:, self.dof_ids]).float()
        self.episode_length_buf[t] = 0
        for sums in self.episode_sums.values():
            sums[t] = 0.0
        self._reset_task(t)

    def _write_initial_joints(self, ids: np.ndarray, offset_rad: np.ndarray) -> None:
        """Joints at the default pose plus `offset_rad`, at rest, held there by the actuators."""
        joint_pos = np.clip(self.spec.default_joint_pos + offset_rad, *self.joint_range.T)
        self.qpos[np.ix_(ids, self.qpos_ids)] = joint_pos
        self.qvel[ids] = 0.0
        # hold the spawn pose until the first action arrives, also in the delayed-control history
        # (a reset clears it to 0 rad, which would kick the joints for the first latency period)
        self.ctrl[np.ix_(ids, self.actuator_ids)] = joint_pos
        self.history[np.ix_(ids, self.history_value_ids.ravel())] = np.repeat(
            joint_pos, self.history_value_ids.shape[1], axis=1
        )

    # ---------------------------------------------------------- observations
    def _compute_observations(self, reset_ids: np.ndarray) -> dict[str, torch.Tensor]:
        frame_clean, frame_noisy = self._policy_frame()
        history = self.policy_history
        history[:, :-1] = history[:, 1:].clone()
        history[:, -1] = frame_noisy
        if len(reset_ids):
            # a fresh episode starts with its history filled by its first frame
            t = torch.from_numpy(np.asarray(reset_ids, dtype=np.int64))
            history[t] = frame_noisy[t].unsqueeze(1)
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
        self.batch = None


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run the env's small tensor ops on one thread: torch's idle worker threads would otherwise
    spin on the cores that mujoco.batch steps on (measured: -25 % env throughput on 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def uniform(low: float, high: float, shape, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def range_or_zero(term, shape, generator: torch.Generator) -> torch.Tensor:
    """Uniform samples of a randomization Range, or zeros while it is disabled."""
    if not term.enabled:
        return torch.zeros(shape)
    return uniform(term.low, term.high, shape, generator)
