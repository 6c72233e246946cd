"""Synthetic calibration views: the board rendered through a known camera, with the truth written as
truth.yaml (camera.yaml format plus each view's board pose), so every calibration can be tried without a camera."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.board import load_board
from calibration.board_io import atomic_write_bytes, atomic_write_yaml
from calibration.errors import CalibrationError
from calibration.synth_background import INK_BLACK, PAPER_WHITE, background, finish, shading
from calibration.synth_camera import CameraModel, load_camera
from calibration.synth_poses import sample_poses
from calibration.synth_render import BoardTexture, pixel_rays, render_board

__all__ = ["CameraModel", "load_camera", "render_views"]

SUPERSAMPLE = 2  # 2 x 2 samples per pixel: anti-aliased edges at a quarter of the cost of 4 x 4
DEFAULT_NOISE_PX = 2.0
DEFAULT_BLUR_PX = 0.7
MAX_VIEWS = 1000


def render_views(
    board_path: Path,
    views: int,
    out_dir: Path,
    seed: int = 0,
    width: int = 1280,
    height: int = 720,
    noise_px: float = DEFAULT_NOISE_PX,
    blur_px: float = DEFAULT_BLUR_PX,
    camera: CameraModel | None = None,
) -> dict[str, Any]:
    """Write `out_dir`/view_000.png ... and truth.yaml; returns {"images", "truth_yaml", "camera", "fully_visible"}.

    `noise_px` is the standard deviation of the Gaussian noise added to each pixel, in grey levels (of 255);
    `blur_px` the sigma of the Gaussian lens blur, in pixels. Without `camera`, `CameraModel.typical(width, height)`.
    The same seed gives the same images.
    """
    spec = load_board(board_path)
    _check_options(views, width, height, noise_px, blur_px, camera)
    camera = camera or CameraModel.typical(width, height)
    rng = np.random.default_rng(seed)
    poses = sample_poses(spec, camera, views, rng)
    texture = BoardTexture.build(spec)
    rays = pixel_rays(camera, SUPERSAMPLE)
    out_dir = Path(out_dir)
    images, truth_poses = [], {}
    for index, pose in enumerate(poses):
        board, alpha = render_board(camera, rays, texture, pose.rvec, pose.tvec, SUPERSAMPLE)
        # `board` is premultiplied by the sheet's coverage `alpha`, so edge pixels mix sheet and scene correctly
        sheet = INK_BLACK * alpha + (PAPER_WHITE - INK_BLACK) * board
        scene = sheet + background(camera.height, camera.width, rng) * (1.0 - alpha)
        image = finish(scene * shading(camera.height, camera.width, rng), blur_px, noise_px, rng)
        name = f"view_{index:03d}.png"
        _, png = cv2.imencode(".png", image)
        images.append(atomic_write_bytes(out_dir / name, png.tobytes()))
        truth_poses[name] = {
            "rvec": [float(v) for v in pose.rvec],
            "tvec_m": [float(v) for v in pose.tvec],
            "fully_visible": pose.fully_visible,
        }
    truth = camera.to_yaml_dict()
    truth["synthetic"] = {
        "board": str(board_path),
        "seed": int(seed),
        "noise_px": float(noise_px),
        "blur_px": float(blur_px),
        "supersample": SUPERSAMPLE,
    }
    truth["board_poses"] = truth_poses
    truth_yaml = atomic_write_yaml(out_dir / "truth.yaml", truth)
    fully_visible = sum(pose.fully_visible for pose in poses)
    return {"images": images, "truth_yaml": truth_yaml, "camera": camera, "fully_visible": fully_visible}


def _check_options(
    views: int, width: int, height: int, noise_px: float, blur_px: float, camera: CameraModel | None
) -> None:
    if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= MAX_VIEWS:
        raise CalibrationError(f"--views {views!r} must be a whole number from 1 to {MAX_VIEWS} (25 is plenty)")
    for label, value in (("--width", width), ("--height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 8192:
            raise CalibrationError(f"{label} {value!r} must be a whole number of pixels from 64 to 8192")
    for label, value, high in (("--noise-px", noise_px, 50.0), ("--blur-px", blur_px, 10.0)):
        if not isinstance(value, int | float) or not 0 <= value <= high:
            raise CalibrationError(f"{label} {value!r} must be between 0 and {high:g}")
    if camera is not None and camera.image_size != (width, height):
        raise CalibrationError(
            f"the camera is {camera.width} x {camera.height} but --width {width} --height {height} were given: "
            "make them agree"
        )
