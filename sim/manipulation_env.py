"""The vectorized manipulation env: a fixed-base arm reaches a target pose or lifts an object off a table.

It shares the batched simulation, actions, observations and reset machinery
with locomotion (sim/batched_env.py). What is manipulation lives here: the
object (a cube added to the robot's MJCF at build time), target poses, the
terms of sim/terms/manipulation.py and per-episode success:

- reach: success when the episode ends with the end effector within
  position_tolerance_m and orientation_tolerance_rad of the target;
- lift: success once the object has stayed lift_height_m above its resting
  height for lift_hold_s; an object that falls off the table ends the episode.
"""

from __future__ import annotations

import mujoco
import numpy as np
import torch

from sim.batched_env import SOFT_LIMIT_FRACTION, BatchedRobotEnv, range_or_zero
from sim.config_io import ConfigError
from sim.robot_spec import SpecError, fixed_base_body
from sim.rotations import (
    canonical_quat,
    positive_w_quat,
    quat_conjugate,
    quat_multiply,
    quat_rotate,
    quat_rotate_inverse,
    yaw_quat,
)
from sim.terms import manipulation
from sim.terms.arm_state import ArmState
from sim.terms.manipulation import ManipulationContext
from sim.terms.randomization import MANIPULATION_CRITIC_TERMS
from sim.terms.targets import lift_goal_poses, sample_target_poses

GOALS = ("reach", "lift")
OBJECT_BODY = "object"
OBJECT_GEOM = "object_geom"
SPAWN_CLEARANCE_M = 0.001  # the object starts this far above the table and settles


