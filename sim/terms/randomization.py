"""Domain randomization through per-simulation model fields of mujoco.batch (no recompilation).

Each term of RandomizationConfig is sampled per environment at reset. Model
terms are written into Batch.expand()ed fields; sensor and actuation terms
(encoder offset, IMU bias) are kept here for the env to apply. The sampled
values stay in `params` so that the critic and the tests can read them.
"""

from __future__ import annotations

import mujoco
import mujoco.batch
import numpy as np
import torch

from sim.config_io import ConfigError, to_dict
from sim.robot_params import RobotParams, centre_randomization
from sim.robot_spec import RobotSpec, SpecError, actuator_ids, fixed_base_body, joint_dof_ids
from sim.rotations import quat_multiply, rotation_vector_quat
from sim.tasks.config import RandomizationConfig, Range

# terms whose values the critic sees (legged robots)
CRITIC_TERMS = (
    "foot_friction",
    "trunk_added_mass_kg",
    "trunk_com_offset_m",
    "kp_scale",
    "kd_scale",
    "effort_limit_scale",
    "action_latency_s",
)
# the same for a manipulator and its object
MANIPULATION_CRITIC_TERMS = (
    "object_size_scale",
    "object_mass_kg",
    "object_friction",
    "kp_scale",
    "kd_scale",
    "action_latency_s",
)
LEGGED_TERMS = ("foot_friction", "trunk_added_mass_kg", "trunk_com_offset_m")
OBJECT_TERMS = ("object_size_scale", "object_mass_kg", "object_friction")
CAMERA_TERMS = ("camera_position_offset_m", "camera_rotation_rad")
LIGHT_TERMS = ("light_diffuse_scale", "light_position_offset_m")


