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

from sim.config_io import to_dict
from sim.robot_spec import RobotSpec, SpecError, actuator_ids, joint_dof_ids
from sim.tasks.config import RandomizationConfig, Range

# terms whose values the critic sees, with the number of values per environment
CRITIC_TERMS = (
    "foot_friction",
    "trunk_added_mass_kg",
    "trunk_com_offset_m",
    "kp_scale",
    "kd_scale",
    "effort_limit_scale",
    "action_latency_s",
)


class DomainRandomizer:
    """Samples and applies the randomization terms of one batch of simulations."""

    def __init__(
        self,
        batch: mujoco.batch.Batch,
        spec: RobotSpec,
        cfg: RandomizationConfig,
        rng: np.random.Generator,
    ) -> None:
        self.batch = batch
        self.spec = spec
        self.cfg = cfg
        self.rng = rng
        model = batch.model
        self.num_envs = batch.nsim
        self.num_joints = spec.num_joints
        self.actuators = actuator_ids(model, spec)
        self.dofs = joint_dof_ids(model, spec)
        self.foot_geoms = np.array([model.geom(name).id for name in spec.feet])
        self.trunk = model.body(spec.base_body).id
        self.links = np.array(
            [b for b in range(1, model.nbody) if b != self.trunk and _is_descendant(model, b, self.trunk)]
        )
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
        }
        n, j = self.num_envs, self.num_joints
        self.params: dict[str, np.ndarray] = {
            "foot_friction": np.full((n, 1), self.nominal["geom_friction"][self.foot_geoms[0], 0]),
            "trunk_added_mass_kg": np.zeros((n, 1)),
            "link_mass_scale": np.ones((n, len(self.links))),
            "trunk_com_offset_m": np.zeros((n, 3)),
            "kp_scale": np.ones((n, j)),
            "kd_scale": np.ones((n, j)),
            "effort_limit_scale": np.ones((n, 1)),
            "joint_damping_scale": np.ones((n, j)),
            "joint_armature_scale": np.ones((n, j)),
            "joint_friction_loss_scale": np.ones((n, j)),
            "action_latency_s": np.zeros((n, 1)),
            "encoder_offset_rad": np.zeros((n, j)),
            "gyro_bias_rad_s": np.zeros((n, 3)),
            "gravity_bias": np.zeros((n, 3)),
        }
        self._refresh_tensors()
        self._check_latency_capacity(model)
        # expand every field once so that later writes touch only the reset rows
        for name in self.nominal:
            batch.expand(name)

    def _check_latency_capacity(self, model: mujoco.MjModel) -> None:
        latency = self.cfg.action_latency_s
        if not latency.enabled or latency.high <= 0:
            return
        samples = model.actuator_history[self.actuators, 0]
        needed = int(np.ceil(latency.high / model.opt.timestep)) + 1
        if samples.min() < needed:
            raise SpecError(
                f"{self.spec.mjcf_path}: action latency up to {latency.high} s needs nsample >= {needed} "
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
        nominal_friction = self.nominal["geom_friction"][self.foot_geoms[0], 0]
        p = self.params
        p["foot_friction"][ids] = self._uniform(cfg.foot_friction, c, 1, nominal_friction)
        p["trunk_added_mass_kg"][ids] = self._uniform(cfg.trunk_added_mass_kg, c, 1, 0.0)
        p["link_mass_scale"][ids] = self._uniform(cfg.link_mass_scale, c, len(self.links), 1.0)
        p["trunk_com_offset_m"][ids] = self._uniform(cfg.trunk_com_offset_m, c, 3, 0.0)
        p["kp_scale"][ids] = self._uniform(cfg.kp_scale, c, j, 1.0)
        p["kd_scale"][ids] = self._uniform(cfg.kd_scale, c, j, 1.0)
        p["effort_limit_scale"][ids] = self._uniform(cfg.effort_limit_scale, c, 1, 1.0)
        p["joint_damping_scale"][ids] = self._uniform(cfg.joint_damping_scale, c, j, 1.0)
        p["joint_armature_scale"][ids] = self._uniform(cfg.joint_armature_scale, c, j, 1.0)
        p["joint_friction_loss_scale"][ids] = self._uniform(cfg.joint_friction_loss_scale, c, j, 1.0)
        p["action_latency_s"][ids] = self._uniform(cfg.action_latency_s, c, 1, 0.0)
        p["encoder_offset_rad"][ids] = self._uniform(cfg.encoder_offset_rad, c, j, 0.0)
        p["gyro_bias_rad_s"][ids] = self._uniform(cfg.gyro_bias_rad_s, c, 3, 0.0)
        p["gravity_bias"][ids] = self._uniform(cfg.gravity_bias, c, 3, 0.0)
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
        trunk_mass = nom["body_mass"][self.trunk] + p["trunk_added_mass_kg"][ids, 0]
        mass[ids, self.trunk] = trunk_mass
        inertia[ids, self.trunk] = (
            nom["body_inertia"][self.trunk] * (trunk_mass / nom["body_mass"][self.trunk])[:, None]
        )
        ipos[ids, self.trunk] = nom["body_ipos"][self.trunk] + p["trunk_com_offset_m"][ids]
        scale = p["link_mass_scale"][ids]
        mass[rows, self.links] = nom["body_mass"][self.links] * scale
        inertia[rows, self.links] = nom["body_inertia"][self.links] * scale[:, :, None]

        kp = self.spec.kp * p["kp_scale"][ids]
        kd = self.spec.kd * p["kd_scale"][ids]
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
        # masses, inertias and armature feed constants that mj_setConst derives
        b.set_const(ids.astype(np.int32))

    def critic_features(self) -> np.ndarray:
        """The sampled physical parameters, centred and scaled to about [-1, 1], (num_envs, k)."""
        columns = []
        for name in CRITIC_TERMS:
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
