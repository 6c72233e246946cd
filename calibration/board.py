"""The calibration board: its spec (board.yaml), the printable files and corner detection.

The default board is a ChArUco board of 7 x 5 squares of 30 mm with 22 mm DICT_5X5_100 markers:
210 x 150 mm, or 240 x 180 mm with its white quiet zone of half a square on each side, so it
prints at true scale on A4 or Letter in landscape with room for the printer's margins.

The board frame has its origin at the board's top-left outer corner, x along the columns, y down
the rows and z into the board (the printed side faces -z); inner corner `id` = row * (cols - 1) + col
sits at ((col + 1) * square_m, (row + 1) * square_m, 0), the same numbering for both kinds.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from calibration.board_detect import detect_corners
from calibration.board_io import atomic_write_bytes, atomic_write_yaml, read_yaml_mapping
from calibration.board_pdf import pdf_with_image
from calibration.errors import CalibrationError

__all__ = ["BoardSpec", "detect_corners", "load_board", "make_board", "write_board"]

KINDS = ("charuco", "chessboard")
DEFAULT_COLS, DEFAULT_ROWS = 7, 5
# a chessboard needs one even and one odd count (see _check); 8 x 5 of 30 mm is a 270 x 180 mm sheet
DEFAULT_SIZES = {"charuco": (DEFAULT_COLS, DEFAULT_ROWS), "chessboard": (8, 5)}
DEFAULT_SQUARE_M, DEFAULT_MARKER_M = 0.030, 0.022
DEFAULT_DICTIONARY = "DICT_5X5_100"
MIN_INNER_CORNERS = 6  # calibration needs at least 6 corners in a view (intrinsics rejects fewer)
MAX_SQUARE_M = 0.5  # a larger value is almost surely millimetres typed as metres
METRES_PER_INCH = 0.0254
POINTS_PER_INCH = 72.0


@dataclass(frozen=True)
class BoardSpec:
    """A planar calibration board; sizes in metres, `cols` x `rows` counted in squares."""

    kind: str = "charuco"
    cols: int = DEFAULT_COLS
    rows: int = DEFAULT_ROWS
    square_m: float = DEFAULT_SQUARE_M
    marker_m: float = DEFAULT_MARKER_M  # ChArUco only
    dictionary: str = DEFAULT_DICTIONARY  # ChArUco only

    @property
    def width_m(self) -> float:
        return self.cols * self.square_m

    @property
    def height_m(self) -> float:
        return self.rows * self.square_m

    @property
    def quiet_zone_m(self) -> float:
        """The white border printed around the board; detectors need it to see the outer squares."""
        return self.square_m / 2

    @property
    def pattern_size(self) -> tuple[int, int]:
        """Inner corners per row and per column, as OpenCV's chessboard functions want them."""
        return self.cols - 1, self.rows - 1

    @property
    def corner_count(self) -> int:
        return (self.cols - 1) * (self.rows - 1)

    def corner_object_points(self) -> np.ndarray:
        """All inner corners in the board frame, (N, 3) float32 metres, row `id` = corner id."""
        col, row = np.meshgrid(np.arange(1, self.cols), np.arange(1, self.rows))
        points = np.stack([col.ravel(), row.ravel(), np.zeros(col.size)], axis=1) * self.square_m
        return points.astype(np.float32)

    def aruco_dictionary(self) -> cv2.aruco.Dictionary:
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def cv_board(self) -> cv2.aruco.CharucoBoard:
        """The OpenCV ChArUco board (its corner numbering and frame match `corner_object_points`)."""
        if self.kind != "charuco":
            raise CalibrationError(f"a {self.kind} board has no ArUco markers: use a charuco board for this")
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, self.marker_m, self.aruco_dictionary())

    def to_yaml_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.kind == "chessboard":
            del data["marker_m"], data["dictionary"]
        return data

    def image(self, square_px: int) -> np.ndarray:
        """The board with its quiet zone as a uint8 image, `square_px` (even) pixels per square."""
        if square_px % 2:
            raise ValueError("square_px must be even so the quiet zone is a whole number of pixels")
        quiet_px = square_px // 2
        size = (self.cols * square_px, self.rows * square_px)
        if self.kind == "charuco":
            pattern = self.cv_board().generateImage(size, marginSize=0, borderBits=1)
        else:
            col, row = np.meshgrid(np.arange(size[0]) // square_px, np.arange(size[1]) // square_px)
            # square (0, 0) is black, as on OpenCV's ChArUco boards
            pattern = np.where((col + row) % 2 == 0, 0, 255).astype(np.uint8)
        return cv2.copyMakeBorder(pattern, quiet_px, quiet_px, quiet_px, quiet_px, cv2.BORDER_CONSTANT, value=255)


def _dictionary_size(name: str) -> int | None:
    """How many markers a predefined ArUco dictionary has, None if OpenCV has no such dictionary."""
    if not name.startswith("DICT_") or not isinstance(getattr(cv2.aruco, name, None), int):
        return None
    return int(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)).bytesList.shape[0])


