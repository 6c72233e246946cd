"""Every randomization term, read back from the per-simulation model fields it writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.tasks.config import Range
from sim.vec_env import LocomotionEnv
from tests.conftest import small_config


@pytest.fixture(scope="module")
def env() -> LocomotionEnv:
    return LocomotionEnv(small_config(num_envs=8), seed=3)


def _within(values: np.ndarray, term: Range) -> bool:
    return bool(np.all(values >= term.low - 1e-12) and np.all(values <= term.high + 1e-12))


def _varies(values: np.ndarray) -> bool:
    return float(np.ptp(values)) > 0.0


def _params(env: LocomotionEnv) -> dict[str, np.ndarray]:
    """The randomizer's sampled values as numpy arrays, one row per environment."""
    return {name: value.numpy() for name, value in env.randomizer.params.items()}


def _nominal(env: LocomotionEnv, field: str) -> np.ndarray:
    """The nominal value of a randomized model field, as a numpy array."""
    return env.randomizer.nominal[field].numpy()


def _field(env: LocomotionEnv, field: str) -> np.ndarray:
    """Every simulation's value of a per-simulation model field, (num_envs, ...) numpy."""
    return env.backend.model_field(field).numpy()


def test_foot_friction_read_back(env):
    p, r = _params(env), env.randomizer
    friction = _field(env, "geom_friction")[:, r.foot_geoms.numpy(), 0]
    np.testing.assert_allclose(friction, np.repeat(p["foot_friction"], len(r.foot_geoms), axis=1))
    assert _within(friction, env.cfg.randomization.foot_friction) and _varies(friction)


def test_masses_and_centre_of_mass_read_back(env):
    r, p, cfg = env.randomizer, _params(env), env.cfg.randomization
    links = r.links.numpy()
    mass = _field(env, "body_mass")
    nominal = _nominal(env, "body_mass")
    added = mass[:, r.trunk] - nominal[r.trunk]
    np.testing.assert_allclose(added, p["trunk_added_mass_kg"][:, 0])
    assert _within(added, cfg.trunk_added_mass_kg) and _varies(added)
    scale = mass[:, links] / nominal[links]
    np.testing.assert_allclose(scale, p["link_mass_scale"])
    assert _within(scale, cfg.link_mass_scale) and _varies(scale)
    com = _field(env, "body_ipos")[:, r.trunk] - _nominal(env, "body_ipos")[r.trunk]
    np.testing.assert_allclose(com, p["trunk_com_offset_m"])
    assert _within(com, cfg.trunk_com_offset_m) and _varies(com)


def test_gains_and_effort_limits_read_back(env):
    r, p, spec, cfg = env.randomizer, _params(env), env.spec, env.cfg.randomization
    actuators = r.actuators.numpy()
    gain = _field(env, "actuator_gainprm")[:, actuators, 0]
    bias = _field(env, "actuator_biasprm")[:, actuators]
    np.testing.assert_allclose(gain / spec.kp, p["kp_scale"])
    np.testing.assert_allclose(-bias[:, :, 1], gain)  # position servo: bias = -kp q
    np.testing.assert_allclose(-bias[:, :, 2] / spec.kd, p["kd_scale"])
    assert _within(gain / spec.kp, cfg.kp_scale) and _varies(gain / spec.kp)
    assert _within(-bias[:, :, 2] / spec.kd, cfg.kd_scale)
    forcerange = _field(env, "actuator_forcerange")[:, actuators]
    np.testing.assert_allclose(forcerange[:, :, 1] / spec.effort_limit, np.repeat(p["effort_limit_scale"], 12, axis=1))
    np.testing.assert_allclose(forcerange[:, :, 0], -forcerange[:, :, 1])
    assert _within(forcerange[:, :, 1] / spec.effort_limit, cfg.effort_limit_scale)


@pytest.mark.parametrize(
    ("field", "term"),
    [
        ("dof_damping", "joint_damping_scale"),
        ("dof_armature", "joint_armature_scale"),
        ("dof_frictionloss", "joint_friction_loss_scale"),
    ],
)
def test_joint_properties_read_back(env, field, term):
    dofs = env.randomizer.dofs.numpy()
    values = _field(env, field)[:, dofs] / _nominal(env, field)[dofs]
    np.testing.assert_allclose(values, _params(env)[term])
    assert _within(values, getattr(env.cfg.randomization, term)) and _varies(values)


def test_action_latency_read_back(env):
    delay = _field(env, "actuator_delay")[:, env.randomizer.actuators.numpy()]
    np.testing.assert_allclose(delay, np.repeat(_params(env)["action_latency_s"], 12, axis=1))
    assert _within(delay, env.cfg.randomization.action_latency_s) and _varies(delay)


