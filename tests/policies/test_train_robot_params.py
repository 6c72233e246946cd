"""`simreal train --robot-params`: a bad file is one clear line; a good one is trained on and recorded in the run."""

from __future__ import annotations

import pytest
import yaml

from policies.run_dir import find_checkpoint, load_checkpoint, load_run_config
from simreal.cli import main

TINY = ["--task", "quadruped-flat", "--num-envs", "8", "--set", "num_threads=2", "--max-iterations", "1"]
PARAMS = {
    "robot": "quadruped",
    "actuators": {"kp_scale": 0.8, "kd_scale": 1.5, "delay_s": 0.0105},
    "joints": {"damping": 0.2},
    "joint_offsets_rad": {"FR_hip": 0.012},
    "fit": {"method": "test"},
}


def test_bad_params_file_is_one_line_naming_file_and_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**PARAMS, "actuators": {"kp_scale": -0.8}}))
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--robot-params", str(bad), "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad}: actuators.kp_scale must be finite and > 0, got -0.8" in err
    assert not run_dir.exists()  # refused before anything was written
    arm = tmp_path / "arm.yaml"
    arm.write_text("robot: arm\n")
    assert main(["train", *TINY, "--robot-params", str(arm), "--run-dir", str(run_dir)]) == 2
    assert "the parameters are for robot 'arm', not 'quadruped'" in capsys.readouterr().err
    assert main(["train", *TINY, "--robot-params", str(tmp_path / "none.yaml"), "--run-dir", str(run_dir)]) == 2
    assert "none.yaml does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_trains_on_the_params_and_records_them(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    run_dir = tmp_path / "run"
    assert main(["train", *TINY, "--robot-params", str(params), "--run-dir", str(run_dir)]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"]["robot_params"] == PARAMS
    assert load_run_config(run_dir).env.robot_params == PARAMS  # a resume or an eval rebuilds the same robot
    ranges = yaml.safe_load((run_dir / "randomization.yaml").read_text())
    latency = ranges["action_latency_s"]
    assert latency["low"] == pytest.approx(0.0005) and latency["high"] == pytest.approx(0.0205)
    checkpoint = load_checkpoint(find_checkpoint(run_dir))
    assert checkpoint["env_config"]["robot_params"] == PARAMS
    capsys.readouterr()
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--robot-params", str(params)]) == 2
    assert "drop --robot-params" in capsys.readouterr().err
