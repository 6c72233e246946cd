"""Read a hand-eye samples YAML into pose pairs (T_base_gripper, T_cam_board); format in calibration/handeye.py.

Every mistake raises CalibrationError naming the file, the sample index (0-based, as listed) and the
field, with what to do. Paths inside the file are relative to the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.board_io import read_yaml_mapping
from calibration.errors import CalibrationError
from calibration.handeye_poses import pose_from_xyzw, pose_matrix, rotation_from_vector
from calibration.robot_fk import RobotForwardKinematics
from calibration.synth_camera import CameraModel, load_camera

ROBOT_POSE_FIELDS = ("robot_pose", "joint_states")
BOARD_FIELDS = ("board_pose", "image", "image_points")


@dataclass(frozen=True)
class HandEyeSample:
    index: int
    base_from_gripper: np.ndarray  # 4 x 4 T_base_gripper
    cam_from_board: np.ndarray  # 4 x 4 T_cam_board
    reprojection_rms_px: float | None  # None when the board pose was given


@dataclass(frozen=True)
class HandEyeSamples:
    path: Path
    samples: list[HandEyeSample]
    frames: dict[str, str]  # easy_handeye2 frame names (robot_base_frame, ...)


class _Context:
    """What a sample may need from the header, loaded once on first use."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path, self.header = path, header
        self._fk: RobotForwardKinematics | None = None
        self._camera: CameraModel | None = None
        self._board: Any = None

    @property
    def fk(self) -> RobotForwardKinematics:
        if self._fk is None:
            self._fk = RobotForwardKinematics(self.header.get("robot", "arm"))
        return self._fk

    def camera(self, where: str) -> CameraModel:
        if self._camera is None:
            if "camera" not in self.header:
                raise CalibrationError(
                    f"{where} needs camera intrinsics: add `camera: camera.yaml` (ROS camera_info YAML, "
                    "as written by `simreal calibrate camera`) to the top of the samples file"
                )
            self._camera = camera_of(self.header["camera"], self.path)
        return self._camera

    def board(self, where: str) -> Any:
        if self._board is None:
            if "board" not in self.header:
                raise CalibrationError(
                    f"{where} needs the board: add `board: board.yaml` to the top of the samples file"
                )
            from calibration.board import load_board  # written beside this module; only image samples need it

            self._board = load_board(self.resolve(self.header["board"]))
        return self._board

    def resolve(self, relative: str) -> Path:
        return (self.path.parent / str(relative)).resolve()


def load_samples(path: Path) -> HandEyeSamples:
    path = Path(path)
    raw = read_yaml_mapping(path, "samples file")
    if not isinstance(raw.get("samples"), list):
        raise CalibrationError(f"{path}: expected a mapping with a `samples:` list (see calibration/handeye.py)")
    context = _Context(path, raw)
    samples = [_read_sample(context, index, entry) for index, entry in enumerate(raw["samples"])]
    frames = _frames(context, raw, any("joint_states" in entry for entry in raw["samples"]))
    return HandEyeSamples(path, samples, frames)


def _frames(context: _Context, raw: dict[str, Any], uses_fk: bool) -> dict[str, str]:
    """Frame names for the output; from `frames:`, else from the robot model when FK was used."""
    frames = {
        "robot_base_frame": context.fk.base_frame if uses_fk else "base",
        "robot_effector_frame": context.fk.ee_frame if uses_fk else "ee",
        "tracking_base_frame": "camera",
        "tracking_marker_frame": "board",
    }
    given = raw.get("frames") or {}
    if not isinstance(given, dict) or set(given) - set(frames):
        raise CalibrationError(f"{context.path}: `frames` may only set {', '.join(frames)}")
    return frames | {key: str(value) for key, value in given.items()}


def _read_sample(context: _Context, index: int, entry: Any) -> HandEyeSample:
    where = f"{context.path}: sample {index}"
    if not isinstance(entry, dict):
        raise CalibrationError(f"{where}: expected a mapping with a robot pose and a board observation")
    robot_fields = [field for field in ROBOT_POSE_FIELDS if field in entry]
    board_fields = [field for field in BOARD_FIELDS if field in entry]
    if len(robot_fields) != 1:
        raise CalibrationError(f"{where}: give exactly one robot pose, {' or '.join(ROBOT_POSE_FIELDS)}")
    if len(board_fields) != 1:
        raise CalibrationError(f"{where}: give exactly one board observation, {' or '.join(BOARD_FIELDS)}")
    if robot_fields[0] == "robot_pose":
        base_from_gripper = _pose_field(entry["robot_pose"], f"{where}: robot_pose")
    else:
        base_from_gripper = _joint_states_pose(context, entry["joint_states"], f"{where}: joint_states")
    board_field = board_fields[0]
    if board_field == "board_pose":
        return HandEyeSample(index, base_from_gripper, _pose_field(entry["board_pose"], f"{where}: board_pose"), None)
    if board_field == "image":
        object_points, image_points = _detect(context, entry["image"], f"{where}: image")
    else:
        object_points, image_points = _given_points(context, entry, where)
    cam_from_board, rms_px = board_pose_pnp(object_points, image_points, context.camera(where), where)
    return HandEyeSample(index, base_from_gripper, cam_from_board, rms_px)


