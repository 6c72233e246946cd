"""The arm robot and its manipulation tasks on real MuJoCo: spec, randomization read back, success detection."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
import yaml

from sim.config_io import ConfigError
from sim.envs import make_env
from sim.manipulation_env import OBJECT_BODY, OBJECT_GEOM
from sim.robot_spec import SpecError, load_robot_spec
from sim.rotations import quat_conjugate, quat_multiply, rotation_vector_quat
from sim.tasks import make_task_config
from sim.terms.arm_state import ArmState
from sim.terms.manipulation import ManipulationContext, object_grasp, reach_succeeded
from sim.terms.targets import FINGERS_DOWN_QUAT

ARM_DIR = Path(__file__).resolve().parents[2] / "sim" / "robots" / "arm"


def arm_config(task: str, num_envs: int = 4, randomized: bool = True):
    cfg = make_task_config(task)
    cfg.num_envs = num_envs
    cfg.num_threads = 2
    if not randomized:
        cfg.randomization = cfg.randomization.disabled()
    return cfg


# ------------------------------------------------------------------- spec
def test_arm_spec_validates_against_its_mjcf():
    spec = load_robot_spec("arm")
    assert spec.num_joints == 8 and spec.joint_names[-1] == "finger_joint"
    assert not spec.floating_base and spec.ee_site == "ee"
    assert spec.cameras == ("wrist_cam", "scene_cam")
    model = spec.load_model()
    for name in spec.joint_names:
        low, high = model.jnt_range[model.joint(name).id]
        assert low <= spec.default_joint_pos[spec.joint_names.index(name)] <= high
    assert np.all(spec.effort_limit > 0) and np.all(spec.kp > 0)


def test_arm_reach_is_panda_scale():
    """Shoulder (joint 2 axis) to flange, arm and wrist stretched out: about 0.85 m (a Panda: 0.855 m)."""
    model = load_robot_spec("arm").load_model()
    data = mujoco.MjData(model)
    reaches = []
    for shoulder in np.linspace(-1.5, 1.5, 7):
        data.qpos[:] = 0.0
        data.qpos[model.joint("arm_joint2").qposadr[0]] = shoulder
        data.qpos[model.joint("arm_joint4").qposadr[0]] = -0.0698  # elbow as straight as its range allows
        data.qpos[model.joint("arm_joint6").qposadr[0]] = math.pi / 2  # wrist in line with the forearm
        mujoco.mj_kinematics(model, data)
        reaches.append(np.linalg.norm(data.xpos[model.body("hand").id] - data.xpos[model.body("link2").id]))
    assert 0.78 < max(reaches) < 0.92


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"ee_site": "tcp"}, "ee_site: the MJCF has no site named 'tcp'"),
        ({"cameras": ["wrist_cam", "hand_cam"]}, "cameras: the MJCF has no camera named 'hand_cam'"),
        ({"imu_site": "ee"}, "missing base_body, feet"),
    ],
)
def test_bad_arm_specs_name_the_entry(tmp_path, edit, message):
    raw = yaml.safe_load((ARM_DIR / "arm.yaml").read_text())
    raw.update(edit)
    (tmp_path / "arm.xml").write_text((ARM_DIR / "arm.xml").read_text())
    path = tmp_path / "arm.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=message):
        load_robot_spec(path)


def test_legged_terms_on_an_arm_are_refused_by_name():
    cfg = arm_config("arm-reach")
    cfg.randomization.foot_friction.enabled = True
    with pytest.raises(ConfigError, match=r"randomization\.foot_friction is enabled but robot 'arm' has no feet"):
        make_env(cfg)
    cfg = arm_config("arm-reach")
    cfg.randomization.object_mass_kg.enabled = True
    with pytest.raises(ConfigError, match="object_mass_kg is enabled but robot 'arm' has no object"):
        make_env(cfg)


# ---------------------------------------------------------- randomization
@pytest.fixture(scope="module")
def lift_env():
    env = make_env(arm_config("arm-lift", num_envs=6), seed=3)
    yield env
    env.close()


def _params(env) -> dict[str, np.ndarray]:
    """The randomizer's sampled values as numpy arrays, one row per environment."""
    return {name: value.numpy() for name, value in env.randomizer.params.items()}


def _host_model(env, i: int) -> mujoco.MjModel:
    """Simulation `i`'s model, with its randomized fields, on the host."""
    return env.backend.copy_to_host(i, mujoco.MjData(env.model))