def _check(spec: BoardSpec, label: dict[str, str]) -> None:
    """Raise CalibrationError for the first impossible field; `label` names each field as the user wrote it."""
    if spec.kind not in KINDS:
        raise CalibrationError(f"{label['kind']} {spec.kind!r} is not a board kind: use one of {', '.join(KINDS)}")
    for field in ("cols", "rows"):
        value = getattr(spec, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 3:
            raise CalibrationError(f"{label[field]} {value!r} must be a whole number of squares, at least 3")
    if spec.corner_count < MIN_INNER_CORNERS:
        raise CalibrationError(
            f"{label['cols']} {spec.cols} x {label['rows']} {spec.rows} gives only {spec.corner_count} inner corners: "
            f"use a board with at least {MIN_INNER_CORNERS} (e.g. 7 x 5)"
        )
    _check_length(spec.square_m, label["square_m"])
    if spec.kind == "chessboard":
        if (spec.cols + spec.rows) % 2 == 0:
            # an odd x odd or even x even chessboard looks the same turned by 180 degrees, so its pose is ambiguous
            raise CalibrationError(
                f"{label['cols']} {spec.cols} and {label['rows']} {spec.rows}: a chessboard needs one even and one odd "
                f"count of squares (e.g. {spec.cols} x {spec.rows + 1}) so its orientation can be told"
            )
        return
    _check_length(spec.marker_m, label["marker_m"])
    if spec.marker_m >= spec.square_m:
        raise CalibrationError(
            f"{label['marker_m']} {spec.marker_m:g} must be smaller than {label['square_m']} {spec.square_m:g} "
            f"(the marker sits inside a white square; about 0.7 x the square is usual)"
        )
    size = _dictionary_size(spec.dictionary) if isinstance(spec.dictionary, str) else None
    if size is None:
        known = ", ".join(sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_") and n.upper() == n))
        raise CalibrationError(
            f"{label['dictionary']} {spec.dictionary!r} is not an ArUco dictionary: use one of {known}"
        )
    needed = spec.cols * spec.rows // 2
    if size < needed:
        raise CalibrationError(
            f"{label['dictionary']} {spec.dictionary} has {size} markers but a {spec.cols} x {spec.rows} ChArUco board "
            f"needs {needed}: pick a larger dictionary (e.g. DICT_5X5_250)"
        )


def _check_length(value: Any, label: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
        raise CalibrationError(f"{label} {value!r} must be a positive length in metres (e.g. 0.03)")
    if value > MAX_SQUARE_M:
        raise CalibrationError(
            f"{label} {value:g} is in metres: {value:g} m is too large; did you mean {value / 1000:g}?"
        )


CLI_LABELS = {
    "kind": "--kind",
    "cols": "--cols",
    "rows": "--rows",
    "square_m": "--square-m",
    "marker_m": "--marker-m",
    "dictionary": "--dict",
}


def make_board(
    kind: str = "charuco",
    cols: int | None = None,
    rows: int | None = None,
    square_m: float = DEFAULT_SQUARE_M,
    marker_m: float = DEFAULT_MARKER_M,
    dictionary: str = DEFAULT_DICTIONARY,
) -> BoardSpec:
    """A checked BoardSpec; errors name the command-line option at fault.

    `cols` / `rows` left None take the kind's default (`DEFAULT_SIZES`: ChArUco 7 x 5, chessboard 8 x 5);
    `marker_m` and `dictionary` only apply to ChArUco boards.
    """
    default_cols, default_rows = DEFAULT_SIZES.get(kind, (DEFAULT_COLS, DEFAULT_ROWS))
    cols = default_cols if cols is None else cols
    rows = default_rows if rows is None else rows
    if kind == "chessboard":
        marker_m, dictionary = 0.0, ""
    spec = BoardSpec(kind, cols, rows, square_m, marker_m, dictionary)
    _check(spec, CLI_LABELS)
    return spec


def load_board(path: Path) -> BoardSpec:
    """Read and check a board.yaml written by `write_board`; errors name the file and the field."""
    path = Path(path)
    data = read_yaml_mapping(path, "board file")
    kind = data.get("kind")
    required = ["kind", "cols", "rows", "square_m"] + (["marker_m", "dictionary"] if kind == "charuco" else [])
    missing = [name for name in required if name not in data]
    if missing:
        raise CalibrationError(
            f"board file {path} lacks field(s) {', '.join(missing)}: regenerate it with `simreal calibrate board`"
        )
    values = {name: data[name] for name in required}
    if kind == "chessboard":
        values.update(marker_m=0.0, dictionary="")
    spec = BoardSpec(**values)
    _check(spec, {name: f"board file {path}: field {name}" for name in CLI_LABELS})
    return spec


def write_board(spec: BoardSpec, out_dir: Path, dpi: int = 300) -> dict[str, Path]:
    """Write board.yaml, board.png and board.pdf (true scale, with the quiet zone) into `out_dir`."""
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 72 <= dpi <= 2400:
        raise CalibrationError(f"--dpi {dpi!r} must be a whole number between 72 and 2400 (300 prints well)")
    out_dir = Path(out_dir)
    # an even number of pixels per square keeps every square and the quiet zone whole pixels
    square_px = max(2, 2 * round(spec.square_m / METRES_PER_INCH * dpi / 2))
    image = spec.image(square_px)
    true_dpi = square_px / spec.square_m * METRES_PER_INCH
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG", dpi=(true_dpi, true_dpi))
    page_w_pt = (spec.width_m + 2 * spec.quiet_zone_m) / METRES_PER_INCH * POINTS_PER_INCH
    page_h_pt = (spec.height_m + 2 * spec.quiet_zone_m) / METRES_PER_INCH * POINTS_PER_INCH
    pdf = pdf_with_image(image, page_w_pt, page_h_pt, _caption(spec))
    return {
        "board_yaml": atomic_write_yaml(out_dir / "board.yaml", spec.to_yaml_dict()),
        "board_png": atomic_write_bytes(out_dir / "board.png", png.getvalue()),
        "board_pdf": atomic_write_bytes(out_dir / "board.pdf", pdf),
    }


def _caption(spec: BoardSpec) -> str:
    square_mm = f"{spec.square_m * 1000:g} mm"
    if spec.kind == "charuco":
        markers = f"markers {spec.marker_m * 1000:g} mm, {spec.dictionary}"
        what = f"ChArUco {spec.cols} x {spec.rows}, squares {square_mm}, {markers}"
    else:
        what = f"chessboard {spec.cols} x {spec.rows}, squares {square_mm}"
    return f"simreal {what}. Print at 100 % (no fit to page); check that one square measures {square_mm}."
