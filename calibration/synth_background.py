"""What surrounds the board in a synthetic view (a cluttered, unevenly lit scene) and the camera's
imperfections (lens blur, shading, pixel noise)."""

from __future__ import annotations

import cv2
import numpy as np

PAPER_WHITE, INK_BLACK = 0.86, 0.08  # printed paper under room light, as fractions of full scale


def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth blotches plus a few sharp-edged objects, float32 in [0, 1]."""
    coarse = rng.uniform(0.15, 0.65, (6, 10)).astype(np.float32)
    scene = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0.0, 0.04, (height // 8, width // 8)).astype(np.float32)
    scene += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(rng.integers(3, 7)):
        # objects on a desk or wall: rectangles of one shade, some turned
        centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        size = (float(rng.uniform(0.05, 0.3) * width), float(rng.uniform(0.05, 0.3) * height))
        corners = cv2.boxPoints((centre, size, float(rng.uniform(0, 90)))).astype(np.int32)
        cv2.fillConvexPoly(scene, corners, float(rng.uniform(0.1, 0.8)), lineType=cv2.LINE_AA)
    return np.clip(scene, 0.0, 1.0)


def shading(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Light falling off across the scene and towards the image corners (vignetting), a gain near 1."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = (u - width / 2) / (width / 2), (v - height / 2) / (height / 2)
    slope_u, slope_v = rng.uniform(-0.12, 0.12, 2)
    gain = rng.uniform(0.85, 1.1) + slope_u * u + slope_v * v
    return (gain * (1.0 - 0.18 * (u**2 + v**2) / 2)).astype(np.float32)


def finish(image: np.ndarray, blur_px: float, noise_px: float, rng: np.random.Generator) -> np.ndarray:
    """Lens blur (Gaussian, sigma `blur_px`), sensor noise (Gaussian, sigma `noise_px` grey levels), 8-bit output."""
    levels = image * 255.0
    if blur_px > 0:
        levels = cv2.GaussianBlur(levels, (0, 0), sigmaX=blur_px)
    if noise_px > 0:
        levels = levels + rng.normal(0.0, noise_px, levels.shape).astype(np.float32)
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)