class ManipulationEnv(BatchedRobotEnv):
    """Batched simulation of `cfg.num_envs` copies of an arm, its table and (for lift) an object."""

    # ----------------------------------------------------------------- set-up
    def _build_model(self) -> mujoco.MjModel:
        cfg = self.cfg.manipulation
        if cfg.goal not in GOALS:
            raise ConfigError(f"manipulation.goal {cfg.goal!r} is not one of {GOALS}")
        if cfg.goal == "lift" and not cfg.object.enabled:
            raise ConfigError("manipulation.goal 'lift' needs manipulation.object.enabled=true")
        if self.spec.floating_base or self.spec.ee_site is None:
            raise SpecError(f"{self.spec.spec_path}: a manipulation task needs a fixed-base robot with an ee_site")
        scene = mujoco.MjSpec.from_file(str(self.spec.mjcf_path))
        if cfg.object.enabled:
            _add_cube(scene, cfg.object.size_m, cfg.object.mass_kg, cfg.object.friction)
            _add_finger_contact_sensors(scene, cfg.finger_geoms)
        return scene.compile()

    def _resolve_task_indices(self) -> None:
        model = self.model
        self.ee_site = model.site(self.spec.ee_site).id
        self.ee_body = int(model.site_bodyid[self.ee_site])
        self.ee_offset_quat = torch.tensor(model.site_quat[self.ee_site], dtype=torch.float32)
        self.site_xpos = self.backend.data("site_xpos")
        self.xquat = self.backend.data("xquat")
        # the arm's base frame: the fixed body its first joint hangs from
        base = fixed_base_body(model, self.spec)
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        self.base_pos_w = torch.tensor(data.xpos[base], dtype=torch.float32)
        self.base_quat_w = torch.tensor(data.xquat[base], dtype=torch.float32)
        self.soft_velocity_limits = torch.tensor(SOFT_LIMIT_FRACTION * self.spec.velocity_limit, dtype=torch.float32)
        self.has_object = self.cfg.manipulation.object.enabled
        if self.has_object:
            joint = model.body(OBJECT_BODY).jntadr[0]
            self.object_qpos = int(model.jnt_qposadr[joint])
            self.object_dof = int(model.jnt_dofadr[joint])
            self.object_geom = model.geom(OBJECT_GEOM).id
            self.object_nominal_xy = torch.as_tensor(self.cfg.manipulation.object.position_m, dtype=torch.float64)
            sensors = [model.sensor(_finger_contact_sensor(g)) for g in self.cfg.manipulation.finger_geoms]
            self.finger_contact_adr = torch.as_tensor([int(model.sensor_adr[s.id]) for s in sensors])

    def _randomizer_args(self) -> dict:
        object_geom = OBJECT_GEOM if self.cfg.manipulation.object.enabled else None
        return {"object_geom": object_geom, "critic_terms": MANIPULATION_CRITIC_TERMS}

    def _allocate_task_buffers(self) -> None:
        n = self.num_envs
        self.target_pose = torch.zeros(n, 7)
        self.object_rest_z = torch.zeros(n)
        self.lifted_time_s = torch.zeros(n)
        self.success = torch.zeros(n, dtype=torch.bool)
        self.final_position_error_m = torch.zeros(n)
        self.final_orientation_error_rad = torch.zeros(n)

    def critic_terms(self) -> dict:
        return manipulation.CRITIC_TERMS

    def active_rewards(self) -> dict[str, float]:
        weights = self.cfg.manipulation.rewards
        active = {name: getattr(weights, name) for name in manipulation.REWARD_TERMS if getattr(weights, name) != 0.0}
        needs_object = sorted(set(active) & set(manipulation.OBJECT_REWARD_TERMS))
        if needs_object and not self.has_object:
            raise ConfigError(f"manipulation.rewards {needs_object} need an object: set them to 0 or enable the object")
        return active

    # ------------------------------------------------------------------ state
    def _to_base(self, position_w: torch.Tensor, quat_w: torch.Tensor | None = None):
        """World-frame position (and orientation) into the robot base frame."""
        base_quat = self.base_quat_w.expand(position_w.shape[0], 4)
        position_b = quat_rotate_inverse(base_quat, position_w - self.base_pos_w)
        if quat_w is None:
            return position_b
        return position_b, canonical_quat(quat_multiply(quat_conjugate(base_quat), quat_w))

    def _read_state(self) -> ArmState:
        qpos, qvel, joint_vel = self._read_joint_state()
        joint_pos = qpos[:, self.qpos_ids]
        ee_pos_w = self.site_xpos[:, self.ee_site].float()
        hand_quat_w = self.xquat[:, self.ee_body].float()
        ee_quat_w = quat_multiply(hand_quat_w, self.ee_offset_quat.expand(self.num_envs, 4))
        ee_pos_b, ee_quat_b = self._to_base(ee_pos_w, ee_quat_w)
        state = ArmState(
            joint_pos_rad=joint_pos,
            joint_vel_rad_s=joint_vel,
            measured_joint_pos_rad=joint_pos + self.randomizer.encoder_offset_t,
            default_joint_pos_rad=self.default_joint_pos,
            action=self.actions,
            last_action=self.last_actions,
            ee_pos_b=ee_pos_b,
            ee_quat_b=ee_quat_b,
            target_pose=self.target_pose,
        )
        if self.has_object:
            o, d = self.object_qpos, self.object_dof
            state.object_pos_b, object_quat_b = self._to_base(qpos[:, o : o + 3], qpos[:, o + 3 : o + 7])
            # the cube turns about the vertical by any angle: w >= 0 keeps that continuous
            state.object_quat_b = positive_w_quat(object_quat_b)
            base_quat = self.base_quat_w.expand(self.num_envs, 4)
            state.object_lin_vel_b = quat_rotate_inverse(base_quat, qvel[:, d : d + 3])
            state.object_lift_m = qpos[:, o + 2] - self.object_rest_z
            state.finger_contacts = self.sensordata[:, self.finger_contact_adr] > 0.5
        self.last_joint_vel = joint_vel
        return state

    # ---------------------------------------------------- rewards and success
    def _compute_rewards(self) -> torch.Tensor:
        state, cfg = self.state, self.cfg.manipulation
        self.terminated = torch.zeros(self.num_envs, dtype=torch.bool)
        if cfg.goal == "lift":
            self.terminated = manipulation.object_dropped(state, cfg)
            lifted = manipulation.object_lifted(state, cfg)
            self.lifted_time_s = torch.where(
                lifted, self.lifted_time_s + self.step_dt, torch.zeros_like(self.lifted_time_s)
            )
            # held for lift_hold_s; the half-step margin keeps float sums of step_dt from missing it
            self.success |= self.lifted_time_s >= cfg.lift_hold_s - 0.5 * self.step_dt
        self.time_outs = (self.episode_length_buf >= self.max_episode_length) & ~self.terminated
        self.final_position_error_m = manipulation.ee_position_error_m(state, cfg)
        if cfg.goal == "reach":
            self.success = manipulation.reach_succeeded(state, cfg)
            self.final_orientation_error_rad = manipulation.ee_orientation_error_rad(state)
        context = ManipulationContext(
            cfg=cfg,
            terminated=self.terminated,
            soft_joint_limits_rad=self.soft_joint_limits,
            soft_velocity_limits=self.soft_velocity_limits,
        )
        return self._weighted_rewards(manipulation.REWARD_TERMS, state, context)

    def _episode_success(self, t: torch.Tensor) -> torch.Tensor:
        """Reach counts at a time-out only; lift counts whenever the hold was reached."""
        if self.cfg.manipulation.goal == "reach":
            return self.success[t] & self.time_outs[t]
        return self.success[t]

    def _episode_log(self, t: torch.Tensor) -> dict:
        if len(t) == 0:
            return {}
        log: dict[str, torch.Tensor | float] = self._reward_log(t)
        log["Metrics/success"] = self._episode_success(t).float().mean()
        log["Metrics/ee_position_error_m"] = self.final_position_error_m[t].mean()
        log["Episode_Termination/object_dropped"] = self.terminated[t].float().sum()
        log["Episode_Termination/time_out"] = self.time_outs[t].float().sum()
        log["Episode_Termination/nonfinite"] = self.nonfinite[t].float().sum()
        return log

    def _finished_episodes(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "ids": t,
            "length_s": self.episode_length_buf[t].float() * self.step_dt,
            "success": self._episode_success(t),
            "failed": self.terminated[t] | self.nonfinite[t],
            "final_position_error_m": self.final_position_error_m[t],
            "final_orientation_error_rad": self.final_orientation_error_rad[t],
        }

    def summarize_episodes(self, episodes: dict[str, np.ndarray]) -> dict:
        summary = {
            "success_rate": float(episodes["success"].mean()),
            "failure_rate": float(episodes["failed"].mean()),
            "final_position_error_m": float(np.median(episodes["final_position_error_m"])),
            "episode_length_s": float(episodes["length_s"].mean()),
        }
        if self.cfg.manipulation.goal == "reach":
            summary["final_orientation_error_rad"] = float(np.median(episodes["final_orientation_error_rad"]))
        return summary

    # ----------------------------------------------------------------- reset
    def _reset_task(self, t: torch.Tensor) -> None:
        self.lifted_time_s[t] = 0.0
        self.success[t] = False
        if self.cfg.manipulation.goal == "reach":
            self.target_pose[t] = sample_target_poses(self.cfg.manipulation.target, len(t), self.generator)

    def _write_initial_state(self, ids: torch.Tensor) -> None:
        cfg = self.cfg.randomization
        offset = range_or_zero(cfg.initial_joint_pos_offset_rad, (len(ids), self.num_actions), self.generator)
        self._write_initial_joints(ids, offset.double())
        if self.has_object:
            self._place_object(ids)

    def start_from(self, joint_pos_rad: np.ndarray, object_pose_b: np.ndarray | None = None) -> dict:
        """Reset every simulation to a recorded start (dataset replay): joints as the encoders read them
        (rad, policy order) at rest, the object at [x, y, z (m), qw, qx, qy, qz] in the robot base frame."""
        with self.on_device():
            ids = torch.arange(self.num_envs)
            self._reset_envs(ids)
            encoder_pos = torch.as_tensor(np.asarray(joint_pos_rad, dtype=np.float64))
            true_joint_pos = encoder_pos - self.randomizer.params["encoder_offset_rad"]
            self._write_initial_joints(ids, true_joint_pos - self.default_joint_pos_f64)
            if object_pose_b is not None and self.has_object:
                pose_b = torch.as_tensor(np.asarray(object_pose_b, dtype=np.float32)).expand(self.num_envs, 7)
                base_quat = self.base_quat_w.expand(self.num_envs, 4)
                position_w = self.base_pos_w + quat_rotate(base_quat, pose_b[:, :3])
                quat_w = quat_multiply(base_quat, pose_b[:, 3:] / pose_b[:, 3:].norm(dim=1, keepdim=True))
                # the recorded height is noisy (a cube pushed into the table would jump): rest it on the table
                self._put_object_at_rest(ids, position_w[:, :2].double(), quat_w.double())
            self.backend.forward(ids)
            self.state = self._read_state()
            self._observations = self._compute_observations(reset_ids=ids)
        return self._observations

    def _place_object(self, ids: torch.Tensor) -> None:
        """On the table at the nominal spot plus the randomized offset, any yaw, at rest."""
        cfg, count = self.cfg.randomization, len(ids)
        offset = range_or_zero(cfg.object_position_offset_m, (count, 2), self.generator).double()
        yaw = range_or_zero(cfg.object_yaw_rad, count, self.generator)
        self._put_object_at_rest(ids, self.object_nominal_xy + offset, yaw_quat(yaw).double())

    def _put_object_at_rest(self, ids: torch.Tensor, xy_w: torch.Tensor, quat_w: torch.Tensor) -> None:
        """The object standing on the table at `xy_w` (m) turned by `quat_w`; its lift goal above that spot."""
        o, d, dtype = self.object_qpos, self.object_dof, self.qpos.dtype
        half_height = 0.5 * self.cfg.manipulation.object.size_m * self.randomizer.params["object_size_scale"][ids, 0]
        self.qpos[ids, o : o + 2] = xy_w.to(dtype)
        self.qpos[ids, o + 2] = (half_height + SPAWN_CLEARANCE_M).to(dtype)
        self.qpos[ids, o + 3 : o + 7] = quat_w.to(dtype)
        self.qvel[ids, d : d + 6] = 0.0
        self.object_rest_z[ids] = half_height.float()
        start = torch.cat([self.qpos[ids, o : o + 2].double(), half_height[:, None]], dim=1).float()
        self.target_pose[ids] = lift_goal_poses(self._to_base(start), self.cfg.manipulation.lift_height_m)