def _floats(value: Any, length: int, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != (length,) or not np.all(np.isfinite(array)):
        raise CalibrationError(f"{where}: expected a list of {length} numbers, got {value!r}")
    return array


def _pose_field(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, dict) or not {"translation", "quaternion_xyzw"} <= set(value):
        raise CalibrationError(f"{where}: expected {{translation: [x, y, z] (m), quaternion_xyzw: [x, y, z, w]}}")
    translation_m = _floats(value["translation"], 3, f"{where}.translation")
    quat_xyzw = _floats(value["quaternion_xyzw"], 4, f"{where}.quaternion_xyzw")
    if abs(np.linalg.norm(quat_xyzw) - 1.0) > 1e-3:
        raise CalibrationError(
            f"{where}.quaternion_xyzw has norm {np.linalg.norm(quat_xyzw):.4f}, not 1: "
            "is it in (x, y, z, w) order, and not Euler angles?"
        )
    return pose_from_xyzw(translation_m, quat_xyzw)


def _joint_states_pose(context: _Context, value: Any, where: str) -> np.ndarray:
    if not isinstance(value, dict) or not {"name", "position"} <= set(value):
        raise CalibrationError(f"{where}: expected {{name: [...], position: [...] (rad)}} as in /joint_states")
    names, positions = value["name"], value["position"]
    if not isinstance(names, list) or not isinstance(positions, list):
        raise CalibrationError(f"{where}: name and position must be lists")
    return context.fk.ee_pose(names, _floats(positions, len(positions), f"{where}.position"), where)


def _detect(context: _Context, relative: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    image_path = context.resolve(str(relative))
    image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)  # the detector takes 8/16 bit
    if image is None:
        raise CalibrationError(
            f"{where}: cannot read image {image_path}; check the path (relative to the samples file)"
        )
    from calibration.board import detect_corners  # written beside this module; only image samples need it

    detection = detect_corners(context.board(where), image)
    if detection is None:
        raise CalibrationError(
            f"{where}: board not detected in {image_path}; drop this sample or retake it with the whole board in view"
        )
    object_points, image_points, _ids = detection
    return np.asarray(object_points, dtype=np.float64), np.asarray(image_points, dtype=np.float64)


def _given_points(context: _Context, entry: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    image_points = _point_list(entry["image_points"], 2, f"{where}: image_points")
    if "object_points" in entry:
        object_points = _point_list(entry["object_points"], 3, f"{where}: object_points")
    elif "corner_ids" in entry:
        object_points = _corner_points(context, entry["corner_ids"], f"{where}: corner_ids")
    else:
        raise CalibrationError(
            f"{where}: image_points need their board corners: add `object_points` ([x, y, z] m in the board "
            "frame, one per image point) or `corner_ids` (with `board:` in the header)"
        )
    if len(object_points) != len(image_points):
        raise CalibrationError(
            f"{where}: {len(image_points)} image_points but {len(object_points)} board corners; they pair up in order"
        )
    return object_points, image_points


def _point_list(value: Any, width: int, where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.ndim != 2 or array.shape[1] != width or not np.all(np.isfinite(array)):
        shape = "[x, y, z] (m)" if width == 3 else "[u, v] (px)"
        raise CalibrationError(f"{where}: expected a list of {shape} points")
    return array


def _corner_points(context: _Context, ids: Any, where: str) -> np.ndarray:
    """Board-frame corners (m) of these corner ids, numbered as the board's detector numbers them."""
    table = np.asarray(context.board(where).corner_object_points(), dtype=np.float64)
    try:
        ids = np.asarray(ids, dtype=int).ravel()
    except (TypeError, ValueError):
        raise CalibrationError(f"{where}: expected a list of integer corner ids") from None
    bad = [int(i) for i in ids if not 0 <= i < len(table)]
    if bad:
        raise CalibrationError(f"{where}: corner id(s) {bad} not on the board (ids 0-{len(table) - 1}); check `board:`")
    return table[ids]


def board_pose_pnp(
    object_points: np.ndarray, image_points: np.ndarray, camera: CameraModel, where: str
) -> tuple[np.ndarray, float]:
    """T_cam_board from 2D-3D correspondences (IPPE for a planar board, then Levenberg-Marquardt) and the RMS px."""
    planar = np.ptp(object_points[:, 2]) < 1e-9 if len(object_points) else False
    needed = 4 if planar else 6
    if len(object_points) < needed:
        raise CalibrationError(f"{where}: {len(object_points)} corners; need at least {needed} to find the board pose")
    flags = cv2.SOLVEPNP_IPPE if planar else cv2.SOLVEPNP_ITERATIVE
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points, camera.camera_matrix, camera.dist_coeffs, flags=flags)
    if not ok:
        raise CalibrationError(f"{where}: solvePnP found no board pose; check the points and the camera intrinsics")
    rvec, tvec = cv2.solvePnPRefineLM(object_points, image_points, camera.camera_matrix, camera.dist_coeffs, rvec, tvec)
    projected = cv2.projectPoints(object_points, rvec, tvec, camera.camera_matrix, camera.dist_coeffs)[0]
    rms_px = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - image_points) ** 2, axis=1))))
    return pose_matrix(rotation_from_vector(rvec), tvec), rms_px


def camera_of(value: Any, samples_path: Path) -> CameraModel:
    """Intrinsics from a camera.yaml (ROS camera_info, a path relative to the samples file) or the mapping inline."""
    if isinstance(value, str):
        return load_camera(samples_path.parent / value)
    if not isinstance(value, dict):
        raise CalibrationError(f"{samples_path}: camera must be a camera.yaml path or its mapping, got {value!r}")
    return CameraModel.from_yaml_dict(value, source=f"{samples_path}: camera")
