"""Synthetic hand-eye data with known answer: a samples YAML whose noise enters where a real rig's does.

A true hand-eye transform, camera views of a chessboard from varied directions (tilted 10-35 degrees
about the board's centre, rolled up to 30 degrees about the optical axis, so consecutive poses differ by
rotations about several axes), the robot poses those views imply, then noise: robot poses perturbed by
`robot_noise_m` / `robot_noise_deg` (per axis, Gaussian), the board corners projected through a
distorted pinhole camera with cv2.projectPoints and perturbed by `pixel_noise_px`. The samples file
carries `image_points` + `object_points`, so the board pose is recovered by solvePnP as for a detector.
Useful to try `simreal calibrate handeye` without a robot, and for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.handeye_poses import (
    invert,
    matrix_to_quat_xyzw,
    pose_matrix,
    rotation_from_vector,
    rotation_vector_rad,
)

# a 1280 x 720 camera with moderate barrel distortion (plumb_bob k1 k2 p1 p2 k3)
CAMERA = {
    "image_width": 1280,
    "image_height": 720,
    "camera_name": "synthetic",
    "camera_matrix": {"rows": 3, "cols": 3, "data": [900.0, 0.0, 640.0, 0.0, 900.0, 360.0, 0.0, 0.0, 1.0]},
    "distortion_model": "plumb_bob",
    "distortion_coefficients": {"rows": 1, "cols": 5, "data": [-0.12, 0.08, 0.0005, -0.0004, -0.02]},
}
BOARD_COLS, BOARD_ROWS, SQUARE_M = 10, 7, 0.03  # inner corners of a chessboard, board frame z = 0


@dataclass(frozen=True)
class SynthHandEye:
    mode: str
    true_transform: np.ndarray  # X: T_gripper_cam (eye_in_hand) or T_base_cam (eye_to_hand)
    base_from_gripper_measured: list[np.ndarray]  # with robot noise
    image_points: list[np.ndarray]  # (N, 2) with pixel noise
    object_points: np.ndarray  # (N, 3) board frame


def board_corners_m() -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(BOARD_COLS), np.arange(BOARD_ROWS))
    return np.stack([cols.ravel() * SQUARE_M, rows.ravel() * SQUARE_M, np.zeros(cols.size)], axis=1)


def camera_matrices() -> tuple[np.ndarray, np.ndarray]:
    matrix = np.array(CAMERA["camera_matrix"]["data"]).reshape(3, 3)
    return matrix, np.array(CAMERA["distortion_coefficients"]["data"])


def board_views(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """T_cam_board for `count` views with the whole board inside the image (at least 20 px from the edges)."""
    views: list[np.ndarray] = []
    while len(views) < count:
        view = _random_view(rng)
        points = project(view, 0.0, rng)
        width, height = CAMERA["image_width"], CAMERA["image_height"]
        inside = (points >= 20).all() and (points[:, 0] <= width - 20).all() and (points[:, 1] <= height - 20).all()
        if inside:
            views.append(view)
    return views


def _random_view(rng: np.random.Generator) -> np.ndarray:
    """A camera aimed near the board's centre from a random tilt, roll and distance.

    Aim point and distance vary on purpose: a camera that always orbits one point makes every gripper
    motion a rotation about that point, which Andreff's linear method cannot tell from a zero rotation.
    """
    centre = np.array([(BOARD_COLS - 1) * SQUARE_M / 2, (BOARD_ROWS - 1) * SQUARE_M / 2, 0.0])
    aim = centre + np.append(rng.uniform(-0.04, 0.04, 2), 0.0)
    direction = rng.uniform(0, 2 * np.pi)
    tilt_rad = np.radians(rng.uniform(10.0, 35.0))
    orbit = rotation_from_vector(tilt_rad * np.array([np.cos(direction), np.sin(direction), 0.0]))
    roll = rotation_from_vector([0.0, 0.0, np.radians(rng.uniform(-30.0, 30.0))])
    # camera z (optical axis) along board +z before the orbit: the board faces the camera
    rotation_board_cam = orbit @ roll
    position_board_cam_m = aim - rotation_board_cam @ np.array([0.0, 0.0, rng.uniform(0.4, 0.55)])
    return invert(pose_matrix(rotation_board_cam, position_board_cam_m))


def perturb_pose(pose: np.ndarray, noise_m: float, noise_deg: float, rng: np.random.Generator) -> np.ndarray:
    rotation = rotation_from_vector(np.radians(noise_deg) * rng.standard_normal(3)) @ pose[:3, :3]
    return pose_matrix(rotation, pose[:3, 3] + noise_m * rng.standard_normal(3))


def project(cam_from_board: np.ndarray, noise_px: float, rng: np.random.Generator) -> np.ndarray:
    matrix, distortion = camera_matrices()
    rvec = rotation_vector_rad(cam_from_board[:3, :3])
    points = cv2.projectPoints(board_corners_m(), rvec, cam_from_board[:3, 3], matrix, distortion)[0].reshape(-1, 2)
    return points + noise_px * rng.standard_normal(points.shape)


def make_handeye(
    mode: str,
    count: int = 15,
    seed: int = 0,
    robot_noise_m: float = 1e-4,
    robot_noise_deg: float = 0.01,
    pixel_noise_px: float = 0.5,
) -> SynthHandEye:
    """A synthetic rig for `mode` (eye_in_hand: board fixed in the base; eye_to_hand: board on the gripper)."""
    rng = np.random.default_rng(seed)
    views = board_views(count, rng)
    if mode == "eye_in_hand":
        gripper_from_cam = pose_matrix(rotation_from_vector([0.05, -0.08, 1.5]), [0.06, -0.03, 0.09])
        base_from_board = pose_matrix(rotation_from_vector([0.0, 0.0, 0.4]), [0.55, 0.05, 0.0])
        true_transform = gripper_from_cam
        robot = [base_from_board @ invert(view) @ invert(gripper_from_cam) for view in views]
    else:
        base_from_cam = pose_matrix(rotation_from_vector([2.2, 0.3, -0.4]), [1.1, 0.2, 0.7])
        gripper_from_board = pose_matrix(rotation_from_vector([0.1, 0.2, -0.3]), [0.02, -0.05, 0.04])
        true_transform = base_from_cam
        robot = [base_from_cam @ view @ invert(gripper_from_board) for view in views]
    measured = [perturb_pose(pose, robot_noise_m, robot_noise_deg, rng) for pose in robot]
    image_points = [project(view, pixel_noise_px, rng) for view in views]
    return SynthHandEye(mode, true_transform, measured, image_points, board_corners_m())


def pose_entry(pose: np.ndarray) -> dict[str, list[float]]:
    """A pose as the samples file writes it."""
    return {
        "translation": [float(value) for value in pose[:3, 3]],
        "quaternion_xyzw": [float(value) for value in matrix_to_quat_xyzw(pose[:3, :3])],
    }


def samples_document(rig: SynthHandEye) -> dict[str, Any]:
    """The samples YAML mapping for a synthetic rig (inline camera, image_points + object_points)."""
    object_points = [[float(value) for value in row] for row in rig.object_points]
    samples = [
        {
            "robot_pose": pose_entry(pose),
            "image_points": [[float(value) for value in row] for row in points],
            "object_points": object_points,
        }
        for pose, points in zip(rig.base_from_gripper_measured, rig.image_points, strict=True)
    ]
    return {"robot": "arm", "camera": CAMERA, "samples": samples}


def write_samples(rig: SynthHandEye, path: Path) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(samples_document(rig), sort_keys=False, default_flow_style=None))
    return path