def test_object_terms_read_back_from_each_simulations_model(lift_env):
    env, p = lift_env, _params(lift_env)
    nominal = env.model
    geom, body = nominal.geom(OBJECT_GEOM).id, nominal.body(OBJECT_BODY).id
    ranges = env.cfg.randomization
    for i in range(env.num_envs):
        model = _host_model(env, i)
        scale, mass, friction = p["object_size_scale"][i, 0], p["object_mass_kg"][i, 0], p["object_friction"][i, 0]
        assert ranges.object_size_scale.low <= scale <= ranges.object_size_scale.high
        assert 0.05 <= mass <= 0.5 and 0.5 <= friction <= 1.5
        np.testing.assert_allclose(model.geom_size[geom], nominal.geom_size[geom] * scale)
        assert model.geom_rbound[geom] == pytest.approx(nominal.geom_rbound[geom] * scale)
        assert model.body_mass[body] == pytest.approx(mass)
        edge = 2.0 * model.geom_size[geom, 0]
        np.testing.assert_allclose(model.body_inertia[body], mass * 2 * edge**2 / 12.0, rtol=1e-9)
        assert model.geom_friction[geom, 0] == pytest.approx(friction)
    # six draws from 0.8-1.2 and 0.05-0.5 kg are not all the same
    assert np.ptp(p["object_size_scale"]) > 0.01 and np.ptp(p["object_mass_kg"]) > 0.01


def test_joint_actuator_and_latency_terms_read_back(lift_env):
    env, p, nominal, spec = lift_env, _params(lift_env), lift_env.model, lift_env.spec
    actuators, dofs = env.actuator_ids.numpy(), env.dof_ids.numpy()
    for i in range(env.num_envs):
        model = _host_model(env, i)
        np.testing.assert_allclose(model.actuator_gainprm[actuators, 0], spec.kp * p["kp_scale"][i])
        np.testing.assert_allclose(model.actuator_biasprm[actuators, 2], -spec.kd * p["kd_scale"][i])
        np.testing.assert_allclose(model.dof_damping[dofs], nominal.dof_damping[dofs] * p["joint_damping_scale"][i])
        np.testing.assert_allclose(model.dof_armature[dofs], nominal.dof_armature[dofs] * p["joint_armature_scale"][i])
        latency = p["action_latency_s"][i, 0]
        assert 0.0 <= latency <= 0.02
        np.testing.assert_allclose(model.actuator_delay[actuators], latency)
    assert np.ptp(p["kp_scale"]) > 0.01 and np.ptp(p["action_latency_s"]) > 1e-4


def test_camera_and_light_terms_read_back(lift_env):
    env, p, nominal = lift_env, _params(lift_env), lift_env.model
    cameras = [nominal.camera(name).id for name in env.spec.cameras]
    for i in range(env.num_envs):
        model = _host_model(env, i)
        for k, cam in enumerate(cameras):
            offset = model.cam_pos[cam] - nominal.cam_pos[cam]
            np.testing.assert_allclose(offset, p["camera_position_offset_m"][i, k])
            assert np.all(np.abs(offset) <= 0.02 + 1e-12)
            # the rotation between nominal and randomized camera: at most 3° about each axis
            turn = quat_multiply(quat_conjugate(torch.tensor(nominal.cam_quat[cam])), torch.tensor(model.cam_quat[cam]))
            angle = 2 * math.acos(min(1.0, abs(float(turn[0]))))
            assert 0.0 < angle <= math.sqrt(3) * math.radians(3.0) + 1e-9
        np.testing.assert_allclose(model.light_diffuse, nominal.light_diffuse * p["light_diffuse_scale"][i][:, None])
        np.testing.assert_allclose(model.light_pos - nominal.light_pos, p["light_position_offset_m"][i])


def test_initial_object_pose_offsets_and_any_yaw():
    env = make_env(arm_config("arm-lift", num_envs=64), seed=5)
    o, qpos = env.object_qpos, env.qpos.numpy()
    xy = qpos[:, o : o + 2] - np.array(env.cfg.manipulation.object.position_m)
    assert np.all(np.abs(xy) <= 0.1 + 1e-9) and np.ptp(xy[:, 0]) > 0.1
    quat = qpos[:, o + 3 : o + 7]
    yaw = 2.0 * np.arctan2(quat[:, 3], quat[:, 0])
    assert np.ptp(np.mod(yaw, 2 * np.pi)) > np.pi  # yaws spread over the whole circle
    # the cube rests on the table: its centre half an edge above the top
    half = 0.5 * env.cfg.manipulation.object.size_m * _params(env)["object_size_scale"][:, 0]
    np.testing.assert_allclose(qpos[:, o + 2], half + 0.001, atol=1e-9)
    env.close()


def test_observation_noise_only_in_the_policy_group():
    env = make_env(arm_config("arm-reach", num_envs=8), seed=0)
    observations = env.get_observations()
    frame = observations["policy"].shape[1]
    difference = observations["policy"] - observations["critic"][:, :frame]
    assert difference.abs().max() > 0  # noise on the policy's joint terms
    assert difference[:, -7:].abs().max() == 0  # the target pose is a command, not a sensor: no noise
    env.close()


# ------------------------------------------------------------------ success
def _arm_state(ee_pos, ee_quat, target) -> ArmState:
    n = ee_pos.shape[0]
    zeros = torch.zeros(n, 8)
    return ArmState(
        joint_pos_rad=zeros,
        joint_vel_rad_s=zeros,
        measured_joint_pos_rad=zeros,
        default_joint_pos_rad=torch.zeros(8),
        action=zeros,
        last_action=zeros,
        ee_pos_b=ee_pos,
        ee_quat_b=ee_quat,
        target_pose=target,
    )


