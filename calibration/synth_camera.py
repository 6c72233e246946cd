"""A pinhole camera with plumb_bob (OpenCV k1 k2 p1 p2 k3) distortion, read and written in the camera.yaml
format: ROS camera_info YAML, the format of `simreal calibrate camera`'s output and of synthetic truth.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.board_io import read_yaml_mapping
from calibration.errors import CalibrationError

DISTORTION_MODEL = "plumb_bob"
DISTORTION_NAMES = ("k1", "k2", "p1", "p2", "k3")


@dataclass(frozen=True)
class CameraModel:
    """Image size in pixels, focal lengths and principal point in pixels, distortion (k1, k2, p1, p2, k3)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    name: str = "camera"

    @classmethod
    def typical(cls, width: int = 1280, height: int = 720) -> CameraModel:
        """A webcam-like camera: about 70 degrees across, square-ish pixels, principal point a little off centre,
        moderate barrel distortion."""
        fx = 0.711 * width
        return cls(
            width=width,
            height=height,
            fx=fx,
            fy=0.995 * fx,
            cx=0.5 * width + 0.0041 * width,
            cy=0.5 * height - 0.0029 * height,
            distortion=(-0.12, 0.08, 0.0008, -0.0005, -0.02),
            name="synthetic",
        )

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height), as OpenCV wants it."""
        return self.width, self.height

    @property
    def camera_matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def dist_coeffs(self) -> np.ndarray:
        return np.array(self.distortion, dtype=np.float64)

    def project(self, points_m: np.ndarray, rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
        """Pixel positions (N, 2) of points (N, 3) given in a frame posed by (rvec, tvec) in the camera frame."""
        points_m, rvec, tvec = (np.asarray(a, np.float64) for a in (points_m, rvec, tvec))
        pixels, _ = cv2.projectPoints(points_m, rvec, tvec, self.camera_matrix, self.dist_coeffs)
        return pixels.reshape(-1, 2)

    def projection_matrix(self) -> np.ndarray:
        """ROS P for a monocular camera: the camera matrix of the undistorted image that keeps only valid
        pixels (alpha 0, as ROS camera_calibration does), with a zero fourth column."""
        new_k, _ = cv2.getOptimalNewCameraMatrix(self.camera_matrix, self.dist_coeffs, self.image_size, 0.0)
        return np.hstack([new_k, np.zeros((3, 1))])

    def to_yaml_dict(self) -> dict[str, Any]:
        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": self.name,
            "camera_matrix": _matrix(self.camera_matrix),
            "distortion_model": DISTORTION_MODEL,
            "distortion_coefficients": _matrix(self.dist_coeffs.reshape(1, -1)),
            "rectification_matrix": _matrix(np.eye(3)),
            "projection_matrix": _matrix(self.projection_matrix()),
        }

    @classmethod
    def from_yaml_dict(cls, data: dict[str, Any], source: str = "camera.yaml") -> CameraModel:
        """Parse the camera.yaml fields; errors name `source` and the field. Extra fields are ignored."""
        width = _positive_int(data, "image_width", source)
        height = _positive_int(data, "image_height", source)
        k = _read_matrix(data, "camera_matrix", (3, 3), source)
        if data.get("distortion_model") != DISTORTION_MODEL:
            raise CalibrationError(
                f"{source}: field distortion_model is {data.get('distortion_model')!r}; "
                f"only {DISTORTION_MODEL} is supported"
            )
        d = _read_matrix(data, "distortion_coefficients", (1, 5), source).ravel()
        if k[0, 0] <= 0 or k[1, 1] <= 0 or k[0, 1] != 0 or k[1, 0] != 0 or list(k[2]) != [0, 0, 1]:
            raise CalibrationError(f"{source}: field camera_matrix must be [fx 0 cx; 0 fy cy; 0 0 1] with fx, fy > 0")
        return cls(
            width=width,
            height=height,
            fx=float(k[0, 0]),
            fy=float(k[1, 1]),
            cx=float(k[0, 2]),
            cy=float(k[1, 2]),
            distortion=tuple(float(v) for v in d),
            name=str(data.get("camera_name", "camera")),
        )


def load_camera(path: Path) -> CameraModel:
    """Read a camera.yaml (or a synthetic truth.yaml)."""
    return CameraModel.from_yaml_dict(read_yaml_mapping(path, "camera file"), source=str(path))


def _matrix(values: np.ndarray) -> dict[str, Any]:
    return {"rows": int(values.shape[0]), "cols": int(values.shape[1]), "data": [float(v) for v in values.ravel()]}


def _positive_int(data: dict[str, Any], field: str, source: str) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CalibrationError(f"{source}: field {field} must be a positive whole number of pixels, got {value!r}")
    return value


def _read_matrix(data: dict[str, Any], field: str, shape: tuple[int, int], source: str) -> np.ndarray:
    """A {rows, cols, data} matrix of the given shape, all finite numbers."""
    entry = data.get(field)
    if not isinstance(entry, dict) or not {"rows", "cols", "data"} <= entry.keys():
        raise CalibrationError(f"{source}: field {field} must be a mapping with rows, cols and data")
    values = entry["data"]
    ok = (entry["rows"], entry["cols"]) == shape and isinstance(values, list) and len(values) == shape[0] * shape[1]
    if ok:
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not ok or not np.all(np.isfinite(np.asarray(values, dtype=np.float64))):
        raise CalibrationError(
            f"{source}: field {field} must be {shape[0]} x {shape[1]} finite numbers "
            f"(rows: {shape[0]}, cols: {shape[1]}, data: a list of {shape[0] * shape[1]})"
        )
    return np.asarray(values, dtype=np.float64).reshape(shape)
