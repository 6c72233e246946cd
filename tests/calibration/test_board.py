"""The board spec, its printable files and corner detection, with real OpenCV on the written PNG."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from calibration.board import BoardSpec, detect_corners, load_board, make_board, write_board
from calibration.errors import CalibrationError

TEST_DPI = 100  # detection on a 300 dpi chessboard takes seconds; 100 dpi still has 118 px squares


@pytest.fixture(scope="module", params=["charuco", "chessboard"])
def written(request, tmp_path_factory) -> tuple[BoardSpec, dict[str, Path]]:
    spec = make_board() if request.param == "charuco" else make_board(kind="chessboard", cols=8, rows=5)
    return spec, write_board(spec, tmp_path_factory.mktemp(request.param), dpi=TEST_DPI)


def expected_pixels(spec: BoardSpec, image_width_px: int) -> np.ndarray:
    """Where the inner corners are in the PNG (pixel centres at whole numbers, as OpenCV reports them)."""
    square_px = image_width_px / (spec.cols + 1)  # the sheet is the board plus half a square each side
    return (spec.corner_object_points()[:, :2] / spec.square_m + 0.5) * square_px - 0.5


def test_yaml_round_trips(written) -> None:
    spec, paths = written
    assert load_board(paths["board_yaml"]) == spec


def test_default_boards_fit_a4_and_letter_landscape() -> None:
    charuco, chessboard = make_board(), make_board(kind="chessboard")
    assert (charuco.cols, charuco.rows, chessboard.cols, chessboard.rows) == (7, 5, 8, 5)
    for spec in (charuco, chessboard):
        sheet_mm = np.array([spec.width_m, spec.height_m]) * 1000 + 2 * spec.quiet_zone_m * 1000
        assert np.all(sheet_mm <= [279.4, 210])  # Letter is 279.4 x 215.9 mm, A4 297 x 210 mm
    # the default ChArUco board keeps its whole quiet zone inside 5 mm printer margins too
    assert charuco.width_m + 2 * charuco.quiet_zone_m <= 0.2794 - 0.010


def test_png_is_detected_with_all_corners_where_they_are_drawn(written) -> None:
    spec, paths = written
    image = cv2.imread(str(paths["board_png"]), cv2.IMREAD_GRAYSCALE)
    found = detect_corners(spec, image)
    assert found is not None
    object_points, image_points, ids = found
    assert sorted(ids.tolist()) == list(range(spec.corner_count))
    np.testing.assert_allclose(object_points, spec.corner_object_points()[ids])
    np.testing.assert_allclose(image_points, expected_pixels(spec, image.shape[1])[ids], atol=0.1)


def test_corner_ids_follow_the_board_when_the_image_is_turned_over(written) -> None:
    spec, paths = written
    image = cv2.imread(str(paths["board_png"]), cv2.IMREAD_GRAYSCALE)
    turned = np.ascontiguousarray(image[::-1, ::-1])
    _, image_points, ids = detect_corners(spec, turned)
    flipped = np.array([image.shape[1] - 1, image.shape[0] - 1]) - expected_pixels(spec, image.shape[1])
    np.testing.assert_allclose(image_points, flipped[ids], atol=0.1)


def test_colour_image_is_detected_too(written) -> None:
    spec, paths = written
    image = cv2.imread(str(paths["board_png"]), cv2.IMREAD_COLOR)
    assert len(detect_corners(spec, image)[2]) == spec.corner_count


def test_blank_image_has_no_board(written) -> None:
    spec, _ = written
    assert detect_corners(spec, np.full((480, 640), 200, np.uint8)) is None


def test_pdf_prints_at_true_scale(written) -> None:
    spec, paths = written
    pdf = paths["board_pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-1.4")
    media_box = [float(v) for v in re.search(rb"/MediaBox \[([-\d. ]+)\]", pdf).group(1).split()]
    points_per_m = 72 / 0.0254
    sheet_m = (spec.width_m + 2 * spec.quiet_zone_m, spec.height_m + 2 * spec.quiet_zone_m)
    assert media_box[:2] == [0.0, 0.0]
    assert media_box[2] == pytest.approx(sheet_m[0] * points_per_m, abs=1e-3)
    assert media_box[3] == pytest.approx(sheet_m[1] * points_per_m, abs=1e-3)
    # the image is drawn over the whole page, so one square of it measures square_m on paper
    draw = [float(v) for v in re.search(rb"q ([-\d. ]+) cm /Im0 Do Q", pdf).group(1).split()]
    assert draw == pytest.approx([media_box[2], 0, 0, media_box[3], 0, 0], abs=1e-3)
    # the image is cols + 1 squares wide (checked by the corner positions above), so a square measures:
    assert draw[0] / (spec.cols + 1) == pytest.approx(spec.square_m * points_per_m, abs=1e-3)
    width_px = int(re.search(rb"/Width (\d+)", pdf).group(1))
    height_px = int(re.search(rb"/Height (\d+)", pdf).group(1))
    # the embedded pixels are the PNG's, and the cross-reference table points at every object
    stream = re.search(rb"/FlateDecode /Length (\d+) >>\nstream\n", pdf)
    pixels = zlib.decompress(pdf[stream.end() : stream.end() + int(stream.group(1))])
    png = cv2.imread(str(paths["board_png"]), cv2.IMREAD_GRAYSCALE)
    assert png.shape == (height_px, width_px)
    assert np.array_equal(np.frombuffer(pixels, np.uint8).reshape(png.shape), png)
    offsets = [int(v) for v in re.findall(rb"(\d{10}) 00000 n", pdf)]
    assert [pdf[o:].split(b"\n")[0] for o in offsets] == [f"{n} 0 obj".encode() for n in range(1, len(offsets) + 1)]


def test_png_records_its_true_dpi(written) -> None:
    from PIL import Image

    spec, paths = written
    with Image.open(paths["board_png"]) as image:
        dpi = image.info["dpi"][0]
        width_px = image.size[0]
    assert width_px / dpi * 0.0254 == pytest.approx(spec.width_m + 2 * spec.quiet_zone_m, rel=1e-4)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"marker_m": 0.05, "square_m": 0.04}, ["--marker-m 0.05 must be smaller than --square-m 0.04"]),
        ({"cols": 2}, ["--cols 2", "at least 3"]),
        ({"cols": 3, "rows": 3}, ["--cols 3 x --rows 3", "only 4 inner corners"]),
        ({"square_m": 30}, ["--square-m 30", "metres", "0.03"]),
        ({"square_m": -0.01}, ["--square-m -0.01", "positive"]),
        ({"dictionary": "DICT_9X9_1"}, ["--dict 'DICT_9X9_1'", "DICT_5X5_100"]),
        ({"cols": 12, "rows": 9, "dictionary": "DICT_4X4_50"}, ["--dict DICT_4X4_50 has 50 markers", "needs 54"]),
        ({"kind": "chessboard", "cols": 7, "rows": 5}, ["--cols 7 and --rows 5", "one even and one odd"]),
        ({"kind": "circles"}, ["--kind 'circles'", "charuco, chessboard"]),
    ],
)
def test_bad_options_name_the_option(options: dict, words: list[str]) -> None:
    with pytest.raises(CalibrationError) as error:
        make_board(**options)
    for word in words:
        assert word in str(error.value)


def test_load_board_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"board file .*nowhere\.yaml does not exist"):
        load_board(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"marker_m": "big"}, ["field marker_m 'big'", "positive length"]),
        ({"cols": 7.5}, ["field cols 7.5", "whole number"]),
        ({"square_m": None}, ["field square_m None"]),
    ],
)
def test_load_board_names_the_bad_field(tmp_path: Path, change: dict, words: list[str]) -> None:
    data = {**make_board().to_yaml_dict(), **change}
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CalibrationError) as error:
        load_board(path)
    for word in [str(path), *words]:
        assert word in str(error.value)


def test_load_board_names_missing_fields(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text("kind: charuco\ncols: 7\nrows: 5\n")
    with pytest.raises(CalibrationError, match="lacks field\\(s\\) square_m, marker_m, dictionary"):
        load_board(path)


def test_load_board_rejects_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(CalibrationError, match="must hold a YAML mapping"):
        load_board(path)