def test_action_latency_is_drawn_in_whole_physics_steps_zero_included():
    """The actuators' zero-order hold acts on whole physics steps; a draw in seconds acted as steps rounded up, so
    U(0, 20 ms) never gave a zero delay. Every step count in the range comes out, zero too."""
    cfg = small_config(num_envs=64)
    env = LocomotionEnv(cfg, seed=0)
    dt_s = env.backend.model.opt.timestep
    steps = _params(env)["action_latency_s"] / dt_s
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)
    assert set(np.round(steps).astype(int).ravel()) == set(range(round(0.02 / dt_s) + 1))


def test_action_latency_range_narrower_than_a_step_keeps_the_nearest_step():
    cfg = small_config(num_envs=4)
    cfg.randomization.action_latency_s = Range(True, 0.006, 0.008)  # 5 ms physics steps: none lies inside
    env = LocomotionEnv(cfg, seed=0)
    np.testing.assert_allclose(_params(env)["action_latency_s"], env.backend.model.opt.timestep)


def test_action_latency_delays_the_motor():
    """The same step of action moves the joints later when the latency is 20 ms."""
    positions = []
    for latency in (0.0, 0.02):
        cfg = small_config(num_envs=1, randomized=False)
        cfg.randomization.action_latency_s = Range(True, latency, latency)
        env = LocomotionEnv(cfg, seed=0)
        env.backend.step(20)  # settle
        before = env.qpos[0, env.qpos_ids].clone()
        env.step(torch.full((1, 12), 2.0))
        positions.append((env.qpos[0, env.qpos_ids] - before).numpy())
    moved_now, moved_late = (np.abs(p).sum() for p in positions)
    assert moved_now > 2.0 * moved_late


def test_sensor_errors_reach_the_policy_observation():
    """Encoder offsets and IMU biases appear in the observation, not in the physics."""
    env = LocomotionEnv(small_config(num_envs=4), seed=5)
    p = env.randomizer.params
    obs = env.get_observations()["policy"]
    layout = env.observation_slices()
    q = env.qpos[:, env.qpos_ids].float()
    expected_joint = q + p["encoder_offset_rad"].float() - env.default_joint_pos
    torch.testing.assert_close(obs[:, layout["joint_pos_rel"]], expected_joint, atol=1e-5, rtol=0)
    gyro = (env.qvel[:, env.base_dof + 3 : env.base_dof + 6] + p["gyro_bias_rad_s"]).float()
    torch.testing.assert_close(obs[:, layout["base_ang_vel"]], 0.25 * gyro, atol=1e-5, rtol=0)
    p = _params(env)
    assert np.ptp(p["encoder_offset_rad"]) > 0 and np.ptp(p["gyro_bias_rad_s"]) > 0
    assert _within(p["encoder_offset_rad"], env.cfg.randomization.encoder_offset_rad)


def test_pushes_change_base_velocity_within_limit(env):
    env.push_timer_s[:] = 0.0
    before = env.qvel[:, env.base_dof : env.base_dof + 2].clone()
    env._before_physics()
    delta = np.linalg.norm((env.qvel[:, env.base_dof : env.base_dof + 2] - before).numpy(), axis=1)
    assert np.all(delta <= env.cfg.randomization.push_velocity_m_s.high + 1e-9) and np.all(delta > 0)
    interval = env.cfg.randomization.push_interval_s
    assert torch.all((env.push_timer_s >= interval.low) & (env.push_timer_s <= interval.high))


def test_initial_state_is_randomized_within_range():
    env = LocomotionEnv(small_config(num_envs=16), seed=9)
    cfg, qpos = env.cfg.randomization, env.qpos.numpy()
    offset = qpos[:, env.qpos_ids.numpy()] - env.spec.default_joint_pos
    assert np.all(np.abs(offset) <= cfg.initial_joint_pos_offset_rad.high + 1e-9) and np.ptp(offset) > 0
    velocity = env.qvel[:, env.base_dof : env.base_dof + 2].numpy()
    assert np.all(np.abs(velocity) <= cfg.initial_base_velocity_m_s.high + 1e-9) and np.ptp(velocity) > 0
    assert np.ptp(qpos[:, env.base_qpos + 6]) > 0  # yaw differs


def test_disabled_randomization_keeps_nominal_model(nominal_config):
    env = LocomotionEnv(nominal_config, seed=1)
    for field in ("body_mass", "geom_friction", "dof_damping", "actuator_delay", "body_ipos"):
        values = _field(env, field)
        np.testing.assert_allclose(values, np.broadcast_to(_nominal(env, field), values.shape))
    assert np.all(_params(env)["encoder_offset_rad"] == 0.0)
