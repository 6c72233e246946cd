"""`simreal calibrate ...` end to end: board -> synthetic views -> intrinsics, and hand-eye from a samples file.

Real OpenCV on rendered images; the checks are issue 7's bars, read from the command's own --json output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from calibration.handeye_poses import matrix_to_quat_xyzw
from calibration.handeye_synth import make_handeye, write_samples
from simreal.cli import main


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_board_synth_and_camera_commands_recover_the_true_intrinsics(tmp_path, capsys):
    board, views = tmp_path / "board", tmp_path / "views"
    assert main(["calibrate", "board", "--out", str(board)]) == 0
    assert {p.name for p in board.iterdir()} >= {"board.yaml", "board.png", "board.pdf"}
    assert main(["calibrate", "synth", "--board", str(board / "board.yaml"), "--views", "25", "--out", str(views)]) == 0
    capsys.readouterr()
    args = ["calibrate", "camera", "--board", str(board / "board.yaml"), "--images", str(views / "*.png")]
    assert main([*args, "--out", str(tmp_path / "camera.yaml"), "--json"]) == 0
    result = _json(capsys)
    truth = yaml.safe_load((views / "truth.yaml").read_text())["camera_matrix"]["data"]
    fx, cx, fy, cy = truth[0], truth[2], truth[4], truth[5]
    errors = f"fx {100 * (result['fx'] / fx - 1):+.3f} %, fy {100 * (result['fy'] / fy - 1):+.3f} %, "
    errors += f"cx {result['cx'] - cx:+.2f} px, cy {result['cy'] - cy:+.2f} px"
    print(f"calibrate camera: rms {result['rms']:.3f} px, {errors}")
    assert result["views_used"] == 25 and result["rms"] <= 0.3
    assert abs(result["fx"] / fx - 1) <= 0.005 and abs(result["fy"] / fy - 1) <= 0.005
    assert abs(result["cx"] - cx) <= 3.0 and abs(result["cy"] - cy) <= 3.0
    camera = yaml.safe_load((tmp_path / "camera.yaml").read_text())
    assert camera["distortion_model"] == "plumb_bob" and camera["image_width"] == 1280


def test_camera_command_names_a_pattern_that_matches_nothing(tmp_path, capsys):
    assert main(["calibrate", "board", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    args = ["calibrate", "camera", "--board", str(tmp_path / "board.yaml"), "--images", str(tmp_path / "none*.png")]
    assert main([*args, "--out", str(tmp_path / "camera.yaml")]) == 2
    assert "matches no file" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["eye_in_hand", "eye_to_hand"])
def test_handeye_command_recovers_the_true_transform(tmp_path, capsys, mode):
    rig = make_handeye(mode, count=15, seed=0)  # 0.1 mm / 0.01 deg robot noise, 0.5 px image noise
    samples = write_samples(rig, tmp_path / "samples.yaml")
    capsys.readouterr()
    out = tmp_path / "handeye.yaml"
    assert main(["calibrate", "handeye", "--mode", mode, "--samples", str(samples), "--method", "tsai",
                 "--out", str(out), "--json"]) == 0  # fmt: skip
    result = _json(capsys)
    translation_error_m = np.linalg.norm(np.array(result["translation_m"]) - rig.true_transform[:3, 3])
    true_quat = matrix_to_quat_xyzw(rig.true_transform[:3, :3])
    rotation_error_deg = np.degrees(2 * np.arccos(min(1.0, abs(float(np.dot(result["quaternion_xyzw"], true_quat))))))
    assert rotation_error_deg <= 0.2 and translation_error_m <= 0.002
    document = yaml.safe_load(out.read_text())
    assert document["parameters"]["eye_on_hand"] == (mode == "eye_in_hand")
    assert set(document["transform"]["rotation"]) == {"x", "y", "z", "w"}
