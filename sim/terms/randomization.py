"""Domain randomization through per-simulation model fields of the backend (no recompilation).

Each term of RandomizationConfig is sampled per environment at reset, with the
env's torch generator on the backend's device. Model terms are written into the
backend's per-simulation model fields (sim/backends/); sensor and actuation
terms (encoder offset, IMU bias) are kept here for the env to apply. The sampled
values stay in `params` (float64 tensors, one row per environment) so that the
critic and the tests can read them.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
import torch

from sim.backends.base import SimBackend
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
# the model fields the randomizer writes: each simulation holds its own copy
RANDOMIZED_MODEL_FIELDS = (
    "geom_friction",
    "body_mass",
    "body_inertia",
    "body_ipos",
    "actuator_gainprm",
    "actuator_biasprm",
    "actuator_forcerange",
    "dof_damping",
    "dof_armature",
    "dof_frictionloss",
    "actuator_delay",
    "geom_size",
    "geom_rbound",
    "geom_aabb",
    "cam_pos",
    "cam_quat",
    "light_pos",
    "light_diffuse",
)


class DomainRandomizer:
    """Samples and applies the randomization terms of one backend's simulations."""

    def __init__(
        self,
        backend: SimBackend,
        spec: RobotSpec,
        cfg: RandomizationConfig,
        generator: torch.Generator,
        object_geom: str | None = None,
        critic_terms: tuple[str, ...] = CRITIC_TERMS,
        robot_params: RobotParams | None = None,
    ) -> None:
        self.backend = backend
        self.spec = spec
        # fitted parameters move the nominal robot and the centre of the ranges (centre_randomization)
        self.cfg = centre_randomization(cfg, robot_params)
        kp, kd = (spec.kp, spec.kd) if robot_params is None else robot_params.nominal_gains(spec)
        self.nominal_delay_s = 0.0 if robot_params is None or robot_params.delay_s is None else robot_params.delay_s
        self.generator = generator
        self.device = backend.device
        self.physics_dt_s = float(backend.model.opt.timestep)
        self.latency_step_range = whole_steps_within(self.cfg.action_latency_s, self.physics_dt_s)
        self.critic_terms = critic_terms
        model = backend.model
        self.num_envs = backend.num_envs
        self.num_joints = spec.num_joints
        self.kp, self.kd = self._tensor(kp), self._tensor(kd)
        self.effort_limit = self._tensor(spec.effort_limit)
        self.actuators = self._index(actuator_ids(model, spec))
        self.dofs = self._index(joint_dof_ids(model, spec))
        foot_geoms = [model.geom(name).id for name in spec.feet]
        self.foot_geoms = self._index(foot_geoms)
        # host floats: reading them from device tensors at every reset would synchronise with a GPU
        self.nominal_foot_friction = float(model.geom_friction[foot_geoms[0], 0]) if foot_geoms else 0.0
        # the trunk of a legged robot; the fixed base of an arm (the body its first joint hangs from)
        self.trunk = model.body(spec.base_body).id if spec.floating_base else fixed_base_body(model, spec)
        self.links = self._index(
            [b for b in range(1, model.nbody) if b != self.trunk and _is_descendant(model, b, self.trunk)]
        )
        self.object_geom = model.geom(object_geom).id if object_geom else None
        self.object_body = int(model.geom_bodyid[self.object_geom]) if object_geom else None
        self.cameras = self._index([model.camera(name).id for name in spec.cameras])
        self.lights = self._index(range(model.nlight))
        self._check_terms_apply()
        # nominal values, read once from the compiled model
        self.nominal = {name: self._tensor(getattr(model, name)) for name in RANDOMIZED_MODEL_FIELDS}
        n, j = self.num_envs, self.num_joints
        shapes_and_neutral = {
            "foot_friction": ((n, 1), self.nominal_foot_friction),
            "trunk_added_mass_kg": ((n, 1), 0.0),
            "link_mass_scale": ((n, len(self.links)), 1.0),
            "trunk_com_offset_m": ((n, 3), 0.0),
            "kp_scale": ((n, j), 1.0),
            "kd_scale": ((n, j), 1.0),
            "effort_limit_scale": ((n, 1), 1.0),
            "joint_damping_scale": ((n, j), 1.0),
            "joint_armature_scale": ((n, j), 1.0),
            "joint_friction_loss_scale": ((n, j), 1.0),
            "action_latency_s": ((n, 1), self.nominal_delay_s),
            "encoder_offset_rad": ((n, j), 0.0),
            "gyro_bias_rad_s": ((n, 3), 0.0),
            "gravity_bias": ((n, 3), 0.0),
            "object_size_scale": ((n, 1), 1.0),
            "object_mass_kg": ((n, 1), 0.0),
            "object_friction": ((n, 1), 0.0),
            "camera_position_offset_m": ((n, len(self.cameras), 3), 0.0),
            "camera_rotation_rad": ((n, len(self.cameras), 3), 0.0),
            "light_diffuse_scale": ((n, len(self.lights)), 1.0),
            "light_position_offset_m": ((n, len(self.lights), 3), 0.0),
        }
        self.params: dict[str, torch.Tensor] = {
            name: torch.full(shape, neutral, dtype=torch.float64, device=self.device)
            for name, (shape, neutral) in shapes_and_neutral.items()
        }
        if self.object_body is not None:
            p = self.params
            p["object_mass_kg"][:] = self.nominal["body_mass"][self.object_body]
            p["object_friction"][:] = self.nominal["geom_friction"][self.object_geom, 0]
        self._refresh_tensors()
        self._check_latency_capacity(model)

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)

    def _index(self, ids) -> torch.Tensor:
        return torch.as_tensor(np.asarray(list(ids), dtype=np.int64), device=self.device)

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
        samples = model.actuator_history[actuator_ids(model, self.spec), 0]
        needed = int(np.ceil(longest_s / model.opt.timestep)) + 1
        if samples.min() < needed:
            raise SpecError(
                f"{self.spec.mjcf_path}: action latency up to {longest_s} s needs nsample >= {needed} "
                f"on every actuator (found {samples.min()})"
            )

    def _uniform(self, term: Range, count: int, width: int, neutral: float) -> torch.Tensor:
        if not term.enabled:
            return torch.full((count, width), neutral, dtype=torch.float64, device=self.device)
        draw = torch.rand((count, width), generator=self.generator, dtype=torch.float64, device=self.device)
        return term.low + (term.high - term.low) * draw

    def _latency_steps(self, count: int) -> torch.Tensor:
        """Action latencies (s) drawn as whole physics steps, uniformly from `latency_step_range`."""
        if not self.cfg.action_latency_s.enabled:
            return self._uniform(self.cfg.action_latency_s, count, 1, self.nominal_delay_s)
        fewest, most = self.latency_step_range
        steps = torch.randint(fewest, most + 1, (count, 1), generator=self.generator, device=self.device)
        return steps.double() * self.physics_dt_s

    def sample(self, ids: torch.Tensor) -> None:
        """Draw new values for the environments `ids` and write them into the model fields."""
        c, cfg, j = len(ids), self.cfg, self.num_joints
        if c == 0:
            return
        p = self.params
        p["foot_friction"][ids] = self._uniform(cfg.foot_friction, c, 1, self.nominal_foot_friction)
        p["trunk_added_mass_kg"][ids] = self._uniform(cfg.trunk_added_mass_kg, c, 1, 0.0)
        p["link_mass_scale"][ids] = self._uniform(cfg.link_mass_scale, c, len(self.links), 1.0)
        p["trunk_com_offset_m"][ids] = self._uniform(cfg.trunk_com_offset_m, c, 3, 0.0)
        p["kp_scale"][ids] = self._uniform(cfg.kp_scale, c, j, 1.0)
        p["kd_scale"][ids] = self._uniform(cfg.kd_scale, c, j, 1.0)
        p["effort_limit_scale"][ids] = self._uniform(cfg.effort_limit_scale, c, 1, 1.0)
        p["joint_damping_scale"][ids] = self._uniform(cfg.joint_damping_scale, c, j, 1.0)
        p["joint_armature_scale"][ids] = self._uniform(cfg.joint_armature_scale, c, j, 1.0)
        p["joint_friction_loss_scale"][ids] = self._uniform(cfg.joint_friction_loss_scale, c, j, 1.0)
        p["action_latency_s"][ids] = self._latency_steps(c)
        p["encoder_offset_rad"][ids] = self._uniform(cfg.encoder_offset_rad, c, j, 0.0)
        p["gyro_bias_rad_s"][ids] = self._uniform(cfg.gyro_bias_rad_s, c, 3, 0.0)
        p["gravity_bias"][ids] = self._uniform(cfg.gravity_bias, c, 3, 0.0)
        if self.object_body is not None:
            p["object_size_scale"][ids] = self._uniform(cfg.object_size_scale, c, 1, 1.0)
            model = self.backend.model
            nominal_mass = float(model.body_mass[self.object_body])
            p["object_mass_kg"][ids] = self._uniform(cfg.object_mass_kg, c, 1, nominal_mass)
            nominal_friction = float(model.geom_friction[self.object_geom, 0])
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
        self.encoder_offset_t = self.params["encoder_offset_rad"].float()
        self.gyro_bias_t = self.params["gyro_bias_rad_s"].float()
        self.gravity_bias_t = self.params["gravity_bias"].float()
        self.critic_features_t = self.critic_features().float()

    def _field(self, name: str) -> torch.Tensor:
        return self.backend.model_field(name)

    def _write_model_fields(self, ids: torch.Tensor) -> None:
        p, nom = self.params, self.nominal
        rows = ids[:, None]
        _put(self._field("geom_friction"), (rows, self.foot_geoms, 0), p["foot_friction"][ids])

        mass, inertia, ipos = self._field("body_mass"), self._field("body_inertia"), self._field("body_ipos")
        # a fixed base's mass does nothing; the trunk terms are zero there (checked at start)
        trunk_mass = nom["body_mass"][self.trunk] + p["trunk_added_mass_kg"][ids, 0]
        _put(mass, (ids, self.trunk), trunk_mass)
        _put(
            inertia,
            (ids, self.trunk),
            nom["body_inertia"][self.trunk] * (trunk_mass / nom["body_mass"][self.trunk])[:, None],
        )
        _put(ipos, (ids, self.trunk), nom["body_ipos"][self.trunk] + p["trunk_com_offset_m"][ids])
        scale = p["link_mass_scale"][ids]
        _put(mass, (rows, self.links), nom["body_mass"][self.links] * scale)
        _put(inertia, (rows, self.links), nom["body_inertia"][self.links] * scale[:, :, None])

        kp = self.kp * p["kp_scale"][ids]
        kd = self.kd * p["kd_scale"][ids]
        gain, bias = self._field("actuator_gainprm"), self._field("actuator_biasprm")
        _put(gain, (rows, self.actuators, 0), kp)
        _put(bias, (rows, self.actuators, 1), -kp)
        _put(bias, (rows, self.actuators, 2), -kd)
        limit = self.effort_limit * p["effort_limit_scale"][ids]
        forcerange = self._field("actuator_forcerange")
        _put(forcerange, (rows, self.actuators, 0), -limit)
        _put(forcerange, (rows, self.actuators, 1), limit)

        dofs = self.dofs
        _put(self._field("dof_damping"), (rows, dofs), nom["dof_damping"][dofs] * p["joint_damping_scale"][ids])
        _put(self._field("dof_armature"), (rows, dofs), nom["dof_armature"][dofs] * p["joint_armature_scale"][ids])
        _put(
            self._field("dof_frictionloss"),
            (rows, dofs),
            nom["dof_frictionloss"][dofs] * p["joint_friction_loss_scale"][ids],
        )
        _put(self._field("actuator_delay"), (rows, self.actuators), p["action_latency_s"][ids])
        if self.object_body is not None:
            self._write_object(ids)
        self._write_cameras_and_lights(ids)
        # masses, inertias and armature feed constants that mj_setConst derives
        self.backend.set_const(ids)

    def _write_object(self, ids: torch.Tensor) -> None:
        """Cube size (a uniform scale), mass with the matching inertia, and friction."""
        p, nom, geom, body = self.params, self.nominal, self.object_geom, self.object_body
        scale = p["object_size_scale"][ids]
        _put(self._field("geom_size"), (ids, geom), nom["geom_size"][geom] * scale)
        _put(self._field("geom_rbound"), (ids, geom), nom["geom_rbound"][geom] * scale[:, 0])
        _put(self._field("geom_aabb"), (ids, geom), nom["geom_aabb"][geom] * scale)
        mass = p["object_mass_kg"][ids, 0]
        _put(self._field("body_mass"), (ids, body), mass)
        # a solid box: I = m (b^2 + c^2) / 12 per axis, with full edge lengths
        edges_sq = torch.square(2.0 * nom["geom_size"][geom] * scale)
        axes = torch.stack(
            [edges_sq[:, 1] + edges_sq[:, 2], edges_sq[:, 0] + edges_sq[:, 2], edges_sq[:, 0] + edges_sq[:, 1]], dim=1
        )
        _put(self._field("body_inertia"), (ids, body), mass[:, None] * axes / 12.0)
        _put(self._field("geom_friction"), (ids, geom, 0), p["object_friction"][ids, 0])

    def _write_cameras_and_lights(self, ids: torch.Tensor) -> None:
        """Camera pose (offset and a small rotation about each axis) and light brightness and position."""
        p, nom, rows = self.params, self.nominal, ids[:, None]
        if len(self.cameras):
            cams = self.cameras
            _put(self._field("cam_pos"), (rows, cams), nom["cam_pos"][cams] + p["camera_position_offset_m"][ids])
            turn = rotation_vector_quat(p["camera_rotation_rad"][ids].reshape(-1, 3))
            nominal_quat = nom["cam_quat"][cams].expand(len(ids), len(cams), 4).reshape(-1, 4)
            _put(self._field("cam_quat"), (rows, cams), quat_multiply(nominal_quat, turn).reshape(len(ids), -1, 4))
        if len(self.lights):
            lights = self.lights
            _put(
                self._field("light_diffuse"),
                (rows, lights),
                nom["light_diffuse"][lights] * p["light_diffuse_scale"][ids][:, :, None],
            )
            _put(self._field("light_pos"), (rows, lights), nom["light_pos"][lights] + p["light_position_offset_m"][ids])

    def critic_features(self) -> torch.Tensor:
        """The sampled physical parameters, centred and scaled to about [-1, 1], (num_envs, k)."""
        columns = []
        for name in self.critic_terms:
            term: Range = getattr(self.cfg, name)
            values = self.params[name]
            middle, half = 0.5 * (term.low + term.high), 0.5 * (term.high - term.low)
            columns.append((values - middle) / half if half > 0 else values * 0.0)
        return torch.cat(columns, dim=1)

    def ranges(self) -> dict:
        """The randomization ranges in force, for run directories, checkpoints and bundles."""
        return to_dict(self.cfg)


def _put(field: torch.Tensor, index: tuple, values: torch.Tensor) -> None:
    """field[index] = values in the field's own dtype (float64 for mujoco.batch, float32 for Warp)."""
    field[index] = values.to(field.dtype)


def _is_descendant(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = model.body_parentid[body]
    return False


def whole_steps_within(term: Range, step_s: float) -> tuple[int, int]:
    """(fewest, most) whole steps of `step_s` within [low, high] s; a range narrower than one step keeps the step
    nearest its middle.

    Action latency is drawn in whole physics steps because the actuators' zero-order-hold history applies a delay
    between two steps as the later one: a uniform draw in seconds acted as whole steps rounded up, and U(0, 20 ms)
    at 5 ms steps never gave a zero delay (a policy trained on it wobbled on a robot with none)."""
    tolerance = 1e-9  # a bound on a whole step may divide to just below or above it in floating point
    fewest = math.ceil(term.low / step_s - tolerance)
    most = math.floor(term.high / step_s + tolerance)
    if fewest > most:
        fewest = most = round(0.5 * (term.low + term.high) / step_s)
    return fewest, most
