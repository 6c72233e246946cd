"""Camera intrinsics from images of a board: detection, view rejection with reasons, OpenCV calibration,
camera.yaml (ROS camera_info) and a report PNG of corner coverage and residuals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.board import BoardSpec, load_board
from calibration.board_io import atomic_write_yaml
from calibration.errors import CalibrationError
from calibration.intrinsics_report import corner_coverage, write_report
from calibration.intrinsics_views import View, screen_images
from calibration.synth_camera import CameraModel

DEFAULT_MIN_VIEWS = 10
OUTLIER_FACTOR = 3.0  # a view whose RMS error exceeds 3 x the median view's ...
OUTLIER_FLOOR_PX = 1.0  # ... and 1 px is an outlier (misdetection, motion blur, a moved lens)
MAX_OUTLIER_ROUNDS = 3
CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)


@dataclass
class Fit:
    """One run of cv2.calibrateCameraExtended over `views`."""

    views: list[View]
    rms: float
    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    rvecs: list[np.ndarray]
    tvecs: list[np.ndarray]
    std_intrinsics: np.ndarray
    per_view_px: np.ndarray


def calibrate_camera(
    board_path: Path,
    image_paths: list[Path],
    out_yaml: Path,
    min_views: int = DEFAULT_MIN_VIEWS,
    report_png: Path | None = None,
) -> dict[str, Any]:
    """Calibrate, write `out_yaml` (camera.yaml) and the report PNG (default `<stem>_report.png` beside it).

    Returns {"rms", "fx", "fy", "cx", "cy", "views_used" (count), "views_rejected" ({image: reason}),
    "camera_yaml", "report_png"}. Raises CalibrationError for unusable input, naming what to do.
    """
    spec = load_board(board_path)
    if isinstance(min_views, bool) or not isinstance(min_views, int) or min_views < 3:
        raise CalibrationError(f"--min-views {min_views!r} must be a whole number, at least 3")
    image_paths = [Path(p) for p in image_paths]
    if not image_paths:
        raise CalibrationError("no images given: check the --images pattern (quote it, e.g. 'shots/*.png')")
    screening = screen_images(spec, image_paths)
    rejected = dict(screening.rejected)
    if not screening.views:
        raise CalibrationError(_never_found(spec, board_path, len(image_paths), rejected))
    _require_views(len(screening.views), len(image_paths), rejected, min_views)
    size = screening.image_size
    fit = _calibrate(screening.views, size)
    for _ in range(MAX_OUTLIER_ROUNDS):
        threshold_px = max(OUTLIER_FACTOR * float(np.median(fit.per_view_px)), OUTLIER_FLOOR_PX)
        kept = [v for v, e in zip(fit.views, fit.per_view_px, strict=True) if e <= threshold_px]
        if len(kept) == len(fit.views):
            break
        for view, error_px in zip(fit.views, fit.per_view_px, strict=True):
            if error_px > threshold_px:
                rejected[str(view.path)] = (
                    f"outlier: reprojection error {error_px:.2f} px after a first calibration, above the threshold "
                    f"{threshold_px:.2f} px ({OUTLIER_FACTOR:g} x the median view, at least {OUTLIER_FLOOR_PX:g} px)"
                )
        _require_views(len(kept), len(image_paths), rejected, min_views)
        fit = _calibrate(kept, size)
    camera = _camera(fit, size, Path(out_yaml).stem)
    out_yaml = Path(out_yaml)
    report_png = Path(report_png) if report_png is not None else out_yaml.with_name(f"{out_yaml.stem}_report.png")
    atomic_write_yaml(out_yaml, _camera_yaml(camera, fit, spec, rejected, size))
    write_report(report_png, size, fit.views, _residuals(fit), fit.per_view_px, fit.rms, camera)
    return {
        "rms": fit.rms,
        "fx": camera.fx,
        "fy": camera.fy,
        "cx": camera.cx,
        "cy": camera.cy,
        "views_used": len(fit.views),
        "views_rejected": rejected,
        "camera_yaml": out_yaml,
        "report_png": report_png,
    }


def _calibrate(views: list[View], size: tuple[int, int]) -> Fit:
    """Full plumb_bob model (fx, fy, cx, cy, k1, k2, p1, p2, k3), starting from OpenCV's planar initial guess."""
    rms, k, d, rvecs, tvecs, std_intrinsics, _, per_view = cv2.calibrateCameraExtended(
        [v.object_points for v in views],
        [v.image_points.reshape(-1, 1, 2) for v in views],
        size,
        None,
        None,
        flags=0,
        criteria=CRITERIA,
    )
    if not (np.all(np.isfinite(k)) and k[0, 0] > 0 and k[1, 1] > 0):
        raise CalibrationError(
            "the calibration did not converge: take views of the whole board from more varied angles and distances"
        )
    return Fit(views, float(rms), k, d.ravel()[:5], list(rvecs), list(tvecs), std_intrinsics.ravel(), per_view.ravel())


