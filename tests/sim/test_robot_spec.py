"""The robot spec loader validates the YAML against the MJCF and names what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.robot_spec import ROBOTS_DIR, SpecError, load_robot_spec

QUADRUPED_DIR = ROBOTS_DIR / "quadruped"


def _write_variant(tmp_path: Path, **changes) -> Path:
    """A copy of the quadruped spec with some fields changed, next to a copy of its MJCF."""
    spec = yaml.safe_load((QUADRUPED_DIR / "quadruped.yaml").read_text())
    spec.update(changes)
    (tmp_path / "quadruped.xml").write_text((QUADRUPED_DIR / "quadruped.xml").read_text())
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_quadruped_spec_matches_its_mjcf():
    spec = load_robot_spec("quadruped")
    assert spec.num_joints == 12
    assert spec.joint_names[:3] == ("FR_hip", "FR_thigh", "FR_calf")
    assert spec.control_dt == pytest.approx(0.02)  # 200 Hz physics, 50 Hz policy
    model = spec.load_model()
    assert 11.0 < model.body_subtreemass[model.body(spec.base_body).id] < 13.5  # Go1 scale, about 12 kg
    assert spec.default_joint_pos[1] == pytest.approx(0.8)
    assert spec.effort_limit[2] == pytest.approx(35.5)  # per-joint mapping, by name


def test_joint_missing_from_mjcf_is_named(tmp_path):
    spec = yaml.safe_load((QUADRUPED_DIR / "quadruped.yaml").read_text())
    names = list(spec["joint_names"])
    names[4] = "FL_knee"
    with pytest.raises(SpecError, match="no joint named 'FL_knee'"):
        load_robot_spec(_write_variant(tmp_path, joint_names=names))


def test_default_pose_must_cover_every_joint_by_name(tmp_path):
    default = yaml.safe_load((QUADRUPED_DIR / "quadruped.yaml").read_text())["default_joint_pos"]
    del default["RL_calf"]
    with pytest.raises(SpecError, match="default_joint_pos: missing \\['RL_calf'\\]"):
        load_robot_spec(_write_variant(tmp_path, default_joint_pos=default))


def test_default_pose_as_list_is_refused(tmp_path):
    with pytest.raises(SpecError, match="never a list"):
        load_robot_spec(_write_variant(tmp_path, default_joint_pos=[0.0] * 12))


def test_unknown_foot_and_site_are_named(tmp_path):
    with pytest.raises(SpecError, match="feet: the MJCF has no geom named 'XX_foot'"):
        load_robot_spec(_write_variant(tmp_path, feet=["FR_foot", "FL_foot", "RR_foot", "XX_foot"]))
    with pytest.raises(SpecError, match="imu_site: the MJCF has no site named 'gyro'"):
        load_robot_spec(_write_variant(tmp_path, imu_site="gyro"))


def test_timestep_mismatch_and_missing_field(tmp_path):
    with pytest.raises(SpecError, match=r"physics_dt 0.002 differs"):
        load_robot_spec(_write_variant(tmp_path, physics_dt=0.002))
    spec = yaml.safe_load((QUADRUPED_DIR / "quadruped.yaml").read_text())
    del spec["decimation"]
    (tmp_path / "quadruped.xml").write_text((QUADRUPED_DIR / "quadruped.xml").read_text())
    path = tmp_path / "incomplete.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="missing field\\(s\\) decimation"):
        load_robot_spec(path)


def test_a_floating_base_needs_base_body_imu_and_feet_together(tmp_path):
    spec = yaml.safe_load((QUADRUPED_DIR / "quadruped.yaml").read_text())
    del spec["base_body"]
    (tmp_path / "quadruped.xml").write_text((QUADRUPED_DIR / "quadruped.xml").read_text())
    path = tmp_path / "half_floating.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="names base_body, imu_site, feet; missing base_body"):
        load_robot_spec(path)


def test_per_joint_gain_mapping_must_name_every_joint(tmp_path):
    with pytest.raises(SpecError, match=r"actuators\.kp: missing"):
        load_robot_spec(
            _write_variant(
                tmp_path, actuators={"kp": {"FR_hip": 30.0}, "kd": 1.0, "effort_limit": 20.0, "velocity_limit": 30.0}
            )
        )


def test_unknown_robot_lists_known_ones():
    with pytest.raises(SpecError, match=r"unknown robot 'hexapod'; known robots: .*quadruped"):
        load_robot_spec("hexapod")


def test_torque_actuator_is_refused_naming_it(tmp_path):
    xml = (QUADRUPED_DIR / "quadruped.xml").read_text()
    xml = xml.replace(
        '<position name="RL_calf" joint="RL_calf" class="calf"/>', '<motor name="RL_calf" joint="RL_calf"/>'
    )
    (tmp_path / "quadruped.xml").write_text(xml)
    spec = tmp_path / "quadruped.yaml"
    spec.write_text((QUADRUPED_DIR / "quadruped.yaml").read_text())
    with pytest.raises(SpecError, match="actuator 'RL_calf' driving joint 'RL_calf' must be a <position> servo"):
        load_robot_spec(spec)
