"""Board poses for synthetic views, like a person waving a board in front of a camera: tilted up to 45 degrees,
filling 20-80 % of the frame, spread over the whole image (corners included, where distortion shows)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calibration.board import BoardSpec
from calibration.errors import CalibrationError
from calibration.synth_camera import CameraModel
from calibration.synth_render import board_outline

MAX_TILT_DEG = 45.0
MIN_TILT_DEG = 10.0  # views straight on say nothing about the focal length; keep some tilt in every view
MAX_ROLL_DEG = 30.0
FILL_RANGE = (
    0.3,
    0.8,
)  # the sheet's larger extent as a fraction of the frame's; below 0.3 a 7 x 5 board's markers get too small to decode
EDGE_MARGIN_PX = 8  # a fully visible sheet keeps this far from the image border
MIN_FACING = 0.35  # cosine between board normal and line of sight: no grazing views
# where each view's board goes, in turn: 0 / 1 push the sheet against the left or top / right or bottom image
# edge (so the image corners, where distortion is strongest, get corners), 0.5 keeps it near the middle
ANCHORS = [(fu, fv) for fv in (0.0, 0.5, 1.0) for fu in (0.0, 0.5, 1.0)]
EDGE_GAP_PX = (0.0, 30.0)  # a pushed sheet keeps this much more than EDGE_MARGIN_PX from the edge


@dataclass(frozen=True)
class ViewPose:
    """The board pose in the camera frame (board -> camera), as OpenCV's rvec/tvec, metres."""

    rvec: np.ndarray
    tvec: np.ndarray
    fully_visible: bool


def sample_poses(spec: BoardSpec, camera: CameraModel, views: int, rng: np.random.Generator) -> list[ViewPose]:
    """`views` poses; for ChArUco boards about one view in ten is deliberately cut by the image border."""
    order = rng.permutation(len(ANCHORS))
    poses = []
    for index in range(views):
        if spec.kind == "charuco" and index % 10 == 9:
            poses.append(_sample_partial_pose(spec, camera, rng))
        else:
            poses.append(_sample_pose(spec, camera, ANCHORS[order[index % len(ANCHORS)]], rng))
    return poses


def _sample_pose(
    spec: BoardSpec, camera: CameraModel, anchor: tuple[float, float], rng: np.random.Generator
) -> ViewPose:
    """Rejection-sample a pose with the whole sheet in view, pushed towards `anchor`."""
    fill_high = FILL_RANGE[1]
    for attempt in range(400):
        if attempt and attempt % 40 == 0:
            fill_high = max(FILL_RANGE[0] + 0.05, fill_high * 0.9)  # a big board may not fit with a steep tilt
        rotation = _random_rotation(rng)
        fill = rng.uniform(FILL_RANGE[0], fill_high)
        target_px = np.array([camera.width, camera.height]) * (0.5 + rng.uniform(-0.15, 0.15, 2))
        tvec = _place(spec, camera, rotation, target_px, fill)
        for _ in range(3):  # the projected shape changes as the board moves off-axis: re-push a few times
            shift = _push(spec, camera, rotation, tvec, anchor, rng)
            if shift is None:
                break
            target_px = target_px + shift
            tvec = _place(spec, camera, rotation, target_px, fill)
        rvec = cv2.Rodrigues(rotation)[0].ravel()
        if _visible_fraction(spec, camera, rotation, tvec) is not None and _sheet_inside(spec, camera, rvec, tvec):
            return ViewPose(rvec, tvec, fully_visible=True)
    raise CalibrationError(_cannot_place(spec, camera))


def _sample_partial_pose(spec: BoardSpec, camera: CameraModel, rng: np.random.Generator) -> ViewPose:
    """A large board running off the image: 40-90 % of its inner corners in view."""
    for _ in range(400):
        rotation = _random_rotation(rng)
        target_px = np.array([camera.width, camera.height]) * rng.uniform(0.1, 0.9, 2)
        tvec = _place(spec, camera, rotation, target_px, rng.uniform(0.5, 1.0))
        visible = _visible_fraction(spec, camera, rotation, tvec)
        if visible is not None and 0.4 <= visible < 0.9:
            return ViewPose(cv2.Rodrigues(rotation)[0].ravel(), tvec, fully_visible=False)
    raise CalibrationError(_cannot_place(spec, camera))


def _cannot_place(spec: BoardSpec, camera: CameraModel) -> str:
    return (
        f"cannot place the {spec.cols} x {spec.rows} board (sheet {spec.width_m + 2 * spec.quiet_zone_m:g} m wide) "
        f"in view of the {camera.width} x {camera.height} camera (fx {camera.fx:g} px) at 30-80 % of the frame: "
        "check the camera's focal length and distortion"
    )


