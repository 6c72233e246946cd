"""The hand-eye solve: OpenCV's AX = XB methods, the checks that make them meaningful, and the residuals.

Inputs per sample: T_base_gripper (robot FK or logged pose) and T_cam_board (the board's pose from the
camera, solvePnP). Output X, in easy_handeye2's convention:

- eye_in_hand (camera on the gripper, board fixed in the world): X = T_gripper_cam, the camera's pose in
  the effector frame (easy_handeye2: robot_effector_frame -> tracking_base_frame).
- eye_to_hand (camera fixed, board on the gripper): X = T_base_cam, the camera's pose in the robot base
  frame (easy_handeye2: robot_base_frame -> tracking_base_frame). Solved by feeding OpenCV the inverted
  robot poses T_gripper_base: the board rides the gripper as the camera rides the hand in eye_in_hand.

Residuals: the scatter of the board pose each sample implies, which should be one fixed pose: the board
in the base frame (eye_in_hand: T_base_gripper X T_cam_board) or in the gripper frame (eye_to_hand:
T_gripper_base X T_cam_board). Per sample: the angle (deg) and distance (m) from their mean; overall:
the RMS. Millimetres and tenths of a degree mean a good calibration; an outlier sample stands out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.errors import CalibrationError
from calibration.handeye_poses import (
    invert,
    mean_rotation,
    pose_matrix,
    rotation_angle_deg,
    rotation_vector_rad,
)

MODES = ("eye_in_hand", "eye_to_hand")
METHODS = {
    "tsai": cv2.CALIB_HAND_EYE_TSAI,
    "park": cv2.CALIB_HAND_EYE_PARK,
    "horaud": cv2.CALIB_HAND_EYE_HORAUD,
    "andreff": cv2.CALIB_HAND_EYE_ANDREFF,
    "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
}
MIN_SAMPLES = 3
RECOMMENDED_SAMPLES = 10
# a relative motion smaller than this carries more noise than axis information
MIN_MOTION_ROTATION_DEG = 5.0
# every informative rotation axis within this angle of one line: the solve cannot fix rotation about it
MIN_AXIS_SPREAD_DEG = 10.0


@dataclass(frozen=True)
class HandEyeResult:
    transform: np.ndarray  # 4 x 4 X (see the module docstring)
    rotation_residual_deg: np.ndarray  # per sample
    translation_residual_m: np.ndarray  # per sample

    @property
    def rotation_rms_deg(self) -> float:
        return float(np.sqrt(np.mean(self.rotation_residual_deg**2)))

    @property
    def translation_rms_m(self) -> float:
        return float(np.sqrt(np.mean(self.translation_residual_m**2)))


def check_mode_method(mode: str, method: str) -> None:
    if mode not in MODES:
        raise CalibrationError(f"unknown hand-eye mode '{mode}'; choose one of {', '.join(MODES)}")
    if method not in METHODS:
        raise CalibrationError(f"unknown hand-eye method '{method}'; choose one of {', '.join(METHODS)}")


def check_motions(base_from_gripper: list[np.ndarray]) -> None:
    """Refuse sample sets whose gripper rotations cannot determine X (too few, too small, one axis)."""
    count = len(base_from_gripper)
    if count < MIN_SAMPLES:
        raise CalibrationError(
            f"hand-eye needs at least {MIN_SAMPLES} samples, got {count}; "
            f"record {RECOMMENDED_SAMPLES} or more, rotating the gripper about different axes between them"
        )
    axes, largest_deg = [], 0.0
    for i in range(count):
        for j in range(i + 1, count):
            relative = base_from_gripper[i][:3, :3].T @ base_from_gripper[j][:3, :3]
            vector = rotation_vector_rad(relative)
            angle_deg = float(np.degrees(np.linalg.norm(vector)))
            largest_deg = max(largest_deg, angle_deg)
            if angle_deg >= MIN_MOTION_ROTATION_DEG:
                axes.append(vector / np.linalg.norm(vector))
    if not axes:
        raise CalibrationError(
            f"the gripper barely rotates between samples (largest relative rotation {largest_deg:.2f} deg, "
            f"need >= {MIN_MOTION_ROTATION_DEG:g} deg): rotate the gripper 15-40 deg about at least two "
            "different axes between samples"
        )
    spread_deg = _axis_spread_deg(np.array(axes))
    if spread_deg < MIN_AXIS_SPREAD_DEG:
        raise CalibrationError(
            f"motions rotate about a single axis (all relative rotations of >= {MIN_MOTION_ROTATION_DEG:g} deg "
            f"lie within {spread_deg:.1f} deg of one axis), so the rotation about it is unobservable: rotate "
            "the gripper about at least two different axes between samples"
        )


def _axis_spread_deg(unit_axes: np.ndarray) -> float:
    """Largest angle of an axis from their dominant line (axes are lines: a sign flip is the same axis)."""
    _, vectors = np.linalg.eigh(unit_axes.T @ unit_axes)
    dominant = vectors[:, -1]
    cosines = np.clip(np.abs(unit_axes @ dominant), 0.0, 1.0)
    return float(np.degrees(np.arccos(cosines.min())))


def solve_handeye(
    base_from_gripper: list[np.ndarray], cam_from_board: list[np.ndarray], mode: str, method: str
) -> HandEyeResult:
    """X for this mode (see the module docstring), after the sample checks, with its residuals."""
    check_mode_method(mode, method)
    if len(base_from_gripper) != len(cam_from_board):
        raise CalibrationError(
            f"{len(base_from_gripper)} robot poses but {len(cam_from_board)} board poses; they must pair up"
        )
    check_motions(base_from_gripper)
    robot = base_from_gripper if mode == "eye_in_hand" else [invert(pose) for pose in base_from_gripper]
    try:
        rotation, translation = cv2.calibrateHandEye(
            [pose[:3, :3] for pose in robot],
            [pose[:3, 3] for pose in robot],
            [pose[:3, :3] for pose in cam_from_board],
            [pose[:3, 3] for pose in cam_from_board],
            method=METHODS[method],
        )
    except cv2.error as error:
        raise CalibrationError(
            f"hand-eye method '{method}' failed on these samples ({error.err}); try method 'park' or 'tsai', "
            "and vary the distance to the board between samples (andreff fails when every motion turns about "
            "one point)"
        ) from None
    if method == "andreff":
        # Andreff solves t together with an unconstrained 3 x 3 "rotation"; once that is projected onto a
        # rotation, its t no longer fits it (2-6 mm off on the synthetic rig): re-solve t for the rotation
        translation = translation_for_rotation(robot, cam_from_board, rotation)
    transform = pose_matrix(rotation, translation)
    if not np.all(np.isfinite(transform)):
        raise CalibrationError(
            f"method '{method}' gave no finite result for these samples; "
            "check that each robot pose pairs with its own image, or try method 'park' or 'tsai'"
        )
    board_poses = [pose @ transform @ board for pose, board in zip(robot, cam_from_board, strict=True)]
    rotation_deg, translation_m = board_pose_scatter(board_poses)
    return HandEyeResult(transform, rotation_deg, translation_m)


def translation_for_rotation(
    robot: list[np.ndarray], cam_from_board: list[np.ndarray], rotation: np.ndarray
) -> np.ndarray:
    """Least-squares t of X given its rotation, from every pair of samples: (R_A - I) t = R t_B - t_A."""
    rows, rhs = [], []
    for i in range(len(robot)):
        for j in range(i + 1, len(robot)):
            motion_robot = invert(robot[j]) @ robot[i]  # A: the same pairing OpenCV's methods use
            motion_camera = cam_from_board[j] @ invert(cam_from_board[i])  # B
            rows.append(motion_robot[:3, :3] - np.eye(3))
            rhs.append(rotation @ motion_camera[:3, 3] - motion_robot[:3, 3])
    return np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]


def board_pose_scatter(board_poses: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per pose: angle (deg) and distance (m) from the mean pose."""
    mean_rot = mean_rotation([pose[:3, :3] for pose in board_poses])
    mean_position_m = np.mean([pose[:3, 3] for pose in board_poses], axis=0)
    rotation_deg = np.array([rotation_angle_deg(mean_rot.T @ pose[:3, :3]) for pose in board_poses])
    translation_m = np.array([np.linalg.norm(pose[:3, 3] - mean_position_m) for pose in board_poses])
    return rotation_deg, translation_m