def test_reach_success_needs_both_tolerances():
    cfg = make_task_config("arm-reach").manipulation
    down = torch.tensor(FINGERS_DOWN_QUAT).expand(4, 4)
    target = torch.cat([torch.tensor([[0.5, 0.0, 0.3]]).expand(4, 3), down], dim=1)
    ee_pos = target[:, :3] + torch.tensor([[0.015, 0, 0], [0.025, 0, 0], [0, 0.01, 0.01], [0, 0, 0]])
    tilts = torch.tensor([[0.05, 0, 0], [0, 0, 0], [0, 0, 0.09], [0, 0.12, 0]])
    ee_quat = quat_multiply(rotation_vector_quat(tilts), down)
    assert reach_succeeded(_arm_state(ee_pos, ee_quat, target), cfg).tolist() == [True, False, True, False]


def _hold_object(env, ids, position_w) -> None:
    """Put the object at `position_w` at rest in the simulations `ids` (a hand-made state)."""
    o, d, dtype = env.object_qpos, env.object_dof, env.qpos.dtype
    ids = torch.as_tensor(ids, dtype=torch.int64)
    env.qpos[ids, o : o + 3] = torch.as_tensor(position_w, dtype=dtype)
    env.qpos[ids, o + 3 : o + 7] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=dtype)
    env.qvel[ids, d : d + 6] = 0.0
    env.backend.forward(ids)


def test_a_lifted_cube_counts_and_a_cube_pushed_off_the_table_does_not():
    cfg = arm_config("arm-lift", num_envs=3, randomized=False)
    env = make_env(cfg, seed=0)
    hold_action = torch.zeros(3, env.num_actions)
    start = env.qpos[0, env.object_qpos : env.object_qpos + 3].clone()
    hold_steps = math.ceil(cfg.manipulation.lift_hold_s / env.step_dt)
    successes, dropped = np.zeros(3, dtype=bool), np.zeros(3, dtype=bool)
    for step in range(hold_steps + 5):
        _hold_object(env, [0], start + torch.tensor([0.0, 0.0, 0.15], dtype=start.dtype))  # lifted 15 cm, held
        _hold_object(env, [1], start + torch.tensor([0.0, 0.0, 0.05], dtype=start.dtype))  # only 5 cm: not high enough
        if step == 0:
            _hold_object(env, [2], [0.95, 0.0, 0.03])  # past the table's far edge: it falls
        env.step(hold_action)
        finished = env.finished_episodes
        dropped[finished["ids"]] |= finished["failed"]
        successes |= env.success.numpy()
        if step == hold_steps - 3:
            assert not env.success[0], "success before the object was held lift_hold_s"
    assert successes.tolist() == [True, False, False]
    assert dropped[2] and not dropped[:2].any()
    env.close()


def test_reach_episode_success_is_judged_at_its_end():
    cfg = arm_config("arm-reach", num_envs=2, randomized=False)
    cfg.terminations.episode_length_s = 0.2
    env = make_env(cfg, seed=0)
    # the target of env 0 is where its end effector already is: success; env 1 keeps its far target
    state = env.state
    env.target_pose[0, :3] = state.ee_pos_b[0]
    env.target_pose[0, 3:] = state.ee_quat_b[0]
    env.target_pose[1, :3] = state.ee_pos_b[1] + torch.tensor([0.0, 0.0, 0.15])
    results = None
    for _ in range(env.max_episode_length):
        env.step(torch.zeros(2, env.num_actions))
        if len(env.finished_episodes["ids"]):
            results = env.finished_episodes
    assert results is not None and results["ids"].tolist() == [0, 1]
    assert results["success"].tolist() == [True, False]
    assert results["final_position_error_m"][1] > 0.1
    env.close()


def test_grasp_reward_needs_both_finger_pads_on_the_object():
    env = make_env(arm_config("arm-lift", num_envs=3, randomized=False), seed=0)
    o = env.object_qpos
    fingers = [env.model.jnt_qposadr[env.model.joint(j).id] for j in ("finger_joint", "finger_joint_mirror")]
    half_size_m = 0.5 * env.cfg.manipulation.object.size_m
    # each pad's inner face sits 2 mm beyond its joint position: 1 mm into the cube, open, pressed on nothing
    for i, (opening_m, offset_m) in enumerate([(half_size_m - 0.003, 0.0), (0.04, 0.0), (half_size_m - 0.003, 0.1)]):
        env.qpos[i, fingers] = opening_m
        env.qpos[i, o : o + 3] = env.site_xpos[i, env.ee_site] + torch.tensor(
            [offset_m, 0.0, 0.0], dtype=env.site_xpos.dtype
        )
    env.backend.forward(torch.arange(3))
    state = env._read_state()
    assert state.finger_contacts.tolist() == [[True, True], [False, False], [False, False]]
    ctx = ManipulationContext(
        env.cfg.manipulation, torch.zeros(3, dtype=torch.bool), env.soft_joint_limits, env.soft_velocity_limits
    )
    assert object_grasp(state, ctx).tolist() == [1.0, 0.0, 0.0]
    env.close()
