"""Render a board seen by a distorted pinhole camera: each (supersampled) output pixel's ray is
undistorted, intersected with the board plane and looks up the board image there.

Pixel centres are at whole coordinates, as in OpenCV: a supersampled pixel a covers output
coordinate (a + 0.5) / S - 0.5, so averaging S x S blocks puts the result back on the output grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.board import BoardSpec
from calibration.errors import CalibrationError
from calibration.synth_camera import CameraModel

MAX_TEXTURE_PX = 4096  # largest side of the finest board image; keeps memory under ~70 MB
UNDISTORT_TOLERANCE_PX = 1e-3  # the rays must reproject onto their pixels this well, or the geometry is off


@dataclass
class BoardTexture:
    """The board image (with its quiet zone) at halving resolutions, as floats in [0, 1] (0 = black ink)."""

    spec: BoardSpec
    levels: list[np.ndarray]
    square_px: int  # pixels per square at level 0

    @classmethod
    def build(cls, spec: BoardSpec, levels: int = 7) -> BoardTexture:
        square_px = 256
        while (max(spec.cols, spec.rows) + 1) * square_px > MAX_TEXTURE_PX and square_px > 2**levels:
            square_px //= 2
        image = spec.image(square_px).astype(np.float32) / 255.0
        pyramid = [image]
        for _ in range(levels - 1):
            # an exact 2 x 2 box average keeps texel centres where `texel_coordinates` expects them
            pyramid.append(cv2.resize(pyramid[-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        return cls(spec, pyramid, square_px)

    def texels_per_m(self, level: int) -> float:
        return self.square_px / 2**level / self.spec.square_m

    def level_for(self, texels_per_px: float) -> int:
        """The level whose texels are at least as large as the pixel footprint (so bilinear lookup does not alias)."""
        level = int(np.floor(np.log2(max(texels_per_px, 1.0))))
        return min(level, len(self.levels) - 1)


def pixel_rays(camera: CameraModel, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalised ray directions (x, y, 1) of every supersampled pixel, two (H*S, W*S) float32 arrays."""
    s = supersample
    u = (np.arange(camera.width * s) + 0.5) / s - 0.5
    v = (np.arange(camera.height * s) + 0.5) / s - 0.5
    uu, vv = np.meshgrid(u, v)
    pixels = np.stack([uu.ravel(), vv.ravel()], axis=1).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    normalised = cv2.undistortPointsIter(pixels, camera.camera_matrix, camera.dist_coeffs, None, None, criteria)
    normalised = normalised.reshape(-1, 2)
    _check_rays(camera, pixels.reshape(-1, 2), normalised)
    x = normalised[:, 0].reshape(uu.shape).astype(np.float32)
    y = normalised[:, 1].reshape(uu.shape).astype(np.float32)
    return x, y


def _check_rays(camera: CameraModel, pixels: np.ndarray, normalised: np.ndarray) -> None:
    """Re-distort a sample of the rays: a camera whose distortion folds over cannot be rendered faithfully."""
    sample = slice(None, None, 97)
    points = np.concatenate([normalised[sample], np.ones((len(normalised[sample]), 1))], axis=1)
    back = camera.project(points, np.zeros(3), np.zeros(3))
    error_px = np.abs(back - pixels[sample]).max()
    if not error_px < UNDISTORT_TOLERANCE_PX:
        raise CalibrationError(
            f"the camera's distortion {camera.distortion} cannot be inverted over the image (error {error_px:.3g} px): "
            "use smaller distortion coefficients"
        )


def board_outline(spec: BoardSpec, points_per_edge: int = 24) -> np.ndarray:
    """Points along the outer edge of the printed sheet (board plus quiet zone), (N, 3) metres."""
    q = spec.quiet_zone_m
    xs = np.linspace(-q, spec.width_m + q, points_per_edge)
    ys = np.linspace(-q, spec.height_m + q, points_per_edge)
    edges = [
        np.stack([xs, np.full_like(xs, -q)], 1),
        np.stack([xs, np.full_like(xs, spec.height_m + q)], 1),
        np.stack([np.full_like(ys, -q), ys], 1),
        np.stack([np.full_like(ys, spec.width_m + q), ys], 1),
    ]
    outline = np.concatenate(edges)
    return np.concatenate([outline, np.zeros((len(outline), 1))], axis=1)


