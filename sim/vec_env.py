"""The vectorized locomotion env on mujoco.batch.Batch (rsl_rl 5.5 adapter: policies/rsl_rl_env.py).

One Batch holds every environment's simulation; a policy step is one
`Batch.step(nstep=decimation)` on all of them, threaded over the CPU cores with
the GIL released. Observations, rewards and terminations are batched torch code
over a RobotState snapshot. Domain randomization writes per-simulation model
fields at reset (sim/terms/randomization.py), so nothing is recompiled.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import mujoco
import mujoco.batch
import numpy as np
import torch

from sim.config_io import ConfigError
from sim.robot_spec import RobotSpec, SpecError, actuator_ids, joint_dof_ids, joint_qpos_ids, load_robot_spec
from sim.rotations import projected_gravity, quat_rotate_inverse, yaw_quat
from sim.tasks.config import EnvConfig
from sim.terms.commands import sample_velocity_commands
from sim.terms.observations import CRITIC_TERMS, POLICY_TERMS, term_dim
from sim.terms.randomization import DomainRandomizer
from sim.terms.rewards import REWARD_TERMS, RewardContext, active_reward_terms
from sim.terms.state import RobotState
from sim.terms.terminations import FAILURE_TERMS

SOFT_LIMIT_FRACTION = 0.9
# joint_limits reward starts at 90 % of the range


class LocomotionEnv:
    """Batched simulation of `cfg.num_envs` copies of one robot on flat ground."""

    def __init__(self, cfg: EnvConfig, seed: int = 0, device: str = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.spec: RobotSpec = load_robot_spec(cfg.robot)
        self.model = self.spec.load_model()
        self._write_spec_gains()
        self.num_envs = cfg.num_envs
        self.num_actions = self.spec.num_joints
        self.step_dt = self.spec.control_dt
        self.decimation = self.spec.decimation
        self.max_episode_length = round(cfg.terminations.episode_length_s / self.step_dt)
        threads = cfg.num_threads or os.cpu_count() or 1
        self.batch = mujoco.batch.Batch(self.model, nsim=self.num_envs, nthread=threads, persistent=True)
        self.generator = torch.Generator().manual_seed(seed)
        self.randomizer = DomainRandomizer(self.batch, self.spec, cfg.randomization, np.random.default_rng(seed))
        self._resolve_indices()
        self._allocate_buffers()
        self.nonfinite_resets = 0  # simulations that diverged and were reset, since construction
        self.reset()

    # ----------------------------------------------------------------- set-up
    def _write_spec_gains(self) -> None:
        """The spec is the source of truth for gains and effort limits (the bundle carries them)."""
        ids = actuator_ids(self.model, self.spec)
        self.model.actuator_gainprm[ids, 0] = self.spec.kp
        self.model.actuator_biasprm[ids, 1] = -self.spec.kp
        self.model.actuator_biasprm[ids, 2] = -self.spec.kd
        self.model.actuator_forcerange[ids, 0] = -self.spec.effort_limit
        self.model.actuator_forcerange[ids, 1] = self.spec.effort_limit
        self.model.actuator_forcelimited[ids] = 1

    def _resolve_indices(self) -> None:
        model, spec = self.model, self.spec
        self.qpos_ids = joint_qpos_ids(model, spec)
        self.dof_ids = joint_dof_ids(model, spec)
        self.actuator_ids = actuator_ids(model, spec)
        base = model.body(spec.base_body)
        if model.body_jntnum[base.id] != 1 or model.jnt_type[model.body_jntadr[base.id]] != mujoco.mjtJoint.mjJNT_FREE:
            raise SpecError(f"{spec.mjcf_path}: base body '{spec.base_body}' must have one free joint")
        free = model.body_jntadr[base.id]
        self.base_qpos = model.jnt_qposadr[free]
        self.base_dof = model.jnt_dofadr[free]
        imu = model.site(spec.imu_site)
        if model.site_bodyid[imu.id] != base.id:
            raise SpecError(f"{spec.spec_path}: imu_site '{spec.imu_site}' must sit on the base body '{base.name}'")
        # the IMU reports in its own frame: rotate body-frame rates and gravity into it
        self.imu_quat = torch.tensor(model.site_quat[imu.id], dtype=torch.float32).unsqueeze(0)
        self.imu_rotated = not np.allclose(model.site_quat[imu.id], [1.0, 0.0, 0.0, 0.0])
        self.foot_sensor_adr = np.array([self._touch_sensor_adr(model.site(f).id) for f in spec.feet])
        trunk_sites = [s for s in range(model.nsite) if model.site_bodyid[s] == base.id]
        trunk_touch = [a for a in (self._touch_sensor_adr(s, required=False) for s in trunk_sites) if a is not None]
        if not trunk_touch:
            raise SpecError(f"{spec.mjcf_path}: needs a touch sensor on a site of '{spec.base_body}'")
        self.trunk_sensor_adr = trunk_touch[0]
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
        self.initial_base_pos = model.qpos0[self.base_qpos : self.base_qpos + 3].copy()
        low, high = model.jnt_range[[model.joint(n).id for n in spec.joint_names]].T
        middle, half = 0.5 * (low + high), 0.5 * (high - low)
        self.joint_range = np.stack([low, high], axis=1)
        self.soft_joint_limits = torch.tensor(
            np.stack([middle - SOFT_LIMIT_FRACTION * half, middle + SOFT_LIMIT_FRACTION * half], axis=1),
            dtype=torch.float32,
        )

    def _touch_sensor_adr(self, site_id: int, required: bool = True) -> int | None:
        model = self.model
        for s in range(model.nsensor):
            if model.sensor_type[s] == mujoco.mjtSensor.mjSENS_TOUCH and model.sensor_objid[s] == site_id:
                return int(model.sensor_adr[s])
        if required:
            raise SpecError(f"{self.spec.mjcf_path}: site '{model.site(site_id).name}' needs a touch sensor")
        return None

    def _allocate_buffers(self) -> None:
        n, j, feet = self.num_envs, self.num_actions, len(self.spec.feet)
        obs_cfg = self.cfg.observations
        for term in obs_cfg.policy:
            term_dim(term.name, j)  # validates the name early
        if obs_cfg.history < 1:
            raise ConfigError(f"observations.history must be at least 1, got {obs_cfg.history}")
        known_extra = {*CRITIC_TERMS, "randomization"}
        unknown = [name for name in obs_cfg.critic_extra if name not in known_extra]
        if unknown:
            raise ConfigError(f"observations.critic_extra: unknown {unknown}; known: {sorted(known_extra)}")
        if self.num_envs < 1:
            raise ConfigError(f"num_envs must be at least 1, got {self.num_envs}")
        self.frame_dim = sum(term_dim(t.name, j) for t in obs_cfg.policy)
        self.default_joint_pos = torch.tensor(self.spec.default_joint_pos, dtype=torch.float32)
        self.actions = torch.zeros(n, j)
        self.last_actions = torch.zeros(n, j)
        self.last_joint_vel = torch.zeros(n, j)
        self.commands = torch.zeros(n, 3)
        self.fixed_command: torch.Tensor | None = None
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.command_timer_s = torch.zeros(n)
        self.push_timer_s = torch.zeros(n)
        self.feet_air_time_s = torch.zeros(n, feet)
        self.policy_history = torch.zeros(n, obs_cfg.history, self.frame_dim)
        self.reward_weights = active_reward_terms(self.cfg.rewards)
        self.episode_sums = {name: torch.zeros(n) for name in self.reward_weights}
        self.episode_tracking = {"lin_vel_error": torch.zeros(n), "yaw_rate_error": torch.zeros(n)}
        self.terminated = torch.zeros(n, dtype=torch.bool)
        self.time_outs = torch.zeros(n, dtype=torch.bool)
        self.nonfinite = torch.zeros(n, dtype=torch.bool)
        self.extras: dict = {"log": {}}

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
        self._apply_pushes()
        if record_state_into is not None:
            record_state_into[:] = self.batch.state
        failed = self._step_physics()
        self.episode_length_buf += 1
        self.state = self._read_state()
        self.nonfinite = failed | bad_action | ~torch.isfinite(self.qpos_t).all(1) | ~torch.isfinite(self.qvel_t).all(1)
        # rewards score the command the policy acted on; a resampled one shows in the next observation
        rewards = self._compute_rewards()
        self._update_commands()
        reset_ids = torch.nonzero(self.terminated | self.time_outs | self.nonfinite).flatten().numpy()
        self.extras = {"time_outs": self.time_outs.clone(), "log": self._episode_log(reset_ids)}
        self.finished_episodes = self._finished_episodes(reset_ids)
        dones = self.terminated | self.time_outs | self.nonfinite
        if len(reset_ids):
            self._reset_envs(reset_ids)
            self.state = self._read_state()
        self._observations = self._compute_observations(reset_ids=reset_ids)
        return self._observations, rewards, dones.long(), self.extras

    # --------------------------------------------------------------- physics
    def _apply_actions(self, actions: torch.Tensor) -> None:
        """q* = q_default + scale * a in encoder coordinates; the motor sees the true angle."""
        targets = self.default_joint_pos + self.spec.action_scale * actions
        offsets = self.randomizer.params["encoder_offset_rad"]
        true_targets = targets.numpy().astype(np.float64) - offsets
        self.ctrl[:, self.actuator_ids] = np.clip(true_targets, self.joint_range[:, 0], self.joint_range[:, 1])

    def _apply_pushes(self) -> None:
        cfg = self.cfg.randomization
        if not cfg.push_interval_s.enabled:
            return
        self.push_timer_s -= self.step_dt
        due = torch.nonzero(self.push_timer_s <= 0).flatten()
        if len(due) == 0:
            return
        speed = _uniform(cfg.push_velocity_m_s.low, cfg.push_velocity_m_s.high, (len(due),), self.generator)
        heading = _uniform(-math.pi, math.pi, (len(due),), self.generator)
        push = torch.stack([speed * torch.cos(heading), speed * torch.sin(heading)], dim=1).double().numpy()
        ids = due.numpy()
        self.qvel[ids, self.base_dof : self.base_dof + 2] += push
        self.push_timer_s[due] = _uniform(
            cfg.push_interval_s.low, cfg.push_interval_s.high, (len(due),), self.generator
        )

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

    def _read_state(self) -> RobotState:
        qpos = torch.from_numpy(self.qpos).float()
        qvel = torch.from_numpy(self.qvel).float()
        self.qpos_t, self.qvel_t = qpos, qvel
        sensors = torch.from_numpy(np.array(self.sensordata, dtype=np.float32))
        randomizer = self.randomizer
        b = self.base_qpos
        quat = qpos[:, b + 3 : b + 7]
        gravity = projected_gravity(quat)
        joint_vel = qvel[:, self.dof_ids]
        joint_pos = qpos[:, self.qpos_ids]
        ang_vel = qvel[:, self.base_dof + 3 : self.base_dof + 6]  # free joint: body frame
        imu_ang_vel, imu_gravity = ang_vel, gravity
        if self.imu_rotated:
            imu_quat = self.imu_quat.expand(self.num_envs, 4)
            imu_ang_vel = quat_rotate_inverse(imu_quat, ang_vel)
            imu_gravity = quat_rotate_inverse(imu_quat, gravity)
        measured_gravity = imu_gravity + randomizer.gravity_bias_t
        measured_gravity = measured_gravity / torch.linalg.norm(measured_gravity, dim=1, keepdim=True).clamp(min=1e-6)
        state = RobotState(
            base_pos_w=qpos[:, b : b + 3],
            base_quat_w=quat,
            base_lin_vel_b=quat_rotate_inverse(quat, qvel[:, self.base_dof : self.base_dof + 3]),
            base_ang_vel_b=ang_vel,
            projected_gravity_b=gravity,
            joint_pos_rad=joint_pos,
            joint_vel_rad_s=joint_vel,
            joint_acc_rad_s2=(joint_vel - self.last_joint_vel) / self.step_dt,
            joint_torque_nm=torch.from_numpy(self.actuator_force[:, self.actuator_ids].astype(np.float32)),
            foot_contact_force_n=sensors[:, self.foot_sensor_adr],
            trunk_contact_force_n=sensors[:, self.trunk_sensor_adr],
            measured_ang_vel_b=imu_ang_vel + randomizer.gyro_bias_t,
            measured_gravity_b=measured_gravity,
            measured_joint_pos_rad=joint_pos + randomizer.encoder_offset_t,
            default_joint_pos_rad=self.default_joint_pos,
            velocity_command=self.commands,
            action=self.actions,
            last_action=self.last_actions,
        )
        self.last_joint_vel = joint_vel
        return state

    # ------------------------------------------------------- task functions
    def _update_commands(self) -> None:
        self.command_timer_s -= self.step_dt
        due = torch.nonzero(self.command_timer_s <= 0).flatten()
        if len(due):
            self._resample_commands(due)

    def _resample_commands(self, ids: torch.Tensor) -> None:
        cfg = self.cfg.commands
        if self.fixed_command is not None:
            self.commands[ids] = self.fixed_command
            self.command_timer_s[ids] = float("inf")
            return
        self.commands[ids] = sample_velocity_commands(cfg, len(ids), self.generator)
        # jitter the period so that environments do not resample in lock-step
        self.command_timer_s[ids] = cfg.resample_interval_s * _uniform(0.8, 1.2, (len(ids),), self.generator)

    def _compute_rewards(self) -> torch.Tensor:
        state = self.state
        failures = {name: fn(state, self.cfg.terminations) for name, fn in FAILURE_TERMS.items()}
        self.failure_reasons = failures
        self.terminated = torch.zeros(self.num_envs, dtype=torch.bool)
        for flag in failures.values():
            self.terminated |= flag
        self.time_outs = (self.episode_length_buf >= self.max_episode_length) & ~self.terminated
        contact = state.foot_contact
        first_contact = (self.feet_air_time_s > 0) & contact
        self.feet_air_time_s += self.step_dt
        air_time_at_touchdown = self.feet_air_time_s.clone()
        self.feet_air_time_s *= ~contact
        ctx = RewardContext(
            cfg=self.cfg.rewards,
            terminated=self.terminated,
            first_contact=first_contact,
            air_time_at_touchdown_s=air_time_at_touchdown,
            soft_joint_limits_rad=self.soft_joint_limits,
            small_command_threshold=self.cfg.commands.small_command_threshold,
        )
        total = torch.zeros(self.num_envs)
        for name, weight in self.reward_weights.items():
            value = REWARD_TERMS[name](state, ctx) * (weight * self.step_dt)
            self.episode_sums[name] += value
            total += value
        self.episode_tracking["lin_vel_error"] += torch.linalg.norm(
            state.base_lin_vel_b[:, :2] - state.velocity_command[:, :2], dim=1
        )
        self.episode_tracking["yaw_rate_error"] += torch.abs(state.base_ang_vel_b[:, 2] - state.velocity_command[:, 2])
        # a diverged simulation's numbers are garbage: give it the termination penalty only
        total = torch.where(self.nonfinite, torch.full_like(total, self.cfg.rewards.termination * self.step_dt), total)
        return torch.nan_to_num(total)

    def _episode_log(self, ids: np.ndarray) -> dict:
        """Per-episode means over the environments that end now, for rsl_rl's logger."""
        log: dict[str, torch.Tensor | float] = {}
        if len(ids) == 0:
            return log
        t = torch.from_numpy(ids)
        seconds = (self.episode_length_buf[t].float() * self.step_dt).clamp(min=self.step_dt)
        for name, sums in self.episode_sums.items():
            log[f"Episode_Reward/{name}"] = torch.mean(sums[t] / seconds)
        steps = self.episode_length_buf[t].float().clamp(min=1)
        for name, sums in self.episode_tracking.items():
            log[f"Metrics/{name}"] = torch.mean(sums[t] / steps)
        for name, flags in self.failure_reasons.items():
            log[f"Episode_Termination/{name}"] = flags[t].float().sum()
        log["Episode_Termination/time_out"] = self.time_outs[t].float().sum()
        log["Episode_Termination/nonfinite"] = self.nonfinite[t].float().sum()
        return log

    def _finished_episodes(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Per-environment results of the episodes that end this step (read by evaluation)."""
        t = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        steps = self.episode_length_buf[t].float().clamp(min=1)
        return {
            "ids": np.asarray(ids, dtype=np.int64),
            "length_s": (self.episode_length_buf[t].float() * self.step_dt).numpy(),
            "fell": (self.terminated[t] | self.nonfinite[t]).numpy(),
            "lin_vel_error_sum": self.episode_tracking["lin_vel_error"][t].numpy().copy(),
            "yaw_rate_error_sum": self.episode_tracking["yaw_rate_error"][t].numpy().copy(),
            "steps": steps.numpy(),
        }

    def set_velocity_command(self, command: torch.Tensor | list[float]) -> None:
        """Hold a fixed command in every environment (play, eval scripts); no resampling."""
        self.fixed_command = torch.as_tensor(command, dtype=torch.float32)
        self.commands[:] = self.fixed_command
        self.command_timer_s[:] = float("inf")

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
        self.feet_air_time_s[t] = 0.0
        for sums in list(self.episode_sums.values()) + list(self.episode_tracking.values()):
            sums[t] = 0.0
        self._resample_commands(t)
        push = self.cfg.randomization.push_interval_s
        self.push_timer_s[t] = _uniform(push.low, push.high, (len(t),), self.generator)

    def _write_initial_state(self, ids: np.ndarray) -> None:
        cfg, count = self.cfg.randomization, len(ids)
        b, d = self.base_qpos, self.base_dof
        yaw = _range_or_zero(cfg.initial_yaw_rad, count, self.generator)
        self.qpos[ids, b : b + 3] = self.initial_base_pos
        self.qpos[ids, b + 3 : b + 7] = yaw_quat(yaw).double().numpy()
        offset = _range_or_zero(cfg.initial_joint_pos_offset_rad, (count, self.num_actions), self.generator)
        joint_pos = np.clip(self.spec.default_joint_pos + offset.double().numpy(), *self.joint_range.T)
        self.qpos[np.ix_(ids, self.qpos_ids)] = joint_pos
        self.qvel[ids] = 0.0
        velocity = _range_or_zero(cfg.initial_base_velocity_m_s, (count, 2), self.generator)
        self.qvel[ids, d : d + 2] = velocity.double().numpy()
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
        for name in self.cfg.observations.critic_extra:
            if name == "randomization":
                critic_parts.append(self.randomizer.critic_features_t)
            else:
                critic_parts.append(CRITIC_TERMS[name](self.state))
        return {"policy": history.reshape(self.num_envs, -1).clone(), "critic": torch.cat(critic_parts, dim=1)}

    def _policy_frame(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One policy frame without and with sensor noise (noise only in simulation)."""
        clean, noisy = [], []
        use_noise = self.cfg.randomization.observation_noise
        for term in self.cfg.observations.policy:
            value = POLICY_TERMS[term.name](self.state)
            clean.append(torch.clamp(value * term.scale, -term.clip, term.clip))
            if use_noise and term.noise > 0:
                value = value + _uniform(-term.noise, term.noise, value.shape, self.generator)
            noisy.append(torch.clamp(value * term.scale, -term.clip, term.clip))
        return torch.cat(clean, dim=1), torch.cat(noisy, dim=1)

    def observation_layout(self) -> list[tuple[str, int, float, float]]:
        """(term, dim, scale, clip) of one policy frame, in order."""
        return [(t.name, term_dim(t.name, self.num_actions), t.scale, t.clip) for t in self.cfg.observations.policy]

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


def _uniform(low: float, high: float, shape, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator)


def _range_or_zero(term, shape, generator: torch.Generator) -> torch.Tensor:
    if not term.enabled:
        return torch.zeros(shape)
    return _uniform(term.low, term.high, shape, generator)
