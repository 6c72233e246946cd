"""Training end to end on a tiny budget: run directory, checkpoints, resume, eval, play, CLI errors."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from policies.run_dir import RunDirError, find_checkpoint, load_checkpoint
from simreal.cli import main

pytestmark = pytest.mark.slow
TINY = ["--num-envs", "32", "--set", "num_threads=2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "tiny"
    assert (
        main(
            ["train", "--task", "quadruped-flat", *TINY, "--max-iterations", "2", "--seed", "7", "--run-dir", str(path)]
        )
        == 0
    )
    return path


def _progress(run_dir: Path) -> list[dict]:
    with (run_dir / "progress.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_run_directory_records_config_seed_commit_and_ranges(run_dir):
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"]["task"] == "quadruped-flat" and config["env"]["num_envs"] == 32
    run = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert run["seed"] == 7 and len(run["git_commit"]) >= 7
    ranges = yaml.safe_load((run_dir / "randomization.yaml").read_text())
    assert ranges["foot_friction"] == {"enabled": True, "low": 0.3, "high": 1.25}
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_loads_without_pickle_and_carries_ranges(run_dir):
    content = load_checkpoint(find_checkpoint(run_dir))
    assert content["iter"] == 1 and content["task"] == "quadruped-flat"
    assert content["randomization"]["trunk_added_mass_kg"]["high"] == 3.0
    assert any(isinstance(v, torch.Tensor) for v in content["actor_state_dict"].values())


def test_resume_continues_the_same_run(run_dir, tmp_path):
    before = _progress(run_dir)
    assert [int(r["iteration"]) for r in before] == [0, 1]
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--max-iterations", "4"]) == 0
    after = _progress(run_dir)
    assert [int(r["iteration"]) for r in after] == [0, 1, 2, 3]
    steps = [int(r["env_steps"]) for r in after]
    assert steps == sorted(steps) and steps[2] == steps[1] + 32 * 24
    assert float(after[2]["wall_time_s"]) >= float(after[1]["wall_time_s"])
    assert load_checkpoint(find_checkpoint(run_dir))["iter"] == 3
    run = yaml.safe_load((run_dir / "run.yaml").read_text())
    assert run["seed"] == 7 and run["resumes"][0]["from_iteration"] == 1  # original provenance kept


def test_resume_after_a_crash_rewrites_the_lost_iterations_once(run_dir):
    # as if the process died after logging iteration 3 but before its checkpoint landed
    find_checkpoint(run_dir, 3).unlink()
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--max-iterations", "4"]) == 0
    assert [int(r["iteration"]) for r in _progress(run_dir)] == [0, 1, 2, 3]
    assert load_checkpoint(find_checkpoint(run_dir))["iter"] == 3


def test_resume_refuses_config_changes_and_finished_runs(run_dir, capsys):
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--num-envs", "64"]) == 2
    assert "drop --num-envs" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(run_dir), "--resume", "--max-iterations", "4"]) == 2
    assert "is complete at iteration 3 of 4" in capsys.readouterr().err


def test_resume_of_a_run_logged_before_a_column_existed_keeps_one_table(run_dir, tmp_path):
    """A run trained by an older simreal (no success_rate column) resumed by this one: the rows stay aligned
    with the header and the learning curve is drawn (it crashed on the longer rows after training)."""
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    rows = _progress(old)
    columns = [name for name in rows[0] if name != "success_rate"]
    lines = [",".join(columns)] + [",".join(row[name] for name in columns) for row in rows]
    (old / "progress.csv").write_text("\n".join(lines) + "\n")
    (old / "learning_curve.png").unlink()
    assert main(["train", "--run-dir", str(old), "--resume", "--max-iterations", "5"]) == 0
    after = _progress(old)
    assert [int(r["iteration"]) for r in after] == [0, 1, 2, 3, 4]
    assert all(None not in row and row["success_rate"] == "nan" for row in after)
    assert float(after[3]["mean_reward"]) == float(rows[3]["mean_reward"])  # the old rows are kept
    assert (old / "learning_curve.png").stat().st_size > 1000


def test_training_refuses_to_overwrite_a_run(run_dir, capsys):
    assert main(["train", *TINY, "--max-iterations", "1", "--run-dir", str(run_dir)]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


def test_eval_prints_exactly_the_documented_keys(run_dir, capsys):
    assert main(["eval", "--run-dir", str(run_dir), "--episodes", "4", "--dynamics", "nominal", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {
        "fall_rate",
        "lin_vel_error_m_s",
        "yaw_rate_error_rad_s",
        "episode_length_s",
        "num_episodes",
        "dynamics",
    }
    assert result["num_episodes"] == 4 and result["dynamics"] == "nominal"
    assert 0.0 <= result["fall_rate"] <= 1.0 and 0.0 < result["episode_length_s"] <= 20.0


def test_play_writes_a_video(run_dir, tmp_path):
    video = tmp_path / "play.mp4"
    frame = tmp_path / "frame.png"
    # a fresh process, as users run it: MuJoCo picks its GL backend at import time
    command = [
        sys.executable,
        "-m",
        "simreal",
        "play",
        "--run-dir",
        str(run_dir),
        "--video",
        str(video),
        "--seconds",
        "1",
        "--frame",
        str(frame),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "DISPLAY")}
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "MUJOCO_GL=egl" in out.stdout or "MUJOCO_GL=osmesa" in out.stdout
    import imageio.v3 as iio

    frames = iio.imread(video)
    assert frames.shape[0] == 50 and frames.shape[1:3] == (480, 640)
    assert frames.std() > 5  # a rendered scene, not a blank image
    assert frame.stat().st_size > 1000


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    assert main(["train", "--task", "quadruped-rough", "--run-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown task 'quadruped-rough'; known tasks: arm-lift, arm-reach, quadruped-flat" in err
        and "Traceback" not in err
    )
    assert main(["eval", "--run-dir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--set", "rewards.torque=1", "--run-dir", str(tmp_path / "y")]) == 2
    assert "unknown config key 'env.rewards.torque'" in capsys.readouterr().err


def test_corrupt_checkpoint_is_refused(tmp_path):
    path = tmp_path / "model_0.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_command_line_entry_point_has_help_with_examples():
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "simreal", "train", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "examples:" in out.stdout and "--resume" in out.stdout
