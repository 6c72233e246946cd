"""Read the calibration images and keep the views worth calibrating with; every other view gets a reason."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from calibration.board import BoardSpec, detect_corners
from calibration.errors import CalibrationError

MIN_CORNERS = 6  # below this a view's pose is barely determined and adds noise, not information
MIN_SPREAD_RATIO = 0.1  # corners spanning a strip thinner than 10 % of its length are as good as collinear


@dataclass
class View:
    """The corners found in one image."""

    path: Path
    object_points: np.ndarray  # (N, 3) float32, metres, board frame
    image_points: np.ndarray  # (N, 2) float32, pixels
    ids: np.ndarray  # (N,) int


@dataclass
class Screening:
    """Views kept, {image: reason} for the others, and the common image size (width, height)."""

    views: list[View]
    rejected: dict[str, str]
    image_size: tuple[int, int] | None


def screen_images(spec: BoardSpec, image_paths: list[Path]) -> Screening:
    """Detect the board in each image; raise CalibrationError when the images differ in size."""
    views, rejected = [], {}
    size: tuple[int, int] | None = None
    first: Path | None = None
    for path in map(Path, image_paths):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            rejected[str(path)] = "cannot be read as an image (missing, unreadable or not an image file)"
            continue
        this_size = (image.shape[1], image.shape[0])
        if size is None:
            size, first = this_size, path
        elif this_size != size:
            raise CalibrationError(
                f"image {path} is {this_size[0]} x {this_size[1]} but {first} is {size[0]} x {size[1]}: "
                "all images of one calibration must come from the same camera at the same resolution; "
                "remove the odd one or calibrate each resolution separately"
            )
        view, reason = _screen_view(spec, path, image)
        if view is None:
            rejected[str(path)] = reason
        else:
            views.append(view)
    return Screening(views, rejected, size)


def _screen_view(spec: BoardSpec, path: Path, image: np.ndarray) -> tuple[View | None, str]:
    found = detect_corners(spec, image)
    if found is None:
        return None, "board not found"
    object_points, image_points, ids = found
    if len(ids) < MIN_CORNERS:
        return None, f"too few corners: {len(ids)} found, at least {MIN_CORNERS} needed"
    if _spread_ratio(object_points) < MIN_SPREAD_RATIO:
        return None, f"degenerate: the {len(ids)} corners found lie nearly on one line"
    return View(path, object_points, image_points, ids), ""


def _spread_ratio(object_points: np.ndarray) -> float:
    """Thickness over length of the corner cloud on the board (0 for corners on one line)."""
    centred = object_points[:, :2] - object_points[:, :2].mean(axis=0)
    singular = np.linalg.svd(centred.astype(np.float64), compute_uv=False)
    return float(singular[1] / singular[0]) if singular[0] > 0 else 0.0