def _require_views(usable: int, total: int, rejected: dict[str, str], min_views: int) -> None:
    if usable >= min_views:
        return
    summary = ", ".join(f"{count} {reason}" for reason, count in _reason_counts(rejected).most_common())
    raise CalibrationError(
        f"only {usable} of {total} views are usable (rejected: {summary or 'none'}); calibration needs at least "
        f"{min_views}: take at least {min_views} views of the whole board from different angles (tilted up to about "
        "45 degrees), at different distances and covering the image corners"
    )


def _reason_counts(rejected: dict[str, str]) -> Counter:
    """Count reasons by their kind (the text before any colon), so the summary stays one line."""
    return Counter(reason.split(":")[0] for reason in rejected.values())


def _never_found(spec: BoardSpec, board_path: Path, total: int, rejected: dict[str, str]) -> str:
    board = f"{spec.kind} {spec.cols} x {spec.rows} squares" + (
        f", {spec.dictionary}" if spec.kind == "charuco" else ""
    )
    if all(reason == "board not found" for reason in rejected.values()):
        return (
            f"the board ({board}, from {board_path}) was not found in any of the {total} images: check that --board "
            "is the board that was photographed (kind, cols x rows, dictionary) and that it is whole, in focus and "
            "not too small in the images"
        )
    summary = ", ".join(f"{count} {reason}" for reason, count in _reason_counts(rejected).most_common())
    return (
        f"no usable view among the {total} images ({summary}): "
        f"take views of the whole board ({board}) from different angles"
    )


def _camera(fit: Fit, size: tuple[int, int], name: str) -> CameraModel:
    k, d = fit.camera_matrix, fit.dist_coeffs
    return CameraModel(size[0], size[1], k[0, 0], k[1, 1], k[0, 2], k[1, 2], tuple(float(v) for v in d), name)


def _residuals(fit: Fit) -> list[np.ndarray]:
    """Detected minus reprojected corner positions per view, (N, 2) px."""
    out = []
    for view, rvec, tvec in zip(fit.views, fit.rvecs, fit.tvecs, strict=True):
        projected, _ = cv2.projectPoints(view.object_points, rvec, tvec, fit.camera_matrix, fit.dist_coeffs)
        out.append(view.image_points - projected.reshape(-1, 2))
    return out


def _camera_yaml(
    camera: CameraModel, fit: Fit, spec: BoardSpec, rejected: dict[str, str], size: tuple[int, int]
) -> dict[str, Any]:
    """camera_info fields first (ROS reads them), then what this calibration measured."""
    data = camera.to_yaml_dict()
    names = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
    data["rms"] = round(fit.rms, 6)
    data["intrinsics_std_dev"] = {n: float(v) for n, v in zip(names, fit.std_intrinsics[: len(names)], strict=True)}
    data["views_used"] = len(fit.views)
    data["corner_coverage"] = round(corner_coverage(size, [v.image_points for v in fit.views]), 3)
    data["board"] = spec.to_yaml_dict()
    data["per_view_errors"] = {str(v.path): round(float(e), 4) for v, e in zip(fit.views, fit.per_view_px, strict=True)}
    data["views_rejected"] = dict(rejected)
    return data
