"""The shipped arm policies: the reach and lift bars under randomized dynamics, and the reach bundle in the C++ core.

The reach bundle is driven through simreal_rt.ControlCore (the whole control tick the ROS node runs) on the
simulator's states, with the target pose given the way /target_pose gives it, and compared with the torch actor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import simreal_rt
from policies.bundle import BundleError, load_bundle
from policies.evaluate import evaluate_run
from policies.export import export_run
from policies.inference import open_run
from policies.run_dir import find_checkpoint, load_checkpoint

PRETRAINED = Path(__file__).resolve().parents[2] / "policies" / "pretrained"
REACH = PRETRAINED / "arm-reach"
LIFT = PRETRAINED / "arm-lift"
pytestmark = pytest.mark.slow


def test_shipped_reach_policy_meets_its_bar_under_randomized_dynamics():
    result = evaluate_run(REACH, None, episodes=100, dynamics="randomized", seed=2024)
    assert result["num_episodes"] == 100
    assert result["success_rate"] >= 0.95
    assert result["final_position_error_m"] <= 0.02


def test_shipped_lift_policy_meets_its_bar_under_randomized_dynamics():
    result = evaluate_run(LIFT, None, episodes=100, dynamics="randomized", seed=2024)
    print(result)
    assert result["num_episodes"] == 100
    assert result["success_rate"] >= 0.8


@pytest.mark.parametrize(("run", "task"), [(REACH, "arm-reach"), (LIFT, "arm-lift")])
def test_shipped_arm_runs_carry_task_ranges_and_curves(run, task):
    content = load_checkpoint(find_checkpoint(run))
    assert content["task"] == task
    assert content["randomization"]["object_mass_kg"]["enabled"] == (task == "arm-lift")
    assert content["randomization"]["camera_rotation_rad"]["enabled"]
    assert (run / "summary.yaml").is_file() and (run / "learning_curve.png").is_file()
    assert content["wall_time_s"] <= {"arm-reach": 15 * 60, "arm-lift": 90 * 60}[task] + 60


def test_reach_bundle_is_valid_and_observes_the_target_pose():
    spec = load_bundle(REACH / "bundle")
    terms = [term["name"] for term in spec["observation"]["terms"]]
    assert terms == ["joint_pos_rel", "joint_vel", "last_action", "target_pose"]
    assert spec["robot"] == "arm" and len(spec["joint_names"]) == 8


def _core_in_policy_state(joint_names: list[str], joint_pos: np.ndarray, target: np.ndarray, period_s: float):
    options = simreal_rt.CoreOptions()
    options.stand_up_via_sit_pose = False
    options.stand_up_duration_s = 0.1
    core = simreal_rt.ControlCore(str(REACH / "bundle"), joint_names, options)
    assert not core.uses_imu and core.observes_target_pose
    zeros = np.zeros(len(joint_names))
    t = 0.0
    core.tick(t, t, joint_pos, zeros, 0.0, None, None, None, target_pose=target)
    assert core.request("stand_up", t)[0]
    while core.state != "STANDING":
        t += period_s
        core.tick(t, t, joint_pos, zeros, 0.0, None, None, None)
        assert t < 5.0, f"stuck in {core.state}"
    assert core.request("start_policy", t)[0]
    return core, t


def _pd_torque(target, q, qdot, spec, limit=None):
    torque = spec.kp * (target - q) - spec.kd * qdot
    return torque if limit is None else np.clip(torque, -limit, limit)


def test_reach_bundle_in_the_cpp_control_core_matches_torch_on_simulated_states():
    """Observation, network output and motor torque of the C++ tick against the torch actor in the env.

    The core keeps each target inside the band whose PD torque stays within the torque limits, where the
    simulator clips the actuator force instead: the two agree on the torque the motor applies.
    """
    env, policy = open_run(REACH, None, num_envs=1, dynamics="nominal", seed=7)
    spec = env.spec
    period_s = spec.control_dt
    bundle = simreal_rt.load_bundle(str(REACH / "bundle"))
    observations = env.get_observations()
    target = env.target_pose[0].numpy().astype(np.float64)
    core, t = _core_in_policy_state(list(spec.joint_names), env.state.joint_pos_rad[0].numpy(), target, period_s)
    frame = env.frame_dim
    worst_obs = worst_action = worst_torque_nm = 0.0
    for _ in range(env.max_episode_length - 1):  # the whole episode; its last step would reset the env
        state = env.state
        q, qdot = state.joint_pos_rad[0].numpy().astype(np.float64), state.joint_vel_rad_s[0].numpy().astype(np.float64)
        t += period_s
        out = core.tick(t, t, q, qdot, 0.0, None, None, None)
        assert out["state"] == "POLICY" and out["policy_ran"], out["fault"]
        # the core's observation is the simulator's (noise-free) policy frame
        worst_obs = max(
            worst_obs, float(np.abs(core.last_observation - observations["critic"][0, :frame].numpy()).max())
        )
        with torch.no_grad():
            action = policy(observations)
        raw = action[0].numpy()
        worst_action = max(worst_action, float(np.abs(bundle.evaluate(core.last_observation) - raw).max()))
        sim_target = np.clip(
            spec.default_joint_pos + spec.action_scale * raw.astype(np.float64), *env.joint_range.numpy().T
        )
        torque_sim = _pd_torque(sim_target, q, qdot, spec, limit=spec.effort_limit)
        worst_torque_nm = max(
            worst_torque_nm, float(np.abs(_pd_torque(out["target_pos"], q, qdot, spec) - torque_sim).max())
        )
        observations, _, dones, _ = env.step(action)
        assert not dones[0]
    print(
        f"C++ tick vs torch: observation {worst_obs:.2e}, action {worst_action:.2e}, torque {worst_torque_nm:.2e} N m"
    )
    assert worst_obs <= 1e-5
    assert worst_action <= 1e-4
    assert worst_torque_nm <= 0.05  # kp 1500 x 1e-5 rad of float32 rounding, with margin
    # and the episode the two agree on ends at the target
    assert env.state.ee_pos_b[0].sub(env.target_pose[0, :3]).norm() <= 0.02
    env.close()


def test_lift_export_is_refused_naming_its_simulation_only_terms(tmp_path):
    with pytest.raises(BundleError, match=r"observes \['ee_pose', 'object_pose'\].*simulation only"):
        export_run(LIFT, None, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