def render_board(
    camera: CameraModel,
    rays: tuple[np.ndarray, np.ndarray],
    texture: BoardTexture,
    rvec: np.ndarray,
    tvec: np.ndarray,
    supersample: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(board intensity premultiplied by coverage, coverage) at output resolution, float32 (H, W) each."""
    s = supersample
    shape = (camera.height, camera.width)
    board, alpha = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    box = _pixel_box(camera, texture.spec, rvec, tvec)
    if box is None:
        return board, alpha
    u0, v0, u1, v1 = box
    x, y = rays[0][v0 * s : v1 * s, u0 * s : u1 * s], rays[1][v0 * s : v1 * s, u0 * s : u1 * s]
    rotation, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    # the plane z = 0 of the board maps to normalised image points by the homography [r1 r2 t]
    to_board = np.linalg.inv(np.column_stack([rotation[:, 0], rotation[:, 1], np.ravel(tvec)])).astype(np.float32)
    w = to_board[2, 0] * x + to_board[2, 1] * y + to_board[2, 2]
    in_front = w > 1e-6  # rays that meet the plane behind the camera see background
    w = np.where(in_front, w, 1.0)
    board_x_m = (to_board[0, 0] * x + to_board[0, 1] * y + to_board[0, 2]) / w
    board_y_m = (to_board[1, 0] * x + to_board[1, 1] * y + to_board[1, 2]) / w
    level = texture.level_for(_texels_per_pixel(camera, texture, rotation, tvec, s))
    per_m = texture.texels_per_m(level)
    quiet_m = texture.spec.quiet_zone_m
    map_x = np.where(in_front, (board_x_m + quiet_m) * per_m - 0.5, -1e6).astype(np.float32)
    map_y = np.where(in_front, (board_y_m + quiet_m) * per_m - 0.5, -1e6).astype(np.float32)
    image = texture.levels[level]
    # constant 0 outside the sheet: the lookup comes out premultiplied by the sheet's coverage of each pixel
    sampled = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    cover = cv2.remap(np.ones_like(image), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    out_size = (u1 - u0, v1 - v0)
    board[v0:v1, u0:u1] = cv2.resize(sampled, out_size, interpolation=cv2.INTER_AREA)
    alpha[v0:v1, u0:u1] = cv2.resize(cover, out_size, interpolation=cv2.INTER_AREA)
    return board, alpha


def _pixel_box(
    camera: CameraModel, spec: BoardSpec, rvec: np.ndarray, tvec: np.ndarray
) -> tuple[int, int, int, int] | None:
    """Output pixel bounds (u0, v0, u1, v1) that hold the whole sheet, None if it is out of view."""
    outline = board_outline(spec)
    rotation, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    depth = (outline @ rotation.T + np.ravel(tvec))[:, 2]
    if np.any(depth <= 0):  # part of the sheet behind the camera: render the whole frame (slow but rare)
        return 0, 0, camera.width, camera.height
    pixels = camera.project(outline, rvec, tvec)
    margin_px = 3
    u0 = int(np.clip(np.floor(pixels[:, 0].min()) - margin_px, 0, camera.width))
    v0 = int(np.clip(np.floor(pixels[:, 1].min()) - margin_px, 0, camera.height))
    u1 = int(np.clip(np.ceil(pixels[:, 0].max()) + margin_px, 0, camera.width))
    v1 = int(np.clip(np.ceil(pixels[:, 1].max()) + margin_px, 0, camera.height))
    if u1 <= u0 or v1 <= v0:
        return None
    return u0, v0, u1, v1


def _texels_per_pixel(
    camera: CameraModel, texture: BoardTexture, rotation: np.ndarray, tvec: np.ndarray, supersample: int
) -> float:
    """Level-0 texels one supersampled pixel covers at the board centre (geometric mean over the tilt)."""
    centre = rotation @ np.array([texture.spec.width_m / 2, texture.spec.height_m / 2, 0.0]) + np.ravel(tvec)
    distance_m = float(np.linalg.norm(centre))
    facing = abs(float(rotation[:, 2] @ centre)) / distance_m  # cosine between the board normal and the ray
    metres_per_px = distance_m / (0.5 * (camera.fx + camera.fy) * supersample) / np.sqrt(max(facing, 0.1))
    return metres_per_px * texture.texels_per_m(0)
