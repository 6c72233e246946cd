"""The calibration report PNG: where the corners of the used views fell in the image (coverage), the
residual of each corner as an arrow, and each view's reprojection error."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from calibration.board_io import atomic_write_bytes

if TYPE_CHECKING:
    from calibration.intrinsics_views import View
    from calibration.synth_camera import CameraModel

COVERAGE_GRID = (8, 6)  # cells across and down; coverage is the share of cells holding a corner
ARROW_TARGET_PX = 40.0  # the 95th-percentile residual is drawn this long, so the pattern of residuals shows


def corner_coverage(size: tuple[int, int], image_points: list[np.ndarray]) -> float:
    """Share of the image's grid cells that hold at least one detected corner (1.0 = corners everywhere)."""
    cols, rows = COVERAGE_GRID
    hit = np.zeros((rows, cols), bool)
    for points in image_points:
        col = np.clip((points[:, 0] / size[0] * cols).astype(int), 0, cols - 1)
        row = np.clip((points[:, 1] / size[1] * rows).astype(int), 0, rows - 1)
        hit[row, col] = True
    return float(hit.mean())


def write_report(
    path: Path,
    size: tuple[int, int],
    views: list[View],
    residuals: list[np.ndarray],
    per_view_px: np.ndarray,
    rms_px: float,
    camera: CameraModel,
) -> Path:
    """Draw the three panels and write the PNG atomically (Agg canvas: no display, no global pyplot state)."""
    figure = Figure(figsize=(18, 5.2), dpi=100, layout="constrained")
    coverage_ax, residual_ax, error_ax = figure.subplots(1, 3, width_ratios=[1, 1, 0.7])
    _draw_coverage(coverage_ax, size, views)
    _draw_residuals(residual_ax, size, views, residuals)
    _draw_errors(error_ax, views, per_view_px, rms_px)
    figure.suptitle(
        f"{len(views)} views, RMS {rms_px:.3f} px   fx {camera.fx:.2f}  fy {camera.fy:.2f}  "
        f"cx {camera.cx:.2f}  cy {camera.cy:.2f}   distortion {np.round(camera.distortion, 4).tolist()}"
    )
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _frame(ax, size: tuple[int, int], title: str) -> None:
    """Axes in image pixels, origin top-left as in the image."""
    ax.set_xlim(0, size[0])
    ax.set_ylim(size[1], 0)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("u (px)")
    ax.set_ylabel("v (px)")


def _draw_coverage(ax, size: tuple[int, int], views: list[View]) -> None:
    colours = np.linspace(0, 1, max(len(views), 1))
    for colour, view in zip(colours, views, strict=False):
        ax.plot(view.image_points[:, 0], view.image_points[:, 1], ".", ms=3, color=_colour(colour))
    cols, rows = COVERAGE_GRID
    for i in range(1, cols):
        ax.axvline(size[0] * i / cols, color="0.85", lw=0.5)
    for j in range(1, rows):
        ax.axhline(size[1] * j / rows, color="0.85", lw=0.5)
    share = corner_coverage(size, [v.image_points for v in views])
    _frame(ax, size, f"corner coverage: {share:.0%} of the image cells (aim for all, corners included)")


def _draw_residuals(ax, size: tuple[int, int], views: list[View], residuals: list[np.ndarray]) -> None:
    points = np.concatenate([v.image_points for v in views])
    vectors = np.concatenate(residuals)
    lengths = np.linalg.norm(vectors, axis=1)
    scale = ARROW_TARGET_PX / max(float(np.percentile(lengths, 95)), 1e-6)
    ax.quiver(
        points[:, 0],
        points[:, 1],
        vectors[:, 0] * scale,
        vectors[:, 1] * scale,
        lengths,
        angles="xy",
        scale_units="xy",
        scale=1.0,
        cmap="viridis",
        width=0.002,
    )
    _frame(ax, size, f"residuals (detected - reprojected), arrows x{scale:.0f}; max {lengths.max():.2f} px")


def _draw_errors(ax, views: list[View], per_view_px: np.ndarray, rms_px: float) -> None:
    positions = np.arange(len(views))
    ax.bar(positions, per_view_px, color="tab:blue")
    ax.axhline(rms_px, color="tab:red", lw=1, label=f"overall RMS {rms_px:.3f} px")
    ax.set_xticks(positions, [v.path.name for v in views], rotation=90, fontsize=6)
    ax.set_ylabel("RMS reprojection error (px)")
    ax.set_title("error per view")
    ax.legend(loc="upper right")


def _colour(fraction: float) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["turbo"](fraction)
