"""The quadruped locomotion env: velocity commands on flat ground (rsl_rl adapter: policies/rsl_rl_env.py).

The batched simulation, actions, observations and reset machinery are shared
with the other tasks (sim/batched_env.py); this file holds what is locomotion:
the floating base and its IMU, foot contacts, velocity commands, pushes, the
reward and termination terms of sim/terms/rewards.py and terminations.py.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from sim.batched_env import BatchedRobotEnv, range_or_zero, uniform
from sim.robot_spec import SpecError
from sim.rotations import projected_gravity, quat_rotate_inverse, yaw_quat
from sim.terms.commands import sample_velocity_commands
from sim.terms.observations import CRITIC_TERMS
from sim.terms.rewards import REWARD_TERMS, RewardContext, active_reward_terms
from sim.terms.state import RobotState
from sim.terms.terminations import FAILURE_TERMS


class LocomotionEnv(BatchedRobotEnv):
    """Batched simulation of `cfg.num_envs` copies of one legged robot on flat ground."""

    # ----------------------------------------------------------------- set-up
    def _resolve_task_indices(self) -> None:
        model, spec = self.model, self.spec
        if not spec.floating_base:
            raise SpecError(
                f"{spec.spec_path}: a locomotion task needs a floating-base robot (base_body, imu_site, feet)"
            )
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
        self.foot_sensor_adr = torch.as_tensor([self._touch_sensor_adr(model.site(f).id) for f in spec.feet])
        trunk_sites = [s for s in range(model.nsite) if model.site_bodyid[s] == base.id]
        trunk_touch = [a for a in (self._touch_sensor_adr(s, required=False) for s in trunk_sites) if a is not None]
        if not trunk_touch:
            raise SpecError(f"{spec.mjcf_path}: needs a touch sensor on a site of '{spec.base_body}'")
        self.trunk_sensor_adr = trunk_touch[0]
        self.initial_base_pos = torch.as_tensor(model.qpos0[self.base_qpos : self.base_qpos + 3])

    def _touch_sensor_adr(self, site_id: int, required: bool = True) -> int | None:
        model = self.model
        for s in range(model.nsensor):
            if model.sensor_type[s] == mujoco.mjtSensor.mjSENS_TOUCH and model.sensor_objid[s] == site_id:
                return int(model.sensor_adr[s])
        if required:
            raise SpecError(f"{self.spec.mjcf_path}: site '{model.site(site_id).name}' needs a touch sensor")
        return None

    def _allocate_task_buffers(self) -> None:
        n, feet = self.num_envs, len(self.spec.feet)
        self.commands = torch.zeros(n, 3)
        self.fixed_command: torch.Tensor | None = None
        self.command_timer_s = torch.zeros(n)
        self.push_timer_s = torch.zeros(n)
        self.feet_air_time_s = torch.zeros(n, feet)
        self.episode_tracking = {"lin_vel_error": torch.zeros(n), "yaw_rate_error": torch.zeros(n)}

    def critic_terms(self) -> dict:
        return CRITIC_TERMS

    def active_rewards(self) -> dict[str, float]:
        return active_reward_terms(self.cfg.rewards)

    # --------------------------------------------------------------- physics
    def _before_physics(self) -> None:
        """Pushes: a random horizontal base velocity change every push_interval_s."""
        cfg = self.cfg.randomization
        if not cfg.push_interval_s.enabled:
            return
        self.push_timer_s -= self.step_dt
        due = torch.nonzero(self.push_timer_s <= 0).flatten()
        if len(due) == 0:
            return
        speed = uniform(cfg.push_velocity_m_s.low, cfg.push_velocity_m_s.high, (len(due),), self.generator)
        heading = uniform(-math.pi, math.pi, (len(due),), self.generator)
        push = torch.stack([speed * torch.cos(heading), speed * torch.sin(heading)], dim=1)
        self.qvel[due, self.base_dof : self.base_dof + 2] += push.to(self.qvel.dtype)
        self.push_timer_s[due] = uniform(cfg.push_interval_s.low, cfg.push_interval_s.high, (len(due),), self.generator)

    def _read_state(self) -> RobotState:
        qpos, qvel, joint_vel = self._read_joint_state()
        sensors = self.sensordata.float()
        randomizer = self.randomizer
        b = self.base_qpos
        quat = qpos[:, b + 3 : b + 7]
        gravity = projected_gravity(quat)
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
            joint_torque_nm=self.actuator_force[:, self.actuator_ids].float(),
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
    def _after_rewards(self) -> None:
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
        self.command_timer_s[ids] = cfg.resample_interval_s * uniform(0.8, 1.2, (len(ids),), self.generator)

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
        total = self._weighted_rewards(REWARD_TERMS, state, ctx)
        self.episode_tracking["lin_vel_error"] += torch.linalg.norm(
            state.base_lin_vel_b[:, :2] - state.velocity_command[:, :2], dim=1
        )
        self.episode_tracking["yaw_rate_error"] += torch.abs(state.base_ang_vel_b[:, 2] - state.velocity_command[:, 2])
        return total

    def _episode_log(self, t: torch.Tensor) -> dict:
        """Per-episode means over the environments that end now, for rsl_rl's logger."""
        if len(t) == 0:
            return {}
        log: dict[str, torch.Tensor | float] = self._reward_log(t)
        steps = self.episode_length_buf[t].float().clamp(min=1)
        for name, sums in self.episode_tracking.items():
            log[f"Metrics/{name}"] = torch.mean(sums[t] / steps)
        for name, flags in self.failure_reasons.items():
            log[f"Episode_Termination/{name}"] = flags[t].float().sum()
        log["Episode_Termination/time_out"] = self.time_outs[t].float().sum()
        log["Episode_Termination/nonfinite"] = self.nonfinite[t].float().sum()
        return log

    def _finished_episodes(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-environment results of the episodes that end this step (read by evaluation)."""
        return {
            "ids": t,
            "length_s": self.episode_length_buf[t].float() * self.step_dt,
            "fell": self.terminated[t] | self.nonfinite[t],
            "lin_vel_error_sum": self.episode_tracking["lin_vel_error"][t],
            "yaw_rate_error_sum": self.episode_tracking["yaw_rate_error"][t],
            "steps": self.episode_length_buf[t].float().clamp(min=1),
        }

    def summarize_episodes(self, episodes: dict[str, np.ndarray]) -> dict:
        """Evaluation metrics over one _finished_episodes row per episode."""
        total_steps = max(float(episodes["steps"].sum()), 1.0)
        return {
            "fall_rate": float(episodes["fell"].mean()),
            "lin_vel_error_m_s": float(episodes["lin_vel_error_sum"].sum() / total_steps),
            "yaw_rate_error_rad_s": float(episodes["yaw_rate_error_sum"].sum() / total_steps),
            "episode_length_s": float(episodes["length_s"].mean()),
        }

    def set_velocity_command(self, command: torch.Tensor | list[float]) -> None:
        """Hold a fixed command in every environment (play, eval scripts); no resampling."""
        self.fixed_command = torch.as_tensor(command, dtype=torch.float32, device=self.device)
        self.commands[:] = self.fixed_command
        self.command_timer_s[:] = float("inf")

    # ----------------------------------------------------------------- reset
    def _reset_task(self, t: torch.Tensor) -> None:
        self.feet_air_time_s[t] = 0.0
        for sums in self.episode_tracking.values():
            sums[t] = 0.0
        self._resample_commands(t)
        push = self.cfg.randomization.push_interval_s
        self.push_timer_s[t] = uniform(push.low, push.high, (len(t),), self.generator)

    def _write_initial_state(self, ids: torch.Tensor) -> None:
        cfg, count = self.cfg.randomization, len(ids)
        b, d = self.base_qpos, self.base_dof
        yaw = range_or_zero(cfg.initial_yaw_rad, count, self.generator)
        self.qpos[ids, b : b + 3] = self.initial_base_pos.to(self.qpos.dtype)
        self.qpos[ids, b + 3 : b + 7] = yaw_quat(yaw).to(self.qpos.dtype)
        offset = range_or_zero(cfg.initial_joint_pos_offset_rad, (count, self.num_actions), self.generator)
        self._write_initial_joints(ids, offset.double())
        velocity = range_or_zero(cfg.initial_base_velocity_m_s, (count, 2), self.generator)
        self.qvel[ids, d : d + 2] = velocity.to(self.qvel.dtype)