def _push(
    spec: BoardSpec,
    camera: CameraModel,
    rotation: np.ndarray,
    tvec: np.ndarray,
    anchor: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Image shift (px) that moves the sheet's bounding box against the edges named by `anchor`."""
    points = board_outline(spec) @ rotation.T + tvec
    if np.any(points[:, 2] <= 0.05):
        return None
    pixels = camera.project(board_outline(spec), cv2.Rodrigues(rotation)[0], tvec)
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    size = np.array([camera.width - 1, camera.height - 1], np.float64)
    shift = np.zeros(2)
    for axis in range(2):
        gap = EDGE_MARGIN_PX + rng.uniform(*EDGE_GAP_PX)
        if anchor[axis] == 0.0:
            shift[axis] = gap - low[axis]
        elif anchor[axis] == 1.0:
            shift[axis] = size[axis] - gap - high[axis]
    return shift


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Turn about the board normal (roll), then tilt about a random axis in the board plane."""
    roll = np.deg2rad(rng.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG))
    tilt = np.deg2rad(rng.uniform(MIN_TILT_DEG, MAX_TILT_DEG))
    heading = rng.uniform(0, 2 * np.pi)
    axis = np.array([np.cos(heading), np.sin(heading), 0.0])
    return cv2.Rodrigues(axis * tilt)[0] @ cv2.Rodrigues(np.array([0.0, 0.0, roll]))[0]


def _place(
    spec: BoardSpec, camera: CameraModel, rotation: np.ndarray, target_px: tuple[float, float], fill: float
) -> np.ndarray:
    """The translation that puts the board centre on the ray through `target_px` at the distance giving `fill`."""
    ray = cv2.undistortPoints(np.array([[target_px]], np.float64), camera.camera_matrix, camera.dist_coeffs)
    ray = np.array([ray[0, 0, 0], ray[0, 0, 1], 1.0])
    centre = rotation @ np.array([spec.width_m / 2, spec.height_m / 2, 0.0])
    outline = board_outline(spec, points_per_edge=2) @ rotation.T - centre
    distance = 1.0
    for _ in range(3):  # the projected size scales about as 1 / distance: a few fixed-point steps settle it
        points = outline + ray * distance
        pixels = points[:, :2] / points[:, 2:] * [camera.fx, camera.fy]
        extent = (pixels.max(axis=0) - pixels.min(axis=0)) / [camera.width, camera.height]
        distance *= float(extent.max()) / fill
    return ray * distance - centre


def _visible_fraction(spec: BoardSpec, camera: CameraModel, rotation: np.ndarray, tvec: np.ndarray) -> float | None:
    """Share of inner corners inside the image; None if the view is degenerate (behind, grazing)."""
    centre = rotation @ np.array([spec.width_m / 2, spec.height_m / 2, 0.0]) + tvec
    if centre[2] <= 0 or rotation[:, 2] @ centre / np.linalg.norm(centre) < MIN_FACING:
        return None
    corners = spec.corner_object_points().astype(np.float64)
    depth = (corners @ rotation.T + tvec)[:, 2]
    if np.any(depth <= 0.05):
        return None
    pixels = camera.project(corners, cv2.Rodrigues(rotation)[0], tvec)
    inside = _inside(camera, pixels, EDGE_MARGIN_PX) & _within_lens(camera, corners @ rotation.T + tvec)
    return float(inside.mean())


def _sheet_inside(spec: BoardSpec, camera: CameraModel, rvec: np.ndarray, tvec: np.ndarray) -> bool:
    outline = board_outline(spec)
    rotation = cv2.Rodrigues(rvec)[0]
    points = outline @ rotation.T + tvec
    if np.any(points[:, 2] <= 0.05):
        return False
    pixels = camera.project(outline, rvec, tvec)
    return bool(np.all(_inside(camera, pixels, EDGE_MARGIN_PX) & _within_lens(camera, points)))


def _inside(camera: CameraModel, pixels: np.ndarray, margin_px: float) -> np.ndarray:
    u, v = pixels[:, 0], pixels[:, 1]
    return (
        (u >= margin_px) & (u <= camera.width - 1 - margin_px) & (v >= margin_px) & (v <= camera.height - 1 - margin_px)
    )


def _within_lens(camera: CameraModel, points_cam: np.ndarray) -> np.ndarray:
    """Points no further off-axis than the image corners: beyond them the distortion polynomial may fold back,
    and a projection that lands inside the image would be a lie."""
    corners_px = np.array([[0, 0], [camera.width, 0], [0, camera.height], [camera.width, camera.height]], np.float64)
    rays = cv2.undistortPoints(corners_px.reshape(-1, 1, 2), camera.camera_matrix, camera.dist_coeffs).reshape(-1, 2)
    limit = float((rays**2).sum(axis=1).max()) * 1.05
    normalised = points_cam[:, :2] / points_cam[:, 2:]
    return (normalised**2).sum(axis=1) <= limit
