"""Synthetic views: the truth file, the renderer's geometry (detected corners against the truth's projection)
and the scene around the board."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.board import BoardSpec, detect_corners, load_board, make_board, write_board
from calibration.board_io import read_yaml_mapping
from calibration.errors import CalibrationError
from calibration.synth_views import CameraModel, load_camera, render_views


@pytest.fixture(scope="module", params=["charuco", "chessboard"])
def rendered(request, tmp_path_factory) -> tuple[BoardSpec, dict]:
    root = tmp_path_factory.mktemp(f"synth_{request.param}")
    spec = make_board() if request.param == "charuco" else make_board(kind="chessboard", cols=8, rows=5)
    board_yaml = write_board(spec, root / "board", dpi=100)["board_yaml"]
    # 10 ChArUco views include one deliberately cut by the image border
    views = 10 if request.param == "charuco" else 3
    return spec, render_views(board_yaml, views, root / "views", seed=3)


def test_truth_is_a_camera_yaml_with_every_pose(rendered) -> None:
    _, result = rendered
    camera = load_camera(result["truth_yaml"])
    assert camera == CameraModel.typical(1280, 720)
    truth = read_yaml_mapping(result["truth_yaml"], "truth")
    assert truth["distortion_model"] == "plumb_bob"
    assert set(truth["board_poses"]) == {path.name for path in result["images"]}


def test_detected_corners_match_the_truth_projection(rendered) -> None:
    """The renderer's geometry: what OpenCV finds is where the true camera projects the board corners."""
    spec, result = rendered
    camera = load_camera(result["truth_yaml"])
    poses = read_yaml_mapping(result["truth_yaml"], "truth")["board_poses"]
    errors_px = []
    for path in result["images"]:
        found = detect_corners(spec, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
        assert found is not None, f"board not found in {path.name}"
        object_points, image_points, _ = found
        pose = poses[path.name]
        projected = camera.project(object_points, np.array(pose["rvec"]), np.array(pose["tvec_m"]))
        errors_px.append(np.linalg.norm(projected - image_points, axis=1))
    errors_px = np.concatenate(errors_px)
    rms_px = float(np.sqrt(np.mean(errors_px**2)))
    print(f"\n{spec.kind}: corner error vs truth rms {rms_px:.3f} px, max {errors_px.max():.3f} px")
    assert errors_px.max() < 1.0
    assert rms_px < 0.2


def test_most_views_show_the_whole_board(rendered) -> None:
    spec, result = rendered
    truth = read_yaml_mapping(result["truth_yaml"], "truth")
    visible = [pose["fully_visible"] for pose in truth["board_poses"].values()]
    assert result["fully_visible"] == sum(visible)
    assert sum(visible) >= 0.85 * len(visible)
    if spec.kind == "charuco" and len(visible) >= 10:
        assert not all(visible)  # partial views exercise ChArUco's strength


def test_views_are_8_bit_frames_with_a_scene_around_the_board(rendered) -> None:
    spec, result = rendered
    camera = load_camera(result["truth_yaml"])
    poses = read_yaml_mapping(result["truth_yaml"], "truth")["board_poses"]
    for path in result["images"]:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (720, 1280) and image.dtype == np.uint8
        pose = poses[path.name]
        centre = camera.project(np.array([[spec.width_m / 2, spec.height_m / 2, 0]]), pose["rvec"], pose["tvec_m"])
        # the strip along the image border farthest from the board is background: textured, not plain white
        far = "left" if centre[0, 0] > 640 else "right"
        strip = image[:, :100] if far == "left" else image[:, -100:]
        assert strip.mean() < 200 and strip.std() > 10


def test_same_seed_same_images(tmp_path: Path) -> None:
    board_yaml = write_board(make_board(), tmp_path / "board", dpi=100)["board_yaml"]
    first = render_views(board_yaml, 1, tmp_path / "a", seed=7, width=320, height=240)
    again = render_views(board_yaml, 1, tmp_path / "b", seed=7, width=320, height=240)
    other = render_views(board_yaml, 1, tmp_path / "c", seed=8, width=320, height=240)
    assert first["images"][0].read_bytes() == again["images"][0].read_bytes()
    assert first["images"][0].read_bytes() != other["images"][0].read_bytes()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"views": 0}, "--views 0 must be"),
        ({"views": 2, "noise_px": -1.0}, "--noise-px -1.0 must be"),
        ({"views": 2, "camera": CameraModel.typical(640, 480)}, "the camera is 640 x 480 but --width 1280"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, options: dict, words: str) -> None:
    board_yaml = write_board(make_board(), tmp_path / "board", dpi=100)["board_yaml"]
    with pytest.raises(CalibrationError, match=words):
        render_views(board_yaml, out_dir=tmp_path / "views", **options)


def test_missing_board_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"board file .*missing\.yaml does not exist"):
        render_views(tmp_path / "missing.yaml", 3, tmp_path / "views")


def test_camera_yaml_round_trips_and_names_bad_fields() -> None:
    camera = CameraModel.typical(1280, 720)
    data = camera.to_yaml_dict()
    assert CameraModel.from_yaml_dict(data) == camera
    assert data["projection_matrix"]["cols"] == 4 and data["rectification_matrix"]["data"][0] == 1.0
    data["camera_matrix"]["data"] = data["camera_matrix"]["data"][:8]
    with pytest.raises(CalibrationError, match=r"cam\.yaml: field camera_matrix must be 3 x 3"):
        CameraModel.from_yaml_dict(data, source="cam.yaml")


def test_board_spec_loads_back_from_the_rendered_truth(rendered) -> None:
    spec, result = rendered
    truth = read_yaml_mapping(result["truth_yaml"], "truth")
    assert load_board(Path(truth["synthetic"]["board"])) == spec
