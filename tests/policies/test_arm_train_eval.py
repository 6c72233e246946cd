"""Manipulation tasks through the same trainer, evaluation, play and export as locomotion, on a tiny budget."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest
import yaml

import simreal_rt
from policies.run_dir import find_checkpoint, load_checkpoint
from simreal.cli import main

pytestmark = pytest.mark.slow
TINY = ["--num-envs", "16", "--set", "num_threads=2"]


@pytest.fixture(scope="module")
def reach_run(tmp_path_factory) -> Path:
    """arm-reach under a wall-time budget smaller than one iteration: training stops after the first."""
    path = tmp_path_factory.mktemp("runs") / "reach"
    config = path.parent / "budget.yaml"
    config.write_text(yaml.safe_dump({"train": {"max_wall_time_s": 0.01, "max_iterations": 1000}}))
    argv = ["train", "--task", "arm-reach", *TINY, "--config", str(config), "--seed", "3", "--run-dir", str(path)]
    assert main(argv) == 0
    return path


def test_wall_time_budget_stops_training_and_keeps_the_last_iteration(reach_run):
    with (reach_run / "progress.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [0]
    assert float(rows[0]["success_rate"]) >= 0.0  # the column a manipulation task fills
    assert load_checkpoint(find_checkpoint(reach_run))["iter"] == 0
    summary = yaml.safe_load((reach_run / "summary.yaml").read_text())
    assert 0.0 <= summary["final_success_rate"] <= 1.0 and "final_lin_vel_error_m_s" not in summary
    assert (reach_run / "learning_curve.png").stat().st_size > 1000


def test_eval_reports_success_rate_for_manipulation(reach_run, capsys):
    argv = ["eval", "--run-dir", str(reach_run), "--episodes", "4", "--dynamics", "nominal", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_episodes"] == 4 and 0.0 <= result["success_rate"] <= 1.0
    assert result["final_position_error_m"] > 0 and "final_orientation_error_rad" in result
    assert "fall_rate" not in result


def test_reach_run_exports_a_bundle_the_cpp_core_loads(reach_run, tmp_path):
    assert main(["export", "--run-dir", str(reach_run), "--out", str(tmp_path / "bundle")]) == 0
    bundle = simreal_rt.load_bundle(str(tmp_path / "bundle"))
    assert [t["name"] for t in bundle.spec["observation"]["terms"]][-1] == "target_pose"
    assert bundle.spec["robot"] == "arm" and bundle.spec["provenance"]["task"] == "arm-reach"


def test_play_renders_the_arm_from_its_scene_camera(reach_run, tmp_path):
    """A fresh process, as users run it (MuJoCo picks its GL backend at import), with randomized cameras and lights."""
    video, frame = tmp_path / "reach.mp4", tmp_path / "reach.png"
    command = [sys.executable, "-m", "simreal", "play", "--run-dir", str(reach_run), "--video", str(video)]
    command += ["--seconds", "0.4", "--frame", str(frame), "--dynamics", "randomized"]
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    frames = iio.imread(video)
    assert frames.shape == (20, 480, 640, 3)
    assert frames[10].std() > 10.0  # a scene, not a blank image


def test_resume_refuses_a_run_that_used_its_wall_time_budget(reach_run, capsys):
    assert main(["train", "--resume", "--run-dir", str(reach_run)]) == 2
    err = capsys.readouterr().err
    assert "used its wall-time budget" in err and "--max-minutes" in err and "Traceback" not in err
