"""Rigid transforms as 4 x 4 numpy matrices, and ROS-order (x, y, z, w) quaternions at the file boundary.

`T_a_b` maps coordinates in frame b to frame a (the pose of b in a). ROS and easy_handeye2 write
quaternions as (x, y, z, w); simreal's internal (w, x, y, z) never appears in the hand-eye files.
"""

from __future__ import annotations

import cv2
import numpy as np


def quat_xyzw_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """3 x 3 rotation of a quaternion (x, y, z, w); normalised first, so logged values with rounding are fine."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat_xyzw(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) with w >= 0 of a 3 x 3 rotation."""
    rotation_vector = cv2.Rodrigues(np.asarray(rotation, dtype=np.float64))[0].ravel()
    angle_rad = float(np.linalg.norm(rotation_vector))
    if angle_rad < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = rotation_vector / angle_rad
    quat = np.concatenate([axis * np.sin(angle_rad / 2), [np.cos(angle_rad / 2)]])
    return quat if quat[3] >= 0 else -quat


def pose_matrix(rotation: np.ndarray, translation_m: np.ndarray) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = np.asarray(translation_m, dtype=np.float64).ravel()
    return transform


def pose_from_xyzw(translation_m: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    return pose_matrix(quat_xyzw_to_matrix(quat_xyzw), translation_m)


def invert(transform: np.ndarray) -> np.ndarray:
    rotation, translation = transform[:3, :3], transform[:3, 3]
    return pose_matrix(rotation.T, -rotation.T @ translation)


def rotation_vector_rad(rotation: np.ndarray) -> np.ndarray:
    """Axis times angle (rad) of a 3 x 3 rotation."""
    return cv2.Rodrigues(np.asarray(rotation, dtype=np.float64))[0].ravel()


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle of a 3 x 3 rotation (through the rotation vector: arccos of the trace loses small angles)."""
    return float(np.degrees(np.linalg.norm(rotation_vector_rad(rotation))))


def rotation_from_vector(rotation_vector: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rotation_vector, dtype=np.float64).reshape(3, 1))[0]


def mean_rotation(rotations: list[np.ndarray]) -> np.ndarray:
    """Chordal L2 mean: the rotation closest (Frobenius) to the average matrix."""
    u, _, vt = np.linalg.svd(np.mean(rotations, axis=0))
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ fix @ vt
