"""The arm's deployed loop end to end over real DDS: emulator process + policy node process + an operator here.

The emulator runs the fixed-base arm (no IMU, no floating base) and publishes the end effector's ground truth on
/sim/ee_pose; the policy node runs an arm-reach bundle and takes its goal from /target_pose; the operator stands
the arm up, publishes the goal, starts the policy and measures where the end effector went.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from robot_io import sim2sim, topics
from robot_io.sim2sim import Sim2SimConfig, reach, ros_nodes
from simreal.cli import main

ROOT = Path(__file__).resolve().parents[2]
ARM_PARAMS = ROOT / "launch" / "params" / "arm.yaml"
FINAL_BUNDLE = ROOT / "policies" / "pretrained" / "arm-reach" / "bundle"
ARM_BUNDLE = FINAL_BUNDLE
# arm-reach's success tolerances; the shipped bundle ends 0.12 cm / 0.02 rad from TARGET here
POSITION_ERROR_BOUND_M = 0.02
ORIENTATION_ERROR_BOUND_RAD = 0.1
POLICY_SECONDS = 3.0  # the arm-reach training episode's length
TARGET = (0.5, 0.1, 0.2, 0.0, 1.0, 0.0, 0.0)  # 14 cm from the default pose's end effector, fingers down
MOVED_AT_LEAST_M = 0.1  # the goal is this far from where the end effector starts: it had to move
EE_POSE_RATE_HZ = 100.0  # launch/params/arm.yaml base_state_rate_hz


@pytest.mark.slow
def test_arm_reaches_a_target_pose_over_dds(ros_domain: int) -> None:
    config = Sim2SimConfig(
        bundle=ARM_BUNDLE, params=ARM_PARAMS, target_pose=TARGET, seconds=POLICY_SECONDS, domain_id=ros_domain
    )
    with ros_nodes(config) as operator:  # returns once /sim/ee_pose arrives: the emulator is up
        node = operator.node
        # a fixed-base robot without IMU: no /imu/data publisher at all, no floating-base ground truth
        assert node.count_publishers(topics.JOINT_STATES) == 1
        assert node.count_publishers(topics.SIM_EE_POSE) == 1  # created after where an IMU publisher would be
        assert node.count_publishers(topics.IMU) == 0
        assert node.count_publishers(topics.SIM_BASE_STATE) == 0
        before = len(operator.recording.ee_poses)
        time.sleep(0.5)
        streamed = len(operator.recording.ee_poses) - before
        start = operator.latest_ee_pose()
        result = reach(operator, config)
        frame_ids = set(operator.recording.ee_frame_ids)
    print(json.dumps(result))
    assert 0.5 * 0.5 * EE_POSE_RATE_HZ <= streamed <= 1.5 * 0.5 * EE_POSE_RATE_HZ, streamed
    assert frame_ids == {"base"}
    assert np.linalg.norm(start[:3] - np.array(TARGET[:3])) >= MOVED_AT_LEAST_M
    assert result["initial_position_error_m"] >= MOVED_AT_LEAST_M
    assert result["position_error_m"] <= POSITION_ERROR_BOUND_M, result
    assert result["orientation_error_rad"] <= ORIENTATION_ERROR_BOUND_RAD, result
    assert result["controller_states"] == ["ZERO_TORQUE", "STAND_UP", "STANDING", "POLICY", "SIT_DOWN"]
    assert result["sat_down"] is True
    assert result["policy_seconds"] == pytest.approx(POLICY_SECONDS, abs=0.2)


# ---- the command line, without starting nodes ----------------------------------------------------------------


def test_cli_passes_the_target_and_the_yamls_bundle(monkeypatch, capsys) -> None:
    seen: list[Sim2SimConfig] = []
    monkeypatch.setattr(sim2sim, "run_sim2sim", lambda config: seen.append(config) or {"ok": True})
    assert main(["sim2sim", "--params", str(ARM_PARAMS), "--target", "0.4", "0.1", "0.3", "--json"]) == 0
    config = seen[-1]
    assert config.target_pose == (0.4, 0.1, 0.3, *sim2sim.FINGERS_DOWN_QUAT_WXYZ)
    assert config.bundle == (Path.cwd() / "policies" / "pretrained" / "arm-reach" / "bundle").resolve()
    args = ["sim2sim", "--params", str(ARM_PARAMS), "--bundle", str(ARM_BUNDLE), "--target", "0.4", "0.1", "0.3"]
    assert main([*args, "0", "0", "2", "0"]) == 0  # w x y z, normalized
    assert seen[-1].target_pose == (0.4, 0.1, 0.3, 0.0, 0.0, 1.0, 0.0) and seen[-1].bundle == ARM_BUNDLE
    capsys.readouterr()
    assert main([*args, "0", "1"]) == 2
    assert "x y z or x y z qw qx qy qz" in capsys.readouterr().err


def test_target_pose_defaults_to_fingers_down_as_in_training() -> None:
    from sim.terms.targets import FINGERS_DOWN_QUAT

    assert sim2sim.FINGERS_DOWN_QUAT_WXYZ == FINGERS_DOWN_QUAT
    assert sim2sim.target_pose_from_values(None) == (*sim2sim.DEFAULT_TARGET_POSITION_M, *FINGERS_DOWN_QUAT)
    with pytest.raises(sim2sim.Sim2SimError, match="zero quaternion"):
        sim2sim.target_pose_from_values([0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0])


def test_a_target_for_the_quadruped_is_refused_before_anything_starts(capsys) -> None:
    assert main(["sim2sim", "--target", "0.5", "0.0", "0.3"]) == 2
    assert "walks on /cmd_vel" in capsys.readouterr().err