class DomainRandomizer:
    """Samples and applies the randomization terms of one batch of simulations."""

    def __init__(
        self,
        batch: mujoco.batch.Batch,
        spec: RobotSpec,
        cfg: RandomizationConfig,
        rng: np.random.Generator,
        object_geom: str | None = None,
        critic_terms: tuple[str, ...] = CRITIC_TERMS,
        robot_params: RobotParams | None = None,
    ) -> None:
        self.batch = batch
        self.spec = spec
        # fitted parameters move the nominal robot and the centre of the ranges (centre_randomization)
        self.cfg = centre_randomization(cfg, robot_params)
        self.kp, self.kd = (spec.kp, spec.kd) if robot_params is None else robot_params.nominal_gains(spec)
        self.nominal_delay_s = 0.0 if robot_params is None or robot_params.delay_s is None else robot_params.delay_s
        self.rng = rng
        self.critic_terms = critic_terms
        model = batch.model
        self.num_envs = batch.nsim
        self.num_joints = spec.num_joints
        self.actuators = actuator_ids(model, spec)
        self.dofs = joint_dof_ids(model, spec)
        self.foot_geoms = np.array([model.geom(name).id for name in spec.feet], dtype=int)
        # the trunk of a legged robot; the fixed base of an arm (the body its first joint hangs from)
        self.trunk = model.body(spec.base_body).id if spec.floating_base else fixed_base_body(model, spec)
        self.links = np.array(
            [b for b in range(1, model.nbody) if b != self.trunk and _is_descendant(model, b, self.trunk)]
        )
        self.object_geom = model.geom(object_geom).id if object_geom else None
        self.object_body = int(model.geom_bodyid[self.object_geom]) if object_geom else None
        self.cameras = np.array([model.camera(name).id for name in spec.cameras], dtype=int)
        self.lights = np.arange(model.nlight)
        self._check_terms_apply()
        # nominal values, read once from the compiled model
        self.nominal = {
            "geom_friction": model.geom_friction.copy(),
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "body_ipos": model.body_ipos.copy(),
            "actuator_gainprm": model.actuator_gainprm.copy(),
            "actuator_biasprm": model.actuator_biasprm.copy(),
            "actuator_forcerange": model.actuator_forcerange.copy(),
            "dof_damping": model.dof_damping.copy(),
            "dof_armature": model.dof_armature.copy(),
            "dof_frictionloss": model.dof_frictionloss.copy(),
            "actuator_delay": model.actuator_delay.copy(),
            "geom_size": model.geom_size.copy(),
            "geom_rbound": model.geom_rbound.copy(),
            "geom_aabb": model.geom_aabb.copy(),
            "cam_pos": model.cam_pos.copy(),
            "cam_quat": model.cam_quat.copy(),
            "light_pos": model.light_pos.copy(),
            "light_diffuse": model.light_diffuse.copy(),
        }
        n, j = self.num_envs, self.num_joints
        self.params: dict[str, np.ndarray] = {
            "foot_friction": np.full((n, 1), self._nominal_foot_friction()),
            "trunk_added_mass_kg": np.zeros((n, 1)),
            "link_mass_scale": np.ones((n, len(self.links))),
            "trunk_com_offset_m": np.zeros((n, 3)),
            "kp_scale": np.ones((n, j)),
            "kd_scale": np.ones((n, j)),
            "effort_limit_scale": np.ones((n, 1)),
            "joint_damping_scale": np.ones((n, j)),
            "joint_armature_scale": np.ones((n, j)),
            "joint_friction_loss_scale": np.ones((n, j)),
            "action_latency_s": np.full((n, 1), self.nominal_delay_s),
            "encoder_offset_rad": np.zeros((n, j)),
            "gyro_bias_rad_s": np.zeros((n, 3)),
            "gravity_bias": np.zeros((n, 3)),
            "object_size_scale": np.ones((n, 1)),
            "object_mass_kg": np.zeros((n, 1)),
            "object_friction": np.zeros((n, 1)),
            "camera_position_offset_m": np.zeros((n, len(self.cameras), 3)),
            "camera_rotation_rad": np.zeros((n, len(self.cameras), 3)),
            "light_diffuse_scale": np.ones((n, len(self.lights))),
            "light_position_offset_m": np.zeros((n, len(self.lights), 3)),
        }
        if self.object_body is not None:
            p = self.params
            p["object_mass_kg"][:] = self.nominal["body_mass"][self.object_body]
            p["object_friction"][:] = self.nominal["geom_friction"][self.object_geom, 0]
        self._refresh_tensors()
        self._check_latency_capacity(model)
        # expand every field once so that later writes touch only the reset rows
        for name in self.nominal:
            batch.expand(name)

    def _nominal_foot_friction(self) -> float:
        return float(self.nominal["geom_friction"][self.foot_geoms[0], 0]) if len(self.foot_geoms) else 0.0

    def _check_terms_apply(self) -> None:
        """An enabled term must have something to act on: name the term and what the robot lacks."""
        absent = {
            **{term: "feet and a floating base" for term in LEGGED_TERMS if not self.spec.floating_base},
            **{term: "object (its task places none)" for term in OBJECT_TERMS if self.object_body is None},
            **{term: "cameras in its spec" for term in CAMERA_TERMS if len(self.cameras) == 0},
            **{term: "lights in its MJCF" for term in LIGHT_TERMS if len(self.lights) == 0},
        }
        for term, missing in absent.items():
            if getattr(self.cfg, term).enabled:
                raise ConfigError(
                    f"randomization.{term} is enabled but robot '{self.spec.name}' has no {missing}: "
                    f"set randomization.{term}.enabled=false"
                )

    def _check_latency_capacity(self, model: mujoco.MjModel) -> None:
        latency = self.cfg.action_latency_s
        longest_s = max(latency.high if latency.enabled else 0.0, self.nominal_delay_s)
        if longest_s <= 0:
            return
        samples = model.actuator_history[self.actuators, 0]
        needed = int(np.ceil(longest_s / model.opt.timestep)) + 1
        if samples.min() < needed:
            raise SpecError(
                f"{self.spec.mjcf_path}: action latency up to {longest_s} s needs nsample >= {needed} "
                f"on every actuator (found {samples.min()})"
            )

    def _uniform(self, term: Range, count: int, width: int, neutral: float) -> np.ndarray:
        if not term.enabled:
            return np.full((count, width), neutral)
        return self.rng.uniform(term.low, term.high, size=(count, width))

    def sample(self, ids: np.ndarray) -> None:
        """Draw new values for the environments `ids` and write them into the model fields."""
        c, cfg, j = len(ids), self.cfg, self.num_joints
        if c == 0:
            return
        p = self.params
        p["foot_friction"][ids] = self._uniform(cfg.foot_friction, c, 1, self._nominal_foot_friction())
        p["trunk_added_mass_kg"][ids] = self._uniform(cfg.trunk_added_mass_kg, c, 1, 0.0)
        p["link_mass_scale"][ids] = self._uniform(cfg.link_mass_scale, c, len(self.links), 1.0)
        p["trunk_com_offset_m"][ids] = self._uniform(cfg.trunk_com_offset_m, c, 3, 0.0)
        p["kp_scale"][ids] = self._uniform(cfg.kp_scale, c, j, 1.0)
        p["kd_scale"][ids] = self._uniform(cfg.kd_scale, c, j, 1.0)
        p["effort_limit_scale"][ids] = self._uniform(cfg.effort_limit_scale, c, 1, 1.0)
        p["joint_damping_scale"][ids] = self._uniform(cfg.joint_damping_scale, c, j, 1.0)
        p["joint_armature_scale"][ids] = self._uniform(cfg.joint_armature_scale, c, j, 1.0)
        p["joint_friction_loss_scale"][ids] = self._uniform(cfg.joint_friction_loss_scale, c, j, 1.0)
        p["action_latency_s"][ids] = self._uniform(cfg.action_latency_s, c, 1, self.nominal_delay_s)
        p["encoder_offset_rad"][ids] = self._uniform(cfg.encoder_offset_rad, c, j, 0.0)
        p["gyro_bias_rad_s"][ids] = self._uniform(cfg.gyro_bias_rad_s, c, 3, 0.0)
        p["gravity_bias"][ids] = self._uniform(cfg.gravity_bias, c, 3, 0.0)
        if self.object_body is not None:
            p["object_size_scale"][ids] = self._uniform(cfg.object_size_scale, c, 1, 1.0)
            nominal_mass = self.nominal["body_mass"][self.object_body]
            p["object_mass_kg"][ids] = self._uniform(cfg.object_mass_kg, c, 1, nominal_mass)
            nominal_friction = self.nominal["geom_friction"][self.object_geom, 0]
            p["object_friction"][ids] = self._uniform(cfg.object_friction, c, 1, nominal_friction)
        cameras, lights = len(self.cameras), len(self.lights)
        p["camera_position_offset_m"][ids] = self._uniform(cfg.camera_position_offset_m, c, 3 * cameras, 0.0).reshape(
            c, cameras, 3
        )
        p["camera_rotation_rad"][ids] = self._uniform(cfg.camera_rotation_rad, c, 3 * cameras, 0.0).reshape(
            c, cameras, 3
        )
        p["light_diffuse_scale"][ids] = self._uniform(cfg.light_diffuse_scale, c, lights, 1.0)
        p["light_position_offset_m"][ids] = self._uniform(cfg.light_position_offset_m, c, 3 * lights, 0.0).reshape(
            c, lights, 3
        )
        self._write_model_fields(ids)
        self._refresh_tensors()

    def _refresh_tensors(self) -> None:
        """float32 copies the env reads every step; they change only at reset, so they are made here."""
        self.encoder_offset_t = torch.from_numpy(self.params["encoder_offset_rad"]).float()
        self.gyro_bias_t = torch.from_numpy(self.params["gyro_bias_rad_s"]).float()
        self.gravity_bias_t = torch.from_numpy(self.params["gravity_bias"]).float()
        self.critic_features_t = torch.from_numpy(self.critic_features()).float()

    def _write_model_fields(self, ids: np.ndarray) -> None:
        b, p, nom = self.batch, self.params, self.nominal
        rows = ids[:, None]

        friction = b.expand("geom_friction")
        friction[rows, self.foot_geoms, 0] = p["foot_friction"][ids]

        mass, inertia, ipos = b.expand("body_mass"), b.expand("body_inertia"), b.expand("body_ipos")
        # a fixed base's mass does nothing; the trunk terms are zero there (checked at start)
        trunk_mass = nom["body_mass"][self.trunk] + p["trunk_added_mass_kg"][ids, 0]
        mass[ids, self.trunk] = trunk_mass
        inertia[ids, self.trunk] = (
            nom["body_inertia"][self.trunk] * (trunk_mass / nom["body_mass"][self.trunk])[:, None]
        )
        ipos[ids, self.trunk] = nom["body_ipos"][self.trunk] + p["trunk_com_offset_m"][ids]
        scale = p["link_mass_scale"][ids]
        mass[rows, self.links] = nom["body_mass"][self.links] * scale
        inertia[rows, self.links] = nom["body_inertia"][self.links] * scale[:, :, None]

        kp = self.kp * p["kp_scale"][ids]
        kd = self.kd * p["kd_scale"][ids]
        gain, bias = b.expand("actuator_gainprm"), b.expand("actuator_biasprm")
        gain[rows, self.actuators, 0] = kp
        bias[rows, self.actuators, 1] = -kp
        bias[rows, self.actuators, 2] = -kd
        limit = self.spec.effort_limit * p["effort_limit_scale"][ids]
        forcerange = b.expand("actuator_forcerange")
        forcerange[rows, self.actuators, 0] = -limit
        forcerange[rows, self.actuators, 1] = limit

        b.expand("dof_damping")[rows, self.dofs] = nom["dof_damping"][self.dofs] * p["joint_damping_scale"][ids]
        b.expand("dof_armature")[rows, self.dofs] = nom["dof_armature"][self.dofs] * p["joint_armature_scale"][ids]
        b.expand("dof_frictionloss")[rows, self.dofs] = (
            nom["dof_frictionloss"][self.dofs] * p["joint_friction_loss_scale"][ids]
        )
        b.expand("actuator_delay")[rows, self.actuators] = p["action_latency_s"][ids]
        if self.object_body is not None:
            self._write_object(ids)
        self._write_cameras_and_lights(ids)
        # masses, inertias and armature feed constants that mj_setConst derives
        b.set_const(ids.astype(np.int32))

    def _write_object(self, ids: np.ndarray) -> None:
        """Cube size (a uniform scale), mass with the matching inertia, and friction."""
        b, p, nom, geom, body = self.batch, self.params, self.nominal, self.object_geom, self.object_body
        scale = p["object_size_scale"][ids]
        b.expand("geom_size")[ids, geom] = nom["geom_size"][geom] * scale
        b.expand("geom_rbound")[ids, geom] = nom["geom_rbound"][geom] * scale[:, 0]
        b.expand("geom_aabb")[ids, geom] = nom["geom_aabb"][geom] * scale
        mass = p["object_mass_kg"][ids, 0]
        b.expand("body_mass")[ids, body] = mass
        # a solid box: I = m (b^2 + c^2) / 12 per axis, with full edge lengths
        edges_sq = np.square(2.0 * nom["geom_size"][geom] * scale)
        axes = np.stack(
            [edges_sq[:, 1] + edges_sq[:, 2], edges_sq[:, 0] + edges_sq[:, 2], edges_sq[:, 0] + edges_sq[:, 1]]
        )
        b.expand("body_inertia")[ids, body] = (mass * axes / 12.0).T
        b.expand("geom_friction")[ids, geom, 0] = p["object_friction"][ids, 0]

    def _write_cameras_and_lights(self, ids: np.ndarray) -> None:
        """Camera pose (offset and a small rotation about each axis) and light brightness and position."""
        b, p, nom, rows = self.batch, self.params, self.nominal, ids[:, None]
        if len(self.cameras):
            b.expand("cam_pos")[rows, self.cameras] = nom["cam_pos"][self.cameras] + p["camera_position_offset_m"][ids]
            turn = rotation_vector_quat(torch.from_numpy(p["camera_rotation_rad"][ids].reshape(-1, 3)))
            nominal_quat = torch.from_numpy(
                np.broadcast_to(nom["cam_quat"][self.cameras], (len(ids), len(self.cameras), 4)).reshape(-1, 4).copy()
            )
            b.expand("cam_quat")[rows, self.cameras] = (
                quat_multiply(nominal_quat, turn).numpy().reshape(len(ids), -1, 4)
            )
        if len(self.lights):
            b.expand("light_diffuse")[rows, self.lights] = (
                nom["light_diffuse"][self.lights] * p["light_diffuse_scale"][ids][:, :, None]
            )
            b.expand("light_pos")[rows, self.lights] = nom["light_pos"][self.lights] + p["light_position_offset_m"][ids]

    def critic_features(self) -> np.ndarray:
        """The sampled physical parameters, centred and scaled to about [-1, 1], (num_envs, k)."""
        columns = []
        for name in self.critic_terms:
            term: Range = getattr(self.cfg, name)
            values = self.params[name]
            middle, half = 0.5 * (term.low + term.high), 0.5 * (term.high - term.low)
            columns.append((values - middle) / half if half > 0 else values * 0.0)
        return np.concatenate(columns, axis=1)

    def ranges(self) -> dict:
        """The randomization ranges in force, for run directories, checkpoints and bundles."""
        return to_dict(self.cfg)


def _is_descendant(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = model.body_parentid[body]
    return False
