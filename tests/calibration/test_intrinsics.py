"""Camera intrinsics from synthetic views (the issue's acceptance) and the errors for bad input."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from calibration.board import make_board, write_board
from calibration.board_io import read_yaml_mapping
from calibration.errors import CalibrationError
from calibration.intrinsics import calibrate_camera
from calibration.synth_views import CameraModel, load_camera, render_views

# the acceptance bounds, for both board kinds
MAX_RMS_PX = 0.3
MAX_FOCAL_ERROR = 0.005
MAX_CENTRE_ERROR_PX = 3.0


@pytest.fixture(scope="module")
def charuco_views(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("charuco")
    board_yaml = write_board(make_board(), root / "board", dpi=100)["board_yaml"]
    return {"board": board_yaml, **render_views(board_yaml, 25, root / "views", seed=11)}


@pytest.fixture(scope="module")
def chessboard_views(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("chessboard")
    board_yaml = write_board(make_board(kind="chessboard", cols=8, rows=5), root / "board", dpi=100)["board_yaml"]
    return {"board": board_yaml, **render_views(board_yaml, 12, root / "views", seed=12)}


@pytest.fixture(scope="module")
def charuco_result(charuco_views, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("charuco_out") / "camera.yaml"
    return calibrate_camera(charuco_views["board"], charuco_views["images"], out)


def check_against_truth(result: dict, truth: CameraModel, label: str) -> None:
    """Print the measured numbers (visible with -s) and apply the acceptance bounds."""
    fx_error, fy_error = result["fx"] / truth.fx - 1, result["fy"] / truth.fy - 1
    cx_error, cy_error = result["cx"] - truth.cx, result["cy"] - truth.cy
    print(
        f"\n{label}: {result['views_used']} views, rms {result['rms']:.3f} px, fx {fx_error:+.3%}, fy {fy_error:+.3%}, "
        f"cx {cx_error:+.2f} px, cy {cy_error:+.2f} px"
    )
    assert result["rms"] <= MAX_RMS_PX
    assert abs(fx_error) <= MAX_FOCAL_ERROR and abs(fy_error) <= MAX_FOCAL_ERROR
    assert abs(cx_error) <= MAX_CENTRE_ERROR_PX and abs(cy_error) <= MAX_CENTRE_ERROR_PX


def test_charuco_acceptance_25_noisy_views(charuco_views, charuco_result) -> None:
    truth = load_camera(charuco_views["truth_yaml"])
    check_against_truth(charuco_result, truth, "ChArUco 7x5, 25 views 1280x720")
    # the partly visible views count too: ChArUco needs no whole board
    assert charuco_result["views_used"] == 25 and charuco_result["views_rejected"] == {}


def test_chessboard_acceptance_12_noisy_views(chessboard_views, tmp_path) -> None:
    result = calibrate_camera(chessboard_views["board"], chessboard_views["images"], tmp_path / "camera.yaml")
    check_against_truth(result, load_camera(chessboard_views["truth_yaml"]), "chessboard 8x5, 12 views 1280x720")
    assert result["views_used"] == 12


def test_camera_yaml_is_ros_camera_info_plus_the_measurements(charuco_result) -> None:
    data = read_yaml_mapping(charuco_result["camera_yaml"], "camera")
    camera = CameraModel.from_yaml_dict(data)
    assert (camera.width, camera.height, camera.fx, camera.cy) == (
        1280,
        720,
        charuco_result["fx"],
        charuco_result["cy"],
    )
    assert data["distortion_model"] == "plumb_bob" and data["distortion_coefficients"]["cols"] == 5
    assert data["rectification_matrix"] == {"rows": 3, "cols": 3, "data": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]}
    assert data["projection_matrix"]["rows"] == 3 and len(data["projection_matrix"]["data"]) == 12
    assert data["rms"] == pytest.approx(charuco_result["rms"], abs=1e-5)
    assert len(data["per_view_errors"]) == charuco_result["views_used"]
    assert max(data["per_view_errors"].values()) < 1.0
    assert data["views_rejected"] == {}


def test_report_png_is_written_beside_the_yaml(charuco_result) -> None:
    report = charuco_result["report_png"]
    assert report == charuco_result["camera_yaml"].with_name("camera_report.png")
    image = cv2.imread(str(report))
    assert image is not None and image.shape[1] > 1000 and image.std() > 10


def test_outlier_view_and_unreadable_file_are_rejected_with_reasons(charuco_views, tmp_path) -> None:
    """A view wobbled like rolling-shutter jello from a shaking camera: the board is found, but its corners
    moved in a way no pose explains, so it stands out after the first calibration and is dropped."""
    truth = load_camera(charuco_views["truth_yaml"])
    image = cv2.imread(str(charuco_views["images"][20]), cv2.IMREAD_GRAYSCALE)
    v, u = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    wobble_px = 2.5 * np.sin(2 * np.pi * v / 160.0)
    odd = tmp_path / "jello.png"
    cv2.imwrite(str(odd), cv2.remap(image, u + wobble_px, v, cv2.INTER_LINEAR))
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    images = [*charuco_views["images"][:14], odd, broken]
    result = calibrate_camera(charuco_views["board"], images, tmp_path / "cam.yaml", report_png=tmp_path / "r.png")
    assert result["views_used"] == 14
    assert set(result["views_rejected"]) == {str(odd), str(broken)}
    assert result["views_rejected"][str(odd)].startswith("outlier: reprojection error")
    assert "threshold" in result["views_rejected"][str(odd)]
    assert "cannot be read" in result["views_rejected"][str(broken)]
    assert (tmp_path / "r.png").is_file()
    check_against_truth(result, truth, "ChArUco, 14 views after dropping the outlier")


def test_too_few_views_names_the_count_and_what_to_do(charuco_views, tmp_path) -> None:
    with pytest.raises(CalibrationError) as error:
        calibrate_camera(charuco_views["board"], charuco_views["images"][:4], tmp_path / "camera.yaml")
    message = str(error.value)
    assert "only 4 of 4 views are usable" in message
    assert "take at least 10 views of the whole board from different angles" in message
    assert not (tmp_path / "camera.yaml").exists()


def test_board_never_detected_says_so(charuco_views, chessboard_views, tmp_path) -> None:
    """Photos of the chessboard calibrated as if they showed the ChArUco board."""
    with pytest.raises(CalibrationError) as error:
        calibrate_camera(charuco_views["board"], chessboard_views["images"], tmp_path / "camera.yaml")
    message = str(error.value)
    assert "was not found in any of the 12 images" in message
    assert "check that --board is the board that was photographed" in message


def test_blank_images_say_the_board_was_never_found(charuco_views, tmp_path) -> None:
    blanks = []
    for index in range(3):
        path = tmp_path / f"blank_{index}.png"
        cv2.imwrite(str(path), np.full((720, 1280), 128, np.uint8))
        blanks.append(path)
    with pytest.raises(CalibrationError, match="was not found in any of the 3 images"):
        calibrate_camera(charuco_views["board"], blanks, tmp_path / "camera.yaml")


def test_image_of_another_size_is_named(charuco_views, tmp_path) -> None:
    images = [tmp_path / path.name for path in charuco_views["images"][:5]]
    for source, target in zip(charuco_views["images"][:5], images, strict=True):
        shutil.copy(source, target)
    small = cv2.resize(cv2.imread(str(images[3]), cv2.IMREAD_GRAYSCALE), (640, 360))
    cv2.imwrite(str(images[3]), small)
    with pytest.raises(CalibrationError) as error:
        calibrate_camera(charuco_views["board"], images, tmp_path / "camera.yaml")
    assert f"image {images[3]} is 640 x 360 but {images[0]} is 1280 x 720" in str(error.value)


def test_no_images_points_at_the_pattern(charuco_views, tmp_path) -> None:
    with pytest.raises(CalibrationError, match="no images given: check the --images pattern"):
        calibrate_camera(charuco_views["board"], [], tmp_path / "camera.yaml")
