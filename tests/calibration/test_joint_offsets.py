"""Joint-offset calibration from a held-still joint log: recovery, refusals that name the problem, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from calibration.errors import CalibrationError
from calibration.joint_offsets import JointOffsetConfig, calibrate_joint_offsets, estimate_joint_offsets, load_joint_log
from sim.robot_params import load_robot_params
from sim.robot_spec import load_robot_spec
from simreal.cli import main

SPEC = load_robot_spec("quadruped")
NAMES = list(SPEC.joint_names)


def _offsets(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.05, 0.05, len(NAMES))


def _write_log(path, reference=SPEC.default_joint_pos, offsets=None, names=NAMES, noise_rad=0.002, samples=500):
    """A log like the sysid recorder's: the robot held at `reference`, encoders reading true + offset + noise."""
    rng = np.random.default_rng(1)
    offsets = _offsets() if offsets is None else offsets
    q = reference + offsets + rng.normal(0.0, noise_rad, (samples, len(NAMES)))
    q[::97] += 0.3  # the odd glitched sample: the median ignores it
    columns = [NAMES.index(n) if n in NAMES else 0 for n in names]
    np.savez(
        path,
        format=np.array("simreal-sysid-log-1"),
        joint_names=np.array(names),
        state_time_s=np.arange(samples) * 0.002,
        q_rad=q[:, columns],
    )
    return path


def test_offsets_are_recovered_in_spec_order_from_a_log_in_another_order(tmp_path):
    order = NAMES[::-1]
    log = load_joint_log(_write_log(tmp_path / "held.npz", names=order))
    offsets, spread = estimate_joint_offsets(log, SPEC.default_joint_pos, SPEC, JointOffsetConfig())
    np.testing.assert_allclose(offsets, _offsets(), atol=5e-4)
    assert spread.min() > 0.0015 and spread.max() < 0.0025  # the 2 mrad noise, not the glitches


def test_a_joint_that_moved_halfway_through_is_named(tmp_path):
    path = _write_log(tmp_path / "held.npz", noise_rad=0.0005)
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["q_rad"][250:, NAMES.index("RR_thigh")] += 0.05  # someone pushed the leg
    np.savez(path, **arrays)
    with pytest.raises(CalibrationError, match=r"moved during the log: std of RR_thigh \(0\.0\d+ rad\) exceeds"):
        estimate_joint_offsets(load_joint_log(path), SPEC.default_joint_pos, SPEC, JointOffsetConfig())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"names": NAMES[:-1]}, "q_rad has shape"),
        ({"names": [*NAMES[:-1], "RL_knee"]}, "joint(s) RL_knee unknown to robot 'quadruped'"),
        ({"noise_rad": 0.03}, "the robot moved during the log: std of FR_hip"),
        ({"offsets": np.r_[0.7, np.zeros(11)]}, "FR_hip (+0.700 rad); probably the wrong reference pose"),
        ({"samples": 3}, "3 samples"),
    ],
)
def test_bad_logs_are_refused_with_the_reason(tmp_path, change, message):
    path = tmp_path / "held.npz"
    if "names" in change and len(change["names"]) < len(NAMES):
        rng = np.random.default_rng(0)
        names = change["names"]
        np.savez(path, joint_names=np.array(names), state_time_s=np.zeros(20), q_rad=rng.normal(size=(20, 12)))
    else:
        _write_log(path, **change)
    with pytest.raises(CalibrationError) as raised:
        calibrate_joint_offsets("quadruped", path, tmp_path / "out.yaml")
    assert message in str(raised.value)
    assert not (tmp_path / "out.yaml").exists()


def test_missing_joint_and_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "partial.npz"
    q = np.tile(SPEC.default_joint_pos[:11], (20, 1))
    np.savez(path, joint_names=np.array(NAMES[:11]), state_time_s=np.zeros(20), q_rad=q)
    with pytest.raises(CalibrationError, match="joint\\(s\\) RL_calf of robot 'quadruped' missing"):
        calibrate_joint_offsets("quadruped", path, tmp_path / "out.yaml")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, joint_names=np.array(NAMES, dtype=object), state_time_s=np.zeros(20), q_rad=np.zeros((20, 12)))
    with pytest.raises(CalibrationError, match="no pickled arrays allowed"):
        load_joint_log(pickled)
    no_q = tmp_path / "no_q.npz"
    np.savez(no_q, joint_names=np.array(NAMES), state_time_s=np.zeros(20))
    with pytest.raises(CalibrationError, match="missing array\\(s\\) q_rad"):
        load_joint_log(no_q)


def test_command_writes_offsets_merged_into_an_existing_file(tmp_path, capsys):
    reference = {name: float(v) + 0.1 for name, v in zip(NAMES, SPEC.default_joint_pos, strict=True)}
    (tmp_path / "pose.yaml").write_text(yaml.safe_dump(reference))
    log = _write_log(tmp_path / "held.npz", reference=np.array(list(reference.values())))
    out = tmp_path / "params.yaml"
    sysid = {"robot": "quadruped", "actuators": {"kp_scale": 0.9, "delay_s": 0.01}, "fit": {"sysid": {"rms": 0.01}}}
    out.write_text(yaml.safe_dump(sysid))
    args = [
        "calibrate",
        "joints",
        "--robot",
        "quadruped",
        "--log",
        str(log),
        "--reference",
        str(tmp_path / "pose.yaml"),
    ]
    assert main([*args, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    np.testing.assert_allclose([result["offsets_rad"][n] for n in NAMES], _offsets(), atol=5e-4)
    written = yaml.safe_load(out.read_text())
    assert written["actuators"] == sysid["actuators"] and written["fit"]["sysid"] == {"rms": 0.01}
    assert written["fit"]["joint_offsets"]["samples"] == 500
    params = load_robot_params(out, SPEC)  # a valid parameter file for the robot
    np.testing.assert_allclose(params.offsets_rad(), _offsets(), atol=5e-4)


def test_command_errors_are_one_line_naming_the_problem(tmp_path, capsys):
    log = _write_log(tmp_path / "held.npz")
    args = ["calibrate", "joints", "--robot", "quadruped", "--log", str(log), "--out", str(tmp_path / "p.yaml")]
    assert main(args) == 0
    assert "written" in capsys.readouterr().out
    assert main([*args[:-2], "--reference", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "q.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.yaml does not exist" in err and "Traceback" not in err
    other = tmp_path / "arm.yaml"
    other.write_text("robot: arm\n")
    assert main([*args[:-1], str(other)]) == 2
    err = capsys.readouterr().err
    assert "cannot merge into" in err and "for robot 'arm', not 'quadruped'" in err and "Traceback" not in err
