"""The policy node applies a robot_params file's encoder offsets: readings minus offset in, targets plus offset out."""

from __future__ import annotations

import pytest
import yaml

from robot_io import topics
from tests.robot_io.test_policy_node import BUNDLE_JOINTS, SPEC, RobotDriver, start_node  # noqa: F401 (fixture)

OFFSETS_RAD = {"FR_hip": 0.05, "FL_calf": -0.08, "RL_thigh": 0.03}


def test_a_robot_whose_encoders_read_off_is_held_where_it_stands(ros_domain, start_node, tmp_path) -> None:  # noqa: F811
    standing = dict(zip(BUNDLE_JOINTS, SPEC["default_joint_pos"], strict=True))
    readings = {name: standing[name] + OFFSETS_RAD.get(name, 0.0) for name in BUNDLE_JOINTS}
    params = tmp_path / "quadruped_params.yaml"
    params.write_text(yaml.safe_dump({"robot": "quadruped", "joint_offsets_rad": OFFSETS_RAD}))
    driver = RobotDriver(default_pos=readings)  # the robot stands still; its encoders read true + offset
    try:
        node = start_node(f"robot_params:={params}")
        driver.stand_up()
        driver.wait_for_state("STANDING", 5.0)
        # the ramp starts where the core believes the joints are: without the readings corrected, it would start
        # an offset away from the readings (at most max_target_step_rad = 0.02 moves per tick)
        first = next(m for m in list(driver.pd_commands) if topics.unpack_pd_command(m)[1][3].any())
        names, rows = topics.unpack_pd_command(first)
        for name, target in zip(names, rows[0], strict=True):
            assert abs(target - readings[name]) <= 0.02 + 1e-9, name
        names, rows = topics.unpack_pd_command(driver.pd_commands[-1])
        sent = dict(zip(names, rows[0], strict=True))
        # the core saw the true standing pose, so it commands that pose, in the encoders' terms: the readings
        for name in BUNDLE_JOINTS:
            assert sent[name] == pytest.approx(readings[name], abs=1e-9), name
        assert "encoder offsets from" in node.log()
    finally:
        driver.close()


def test_a_robot_params_file_for_another_robot_stops_the_node_with_its_name(start_node, tmp_path) -> None:  # noqa: F811
    params = tmp_path / "arm_params.yaml"
    params.write_text(yaml.safe_dump({"robot": "arm", "joint_offsets_rad": {"joint1": 0.01}}))
    node = start_node(f"robot_params:={params}")
    assert node.wait(20.0) != 0
    log = node.log()
    assert "robot_params" in log and "arm_params.yaml" in log and "quadruped" in log and "Traceback" not in log
