"""Robot parameter overrides: the loader's errors, the round trip, and an env that really runs the fitted robot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from sim.robot_params import (
    RobotParams,
    RobotParamsError,
    centre_randomization,
    load_robot_params,
    robot_params_from_dict,
    write_robot_params,
)
from sim.robot_spec import joint_dof_ids, load_robot_spec
from sim.tasks.config import RandomizationConfig, Range
from sim.vec_env import LocomotionEnv
from tests.conftest import small_config

FITTED = {
    "robot": "quadruped",
    "actuators": {"kp_scale": 0.8, "kd_scale": {"FR_hip": 1.5, "RL_calf": 2.0}, "delay_s": 0.0105},
    "joints": {"damping": 0.3, "armature": {"FL_calf": 0.05}, "frictionloss": 0.15},
    "joint_offsets_rad": {"FR_hip": 0.012, "FL_calf": -0.02},
    "fit": {"method": "sysid", "rms_rad": 0.003},
}


@pytest.fixture(scope="module")
def spec():
    return load_robot_spec("quadruped")


def _write(tmp_path, data) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _with(**changes) -> dict:
    data = yaml.safe_load(yaml.safe_dump(FITTED))  # deep copy
    for dotted, value in changes.items():
        node = data
        *parents, key = dotted.split("__")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return data


def test_values_expand_to_spec_order(spec):
    params = robot_params_from_dict(FITTED, spec, "f.yaml")
    fr_hip, fl_calf, rl_calf = (spec.joint_names.index(n) for n in ("FR_hip", "FL_calf", "RL_calf"))
    np.testing.assert_allclose(params.kp_scale, 0.8)
    assert params.kd_scale[fr_hip] == 1.5 and params.kd_scale[rl_calf] == 2.0
    assert np.isnan(params.kd_scale).sum() == 10  # joints left out keep their nominal value
    kp, kd = params.nominal_gains(spec)
    np.testing.assert_allclose(kp, 0.8 * spec.kp)
    assert kd[fr_hip] == 1.5 * spec.kd[fr_hip] and kd[fl_calf] == spec.kd[fl_calf]
    assert params.delay_s == 0.0105
    offsets = params.offsets_rad()
    assert offsets[fr_hip] == 0.012 and offsets[fl_calf] == -0.02 and np.count_nonzero(offsets) == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(robot="arm"), "the parameters are for robot 'arm', not 'quadruped'"),
        ({"actuators": {"kp_scale": 1.0}}, "missing 'robot'"),
        (_with(gains={"kp": 1}), "top level: unknown key(s) gains"),
        (_with(actuators__kp=1.0), "actuators: unknown key(s) kp; known: kp_scale, kd_scale, delay_s"),
        (_with(joints__stiffness=1.0), "joints: unknown key(s) stiffness"),
        (_with(actuators__kd_scale={"FR_hip": 1.0, "FR_knee": 1.0}), "has no joint(s) FR_knee"),
        (_with(joint_offsets_rad={"XX_hip": 0.1}), "joint_offsets_rad: robot 'quadruped' has no joint(s) XX_hip"),
        (_with(actuators__kp_scale=0.0), "actuators.kp_scale must be finite and > 0, got 0.0"),
        (_with(actuators__kd_scale={"FR_hip": -1.0}), "actuators.kd_scale.FR_hip must be finite and > 0"),
        (_with(actuators__kp_scale=float("nan")), "actuators.kp_scale must be finite"),
        (_with(actuators__kp_scale="fast"), "actuators.kp_scale must be a number, got 'fast'"),
        (_with(actuators__kp_scale=True), "actuators.kp_scale must be a number, got True"),
        (_with(actuators__delay_s=-0.001), "actuators.delay_s must be finite and in [0, 0.1)"),
        (_with(actuators__delay_s=0.2), "actuators.delay_s must be finite and in [0, 0.1)"),
        (_with(joints__damping=-0.1), "joints.damping must be finite and >= 0"),
        (_with(joints__armature=float("inf")), "joints.armature must be finite"),
        (_with(joint_offsets_rad={"FR_hip": 0.6}), "joint_offsets_rad.FR_hip must be finite and within ±0.5 rad"),
        (_with(joints=[0.1]), "joints must be a mapping"),
        (_with(fit="by hand"), "fit must be a mapping"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_loader_names_the_file_and_the_problem(tmp_path, spec, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(RobotParamsError) as raised:
        load_robot_params(path, spec)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_missing_and_malformed_files_are_named(tmp_path, spec):
    with pytest.raises(RobotParamsError, match="does not exist"):
        load_robot_params(tmp_path / "none.yaml", spec)
    bad = tmp_path / "bad.yaml"
    bad.write_text("robot: [quadruped\n")
    with pytest.raises(RobotParamsError, match=r"bad\.yaml: not valid YAML"):
        load_robot_params(bad, spec)


def test_unreadable_files_and_unwritable_places_are_named_without_a_traceback(tmp_path, spec):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"robot: \xff\xfe quadruped\n")
    with pytest.raises(RobotParamsError, match=r"binary\.yaml: not valid YAML"):
        load_robot_params(binary, spec)
    folder = tmp_path / "a_folder.yaml"
    folder.mkdir()
    with pytest.raises(RobotParamsError, match=r"cannot write robot parameter file .*a_folder\.yaml"):
        write_robot_params(folder, load_robot_params(_write(tmp_path, {"robot": "quadruped"}), spec))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.yaml", "binary.yaml", "params.yaml"]


def test_round_trip_keeps_every_value_and_only_what_was_given(tmp_path, spec):
    params = load_robot_params(_write(tmp_path, FITTED), spec)
    out = write_robot_params(tmp_path / "sub" / "out.yaml", params)
    assert not list(out.parent.glob("*.tmp"))
    written = yaml.safe_load(out.read_text())
    assert written == FITTED  # scalars stay scalars, partial mappings stay partial
    again = load_robot_params(out, spec)
    for name in ("kp_scale", "kd_scale", "damping", "armature", "frictionloss", "joint_offsets_rad"):
        np.testing.assert_array_equal(getattr(again, name), getattr(params, name))
    assert again.delay_s == params.delay_s and again.fit == params.fit
    assert RobotParams.empty(spec).to_yaml_dict() == {"robot": "quadruped"}


def test_apply_to_model_sets_the_joint_properties(spec):
    params = robot_params_from_dict(FITTED, spec, "f.yaml")
    model = spec.load_model()
    before = model.dof_armature.copy()
    params.apply_to_model(model, spec)
    dofs = joint_dof_ids(model, spec)
    np.testing.assert_allclose(model.dof_damping[dofs], 0.3)
    np.testing.assert_allclose(model.dof_frictionloss[dofs], 0.15)
    fl_calf = dofs[spec.joint_names.index("FL_calf")]
    assert model.dof_armature[fl_calf] == 0.05
    others = np.setdiff1d(np.arange(model.nv), [fl_calf])
    np.testing.assert_array_equal(model.dof_armature[others], before[others])  # not given: the MJCF's value


def test_latency_range_keeps_its_width_around_the_fitted_delay(spec):
    cfg = RandomizationConfig()
    cfg.action_latency_s = Range(True, 0.0, 0.02)
    params = robot_params_from_dict(FITTED, spec, "f.yaml")
    centred = centre_randomization(cfg, params).action_latency_s
    assert centred.low == pytest.approx(0.0005) and centred.high == pytest.approx(0.0205)
    early = robot_params_from_dict(_with(actuators__delay_s=0.004), spec, "f.yaml")
    floored = centre_randomization(cfg, early).action_latency_s
    assert floored.low == 0.0 and floored.high == pytest.approx(0.014)  # a delay cannot be negative
    assert cfg.action_latency_s == Range(True, 0.0, 0.02)  # the caller's config is not touched


def test_env_runs_the_fitted_robot_with_randomization_around_it():
    cfg = small_config(num_envs=8)
    cfg.robot_params = FITTED
    env = LocomotionEnv(cfg, seed=5)
    r, spec = env.randomizer, env.spec
    p = {name: value.numpy() for name, value in r.params.items()}
    actuators, dofs = r.actuators.numpy(), r.dofs.numpy()
    kp_fit, kd_fit = env.robot_params.nominal_gains(spec)
    gain = env.backend.model_field("actuator_gainprm").numpy()[:, actuators, 0]
    bias = env.backend.model_field("actuator_biasprm").numpy()[:, actuators]
    np.testing.assert_allclose(gain, kp_fit * p["kp_scale"])
    np.testing.assert_allclose(-bias[:, :, 2], kd_fit * p["kd_scale"])
    # U(0.8, 1.2) around the fitted 0.8 = U(0.64, 0.96) of the spec's gain
    ratio = gain / spec.kp
    assert ratio.min() >= 0.64 - 1e-12 and ratio.max() <= 0.96 + 1e-12 and np.ptp(ratio) > 0.05
    delay = env.backend.model_field("actuator_delay").numpy()[:, actuators]
    assert delay.min() >= 0.0005 - 1e-12 and delay.max() <= 0.0205 + 1e-12 and np.ptp(delay) > 1e-3
    damping = env.backend.model_field("dof_damping").numpy()[:, dofs]
    np.testing.assert_allclose(damping, 0.3 * p["joint_damping_scale"])
    assert env.randomizer.ranges()["action_latency_s"]["low"] == pytest.approx(0.0005)
    np.testing.assert_allclose(spec.kp, 35.0)  # the spec keeps the commanded gains, for the bundle


def test_nominal_env_uses_exactly_the_fitted_gains_and_delay():
    """Randomization off: every simulation is the fitted robot, and the delay really delays the motors."""
    moved = []
    for params in ({}, FITTED):
        cfg = small_config(num_envs=2, randomized=False)
        cfg.robot_params = params
        env = LocomotionEnv(cfg, seed=0)
        actuators, dofs = env.randomizer.actuators.numpy(), env.randomizer.dofs.numpy()
        if params:
            np.testing.assert_allclose(env.backend.model_field("actuator_gainprm").numpy()[:, actuators, 0], 28.0)
            np.testing.assert_allclose(env.backend.model_field("actuator_delay").numpy()[:, actuators], 0.0105)
            np.testing.assert_allclose(env.backend.model_field("dof_frictionloss").numpy()[:, dofs], 0.15)
            np.testing.assert_allclose(env.model.dof_damping[dofs], 0.3)
        env.backend.step(20)  # settle
        before = env.qpos[0, env.qpos_ids].clone()
        env.step(torch.full((2, 12), 2.0))
        moved.append(np.abs((env.qpos[0, env.qpos_ids] - before).numpy()).sum())
    assert moved[0] > 2.0 * moved[1]  # 10.5 ms of delay (and softer gains) within a 20 ms step


def test_env_names_a_bad_override_in_the_config():
    cfg = small_config(num_envs=1, randomized=False)
    cfg.robot_params = _with(actuators__kp_scale=-1.0)
    with pytest.raises(RobotParamsError, match=r"env\.robot_params: actuators\.kp_scale must be finite and > 0"):
        LocomotionEnv(cfg, seed=0)