def _add_cube(scene: mujoco.MjSpec, size_m: float, mass_kg: float, friction: float) -> None:
    """A free cube; its friction decides its contacts (priority), whatever the fingers' friction."""
    body = scene.worldbody.add_body(name=OBJECT_BODY, pos=[0.5, 0.0, 0.5 * size_m])
    body.add_freejoint(name="object_joint")
    body.add_geom(
        name=OBJECT_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.5 * size_m] * 3,
        mass=mass_kg,
        friction=[friction, 0.005, 0.0001],
        priority=1,
        contype=1,
        conaffinity=1,
        condim=4,
        solref=[0.005, 1.0],
        rgba=[0.85, 0.2, 0.15, 1.0],
    )


def _finger_contact_sensor(finger_geom: str) -> str:
    return f"{finger_geom}_touches_object"


def _add_finger_contact_sensors(scene: mujoco.MjSpec, finger_geoms: list[str]) -> None:
    """One contact sensor per finger geom: 1 while it touches the object, else 0."""
    for finger in finger_geoms:
        if scene.geom(finger) is None:
            raise ConfigError(f"manipulation.finger_geoms: the robot has no geom {finger!r}")
        scene.add_sensor(
            name=_finger_contact_sensor(finger),
            type=mujoco.mjtSensor.mjSENS_CONTACT,
            objtype=mujoco.mjtObj.mjOBJ_GEOM,
            objname=finger,
            reftype=mujoco.mjtObj.mjOBJ_GEOM,
            refname=OBJECT_GEOM,
            intprm=[1 << int(mujoco.mjtConDataField.mjCONDATA_FOUND), 0, 1],
        )
