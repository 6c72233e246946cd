"""Find a board's inner corners in an image: ChArUco through its markers, chessboards through OpenCV's
sector-based detector, both numbered as in `BoardSpec.corner_object_points`."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from calibration.errors import CalibrationError

if TYPE_CHECKING:
    from calibration.board import BoardSpec

# exhaustive search + accuracy: slower, but finds strongly tilted or blurred boards and refines corners itself
CHESSBOARD_FLAGS = cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY


def detect_corners(spec: BoardSpec, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(object_points (N, 3) float32 metres in the board frame, image_points (N, 2) float32 px, ids (N,) int)
    of the inner corners found, or None when no corner of the board is found.

    A ChArUco board may be partly visible (N can be small: callers check N); a chessboard is all or nothing.
    `image` is greyscale or BGR(A), 8 or 16 bit.
    """
    gray = _gray_u8(image)
    found = _detect_charuco(spec, gray) if spec.kind == "charuco" else _detect_chessboard(spec, gray)
    if found is None:
        return None
    image_points, ids = found
    object_points = spec.corner_object_points()[ids]
    return object_points, image_points.astype(np.float32), ids


def _gray_u8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image // 257).astype(np.uint8)
    if image.dtype != np.uint8:
        raise CalibrationError(f"detect_corners needs an 8- or 16-bit image, got {image.dtype}: convert it first")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim != 2:
        raise CalibrationError(f"detect_corners needs a greyscale or colour image, got shape {image.shape}")
    return image


@lru_cache(maxsize=8)
def _charuco_detector(spec: BoardSpec) -> cv2.aruco.CharucoDetector:
    """Building the detector decodes the dictionary, so reuse it across the images of one board."""
    return cv2.aruco.CharucoDetector(spec.cv_board())


def _detect_charuco(spec: BoardSpec, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    corners, ids, _, _ = _charuco_detector(spec).detectBoard(gray)
    if ids is None or len(ids) == 0:
        return None
    return corners.reshape(-1, 2), ids.ravel().astype(np.int64)


def _detect_chessboard(spec: BoardSpec, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    found, corners = cv2.findChessboardCornersSB(gray, spec.pattern_size, flags=CHESSBOARD_FLAGS)
    if not found:
        return None
    grid = _orient_grid(gray, corners.reshape(spec.rows - 1, spec.cols - 1, 2))
    if grid is None:
        return None
    return grid.reshape(-1, 2), np.arange(spec.corner_count, dtype=np.int64)


def _orient_grid(gray: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Put corner 0 next to the black top-left square, whatever the order OpenCV returned.

    OpenCV may return the grid mirrored or turned by 180 degrees. The printed side seen by the camera
    keeps the board's handedness (x right, y down gives a clockwise turn in the image), and with one
    even and one odd count of squares the outer corner squares at the two ends differ in colour.
    None when the colours cannot be told apart (then the detection is not trustworthy).
    """
    step_x = grid[0, 1] - grid[0, 0]
    step_y = grid[1, 0] - grid[0, 0]
    if step_x[0] * step_y[1] - step_x[1] * step_y[0] < 0:
        grid = grid[::-1]
        step_x, step_y = grid[0, 1] - grid[0, 0], grid[1, 0] - grid[0, 0]
    # centres of the outer square diagonal from corner 0 and of its neighbour along the row, which is opposite in colour
    corner_square = grid[0, 0] - 0.5 * step_x - 0.5 * step_y
    neighbour_square = grid[0, 0] + 0.5 * step_x - 0.5 * step_y
    corner_level, neighbour_level = _mean_level(gray, corner_square), _mean_level(gray, neighbour_square)
    if corner_level is None or neighbour_level is None or abs(corner_level - neighbour_level) < 20:
        return None
    if corner_level > neighbour_level:
        grid = grid[::-1, ::-1]
    return np.ascontiguousarray(grid)


def _mean_level(gray: np.ndarray, centre: np.ndarray, radius_px: int = 2) -> float | None:
    """Mean grey level in a small window, None outside the image."""
    x, y = round(float(centre[0])), round(float(centre[1]))
    if not (radius_px <= x < gray.shape[1] - radius_px and radius_px <= y < gray.shape[0] - radius_px):
        return None
    return float(gray[y - radius_px : y + radius_px + 1, x - radius_px : x + radius_px + 1].mean())
