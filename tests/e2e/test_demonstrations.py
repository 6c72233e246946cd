"""Demonstrations end to end through the `simreal` command: scripted teleop records a dataset headless
(real MuJoCo, real rendering, real video encoding), the recorder survives SIGKILL, and behaviour cloning
turns the dataset into a run that `simreal eval` reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robot_io.datasets import check_dataset, load_dataset
from simreal.cli import main

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SMALL_IMAGES = ["--image-size", "64", "48"]


def teleop_command(dataset: Path, episodes: int) -> list[str]:
    return [sys.executable, "-m", "simreal", "teleop", "--task", "arm-lift", "--device", "scripted",
            "--dataset", str(dataset), "--episodes", str(episodes), *SMALL_IMAGES]  # fmt: skip


def test_recorder_killed_during_episode_7_of_10_keeps_6_and_resumes(tmp_path):
    dataset = tmp_path / "lift"
    process = subprocess.Popen(
        teleop_command(dataset, 10), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    try:
        for line in process.stdout:  # "episode 5: ..." is the 6th committed episode: the 7th is being recorded
            lines.append(line)
            if line.startswith("episode 5:"):
                break
        time.sleep(1.0)  # well inside the 7th episode (each takes several seconds)
        assert process.poll() is None, "".join(lines)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert check_dataset(dataset) == [], "the killed dataset does not check clean"
    assert load_dataset(dataset).num_episodes == 6
    assert main(["dataset", "check", str(dataset)]) == 0
    resumed = subprocess.run(teleop_command(dataset, 4), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ds = load_dataset(dataset)
    assert ds.num_episodes == 10
    assert check_dataset(dataset) == []
    assert [int(e["episode_index"]) for e in ds.episodes] == list(range(10))


def test_scripted_demonstrations_train_a_policy_that_eval_runs(tmp_path, capsys):
    dataset, run_dir = tmp_path / "lift", tmp_path / "bc"
    # its own process: offscreen GL must be chosen before mujoco is first imported, and pytest imported it
    recorded = subprocess.run(teleop_command(dataset, 3), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    ds = load_dataset(dataset)
    assert ds.num_episodes == 3 and ds.fps == 30
    frames = ds.frames(0)
    assert len(frames["observation.state"]) == 180  # 6 s episodes at 30 fps
    for camera in ("wrist_cam", "scene_cam"):
        video = ds.video_frames(0, f"observation.images.{camera}")
        assert video.shape == (180, 48, 64, 3) and video.std() > 5.0  # rendered, not blank
    capsys.readouterr()
    assert main(["train-bc", "--dataset", str(dataset), "--task", "arm-lift", "--run-dir", str(run_dir),
                 "--epochs", "30"]) == 0  # fmt: skip
    rows = (run_dir / "progress.csv").read_text().splitlines()[1:]
    train_losses = [float(row.split(",")[2]) for row in rows]
    assert len(train_losses) == 30 and train_losses[-1] < 0.3 * train_losses[0]  # it fits the demonstrations
    capsys.readouterr()
    assert main(["eval", "--run-dir", str(run_dir), "--episodes", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_episodes"] == 4 and 0.0 <= result["success_rate"] <= 1.0


def test_replay_of_a_nominal_recording_retraces_it(tmp_path, capsys):
    dataset = tmp_path / "lift"
    command = [*teleop_command(dataset, 2), "--nominal"]
    recorded = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    capsys.readouterr()
    assert main(["dataset", "replay", str(dataset), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["episodes"] == 2
    for episode in result["per_episode"]:
        assert episode["recorded_success"] and episode["replayed_success"]
        # open loop from the recorded start, targets interpolated between 30 fps frames: measured 0.8-0.9 mm
        assert episode["ee_error_rms_m"] < 0.003
        assert abs(episode["replayed_object_lift_m"] - episode["recorded_object_lift_m"]) < 0.01
    assert main(["dataset", "replay", str(dataset), "--episode", "2"]) == 2
    assert "episodes 0..1, not 2" in capsys.readouterr().err
    assert main(["dataset", "replay", str(dataset), "--task", "quadruped-flat"]) == 2
    assert "quadruped" in capsys.readouterr().err
