"""Hand-eye calibration (issue 7): `simreal calibrate handeye` from a samples YAML to an easy_handeye2 YAML.

Samples file (paths relative to it; sample indices in messages count from 0)::

    robot: arm                  # robot spec (name under sim/robots or a spec path); needed for joint_states
    camera: camera.yaml         # ROS camera_info YAML, or the same mapping inline; needed for image/image_points
    board: board.yaml           # board spec; needed for image and corner_ids
    frames:                     # optional: frame names written to the output (defaults: the robot's base
      robot_base_frame: base    #   body and ee site when joint_states are used, else base / ee;
      robot_effector_frame: ee  #   camera / board for the tracking frames)
      tracking_base_frame: camera
      tracking_marker_frame: board
    samples:
      # a robot pose: the gripper (ee) in the robot base frame, EITHER given ...
      - robot_pose: {translation: [0.45, 0.02, 0.31], quaternion_xyzw: [1.0, 0.0, 0.0, 0.0]}
        # ... and a board observation: EITHER the board's pose in the camera frame (camera-from-board) ...
        board_pose: {translation: [0.01, -0.03, 0.42], quaternion_xyzw: [0.0, 0.0, 0.0, 1.0]}
      # ... OR joint angles as logged from /joint_states (rad, matched by name), through the robot's FK
      - joint_states: {name: [arm_joint1, ..., arm_joint7], position: [0.1, -0.3, ...]}
        # ... OR an image (the board is detected, then solvePnP with the camera intrinsics) ...
        image: images/0001.png
      - robot_pose: {...}
        # ... OR detected corners from any detector: [u, v] px with object_points ([x, y, z] m, board frame)
        image_points: [[612.3, 301.8], ...]
        object_points: [[0.0, 0.0, 0.0], ...]   # or corner_ids: [0, 1, ...] (needs `board:`)

Modes and the transform written (easy_handeye2's convention; translation in metres, rotation x, y, z, w):

- eye_in_hand: camera on the gripper, board fixed; the camera's pose in the effector frame
  (robot_effector_frame -> tracking_base_frame), calibration_type eye_in_hand, eye_on_hand true.
- eye_to_hand: camera fixed, board on the gripper; the camera's pose in the robot base frame
  (robot_base_frame -> tracking_base_frame), calibration_type eye_on_base, eye_on_hand false.

Residuals (see calibration/handeye_solve.py): the scatter of the board pose every sample implies
(board in base for eye_in_hand, board in gripper for eye_to_hand) about their mean; per sample and RMS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calibration.board_io import atomic_write_yaml
from calibration.handeye_poses import matrix_to_quat_xyzw
from calibration.handeye_samples import load_samples
from calibration.handeye_solve import HandEyeResult, check_mode_method, solve_handeye

CALIBRATION_TYPE = {"eye_in_hand": "eye_in_hand", "eye_to_hand": "eye_on_base"}


def calibrate_handeye(samples_path: Path, mode: str, method: str, out_yaml: Path) -> dict:
    """Solve the hand-eye transform from a samples file and write it as easy_handeye2 YAML; returns the summary."""
    check_mode_method(mode, method)  # before reading a possibly long list of images
    loaded = load_samples(Path(samples_path))
    samples = loaded.samples
    result = solve_handeye(
        [sample.base_from_gripper for sample in samples], [sample.cam_from_board for sample in samples], mode, method
    )
    translation_m = [float(value) for value in result.transform[:3, 3]]
    quat_xyzw = [float(value) for value in matrix_to_quat_xyzw(result.transform[:3, :3])]
    document = handeye_document(mode, method, loaded.frames, translation_m, quat_xyzw, result, samples)
    atomic_write_yaml(Path(out_yaml), _plain(document))
    return {
        "mode": mode,
        "method": method,
        "translation_m": translation_m,
        "quaternion_xyzw": quat_xyzw,
        "rotation_residual_deg": result.rotation_rms_deg,
        "translation_residual_m": result.translation_rms_m,
        "samples_used": len(samples),
        "handeye_yaml": str(out_yaml),
    }


def handeye_document(
    mode: str,
    method: str,
    frames: dict[str, str],
    translation_m: list[float],
    quat_xyzw: list[float],
    result: HandEyeResult,
    samples: list[Any],
) -> dict[str, Any]:
    """The output YAML: easy_handeye2's `parameters` and `transform`, then simreal's method and residuals."""
    per_sample = []
    for sample, rotation_deg, translation_m_i in zip(
        samples, result.rotation_residual_deg, result.translation_residual_m, strict=True
    ):
        row = {"sample": sample.index, "rotation_deg": float(rotation_deg), "translation_m": float(translation_m_i)}
        if sample.reprojection_rms_px is not None:
            row["reprojection_rms_px"] = sample.reprojection_rms_px
        per_sample.append(row)
    x, y, z, w = quat_xyzw
    return {
        "parameters": {
            "name": f"simreal_{CALIBRATION_TYPE[mode]}",
            "calibration_type": CALIBRATION_TYPE[mode],
            "eye_on_hand": mode == "eye_in_hand",
            "freehand_robot_movement": False,
            **frames,
        },
        "transform": {
            "translation": dict(zip("xyz", translation_m, strict=True)),
            "rotation": {"x": x, "y": y, "z": z, "w": w},
        },
        "method": method,
        "samples_used": len(samples),
        "residuals": {
            "kind": "board_pose_scatter",
            "board_pose_in": frames["robot_base_frame" if mode == "eye_in_hand" else "robot_effector_frame"],
            "rotation_rms_deg": result.rotation_rms_deg,
            "translation_rms_m": result.translation_rms_m,
            "per_sample": per_sample,
        },
    }


def _plain(value: Any) -> Any:
    """Numpy scalars as Python floats (safe_dump refuses them)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
