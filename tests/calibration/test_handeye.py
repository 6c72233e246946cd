"""Hand-eye calibration on synthetic rigs with known answers, through the samples file, with real OpenCV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from calibration.errors import CalibrationError
from calibration.handeye import calibrate_handeye
from calibration.handeye_poses import invert, pose_from_xyzw, pose_matrix, rotation_angle_deg, rotation_from_vector
from calibration.handeye_solve import METHODS, MODES
from calibration.handeye_synth import make_handeye, pose_entry, write_samples
from calibration.robot_fk import RobotForwardKinematics

MAX_ROTATION_ERROR_DEG = 0.2
MAX_TRANSLATION_ERROR_M = 0.002


def _write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _result_pose(result: dict) -> np.ndarray:
    return pose_from_xyzw(result["translation_m"], result["quaternion_xyzw"])


def _errors(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    rotation_deg = rotation_angle_deg(truth[:3, :3].T @ estimate[:3, :3])
    return rotation_deg, float(np.linalg.norm(estimate[:3, 3] - truth[:3, 3]))


@pytest.fixture(scope="module")
def rigs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Per mode: the synthetic rig (15 poses, 0.1 mm / 0.01 deg robot noise, 0.5 px) and its samples file."""
    folder = tmp_path_factory.mktemp("handeye")
    return {mode: (rig := make_handeye(mode, seed=0), write_samples(rig, folder / f"{mode}.yaml")) for mode in MODES}


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("mode", MODES)
def test_recovers_handeye_from_noisy_image_points(rigs: dict, tmp_path: Path, mode: str, method: str) -> None:
    rig, samples = rigs[mode]
    result = calibrate_handeye(samples, mode, method, tmp_path / "handeye.yaml")
    rotation_deg, translation_m = _errors(_result_pose(result), rig.true_transform)
    print(
        f"\n{mode} {method}: rotation error {rotation_deg:.4f} deg, translation error {translation_m * 1000:.3f} mm, "
        f"residual {result['rotation_residual_deg']:.3f} deg / {result['translation_residual_m'] * 1000:.2f} mm"
    )
    assert rotation_deg <= MAX_ROTATION_ERROR_DEG
    assert translation_m <= MAX_TRANSLATION_ERROR_M
    assert result["samples_used"] == 15
    # the board should look still to within the noise: well under a degree and a few millimetres
    assert 0.0 < result["rotation_residual_deg"] < 0.5
    assert 0.0 < result["translation_residual_m"] < 0.003


@pytest.mark.parametrize("mode", MODES)
def test_accuracy_holds_across_seeds(tmp_path: Path, mode: str) -> None:
    """Seed 0 above is not a lucky draw: eight more rigs, park, all within the limits."""
    worst_deg, worst_m = 0.0, 0.0
    for seed in range(1, 9):
        rig = make_handeye(mode, seed=seed)
        result = calibrate_handeye(write_samples(rig, tmp_path / f"{seed}.yaml"), mode, "park", tmp_path / "out.yaml")
        rotation_deg, translation_m = _errors(_result_pose(result), rig.true_transform)
        worst_deg, worst_m = max(worst_deg, rotation_deg), max(worst_m, translation_m)
    print(f"\n{mode} park, seeds 1-8: worst rotation error {worst_deg:.4f} deg, translation {worst_m * 1000:.3f} mm")
    assert worst_deg <= MAX_ROTATION_ERROR_DEG
    assert worst_m <= MAX_TRANSLATION_ERROR_M


@pytest.mark.parametrize("mode", MODES)
def test_output_yaml_has_easy_handeye2_fields(rigs: dict, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "calib" / "handeye.yaml"
    result = calibrate_handeye(rigs[mode][1], mode, "park", out)
    document = yaml.safe_load(out.read_text())
    parameters = document["parameters"]
    assert parameters["eye_on_hand"] is (mode == "eye_in_hand")
    assert parameters["calibration_type"] == ("eye_in_hand" if mode == "eye_in_hand" else "eye_on_base")
    assert parameters["freehand_robot_movement"] is False
    for frame in ("robot_base_frame", "robot_effector_frame", "tracking_base_frame", "tracking_marker_frame"):
        assert isinstance(parameters[frame], str) and parameters[frame]
    translation, rotation = document["transform"]["translation"], document["transform"]["rotation"]
    assert [translation[axis] for axis in "xyz"] == pytest.approx(result["translation_m"])
    assert [rotation[axis] for axis in "xyzw"] == pytest.approx(result["quaternion_xyzw"])
    assert np.linalg.norm([rotation[axis] for axis in "xyzw"]) == pytest.approx(1.0)
    assert document["method"] == "park" and document["samples_used"] == 15
    residuals = document["residuals"]
    assert residuals["rotation_rms_deg"] == pytest.approx(result["rotation_residual_deg"])
    assert len(residuals["per_sample"]) == 15
    assert all(0.0 < row["reprojection_rms_px"] < 1.5 for row in residuals["per_sample"])
    assert result["handeye_yaml"] == str(out)
    assert sorted(path.name for path in out.parent.iterdir()) == ["handeye.yaml"]  # no temp file left behind


def _arm_samples(count: int, seed: int) -> tuple[RobotForwardKinematics, list[np.ndarray], np.ndarray, np.ndarray]:
    """Random arm joint configurations near the default pose, a wrist camera X and a board on the table."""
    fk = RobotForwardKinematics("arm")
    rng = np.random.default_rng(seed)
    default = np.asarray(fk.spec.default_joint_pos)
    arm = [i for i, name in enumerate(fk.spec.joint_names) if name in fk.required_joints]
    configurations = []
    for _ in range(count):
        joints = default.copy()
        joints[arm] += rng.uniform(-0.35, 0.35, len(arm))
        configurations.append(joints)
    gripper_from_cam = pose_matrix(rotation_from_vector([0.02, 0.03, 1.57]), [0.05, 0.0, -0.06])
    base_from_board = pose_matrix(np.eye(3), [0.45, -0.1, 0.0])
    return fk, configurations, gripper_from_cam, base_from_board


def test_joint_states_through_fk_equal_robot_poses(tmp_path: Path) -> None:
    fk, configurations, gripper_from_cam, base_from_board = _arm_samples(12, seed=3)
    names = list(fk.spec.joint_names)
    by_joints, by_poses = [], []
    for joints in configurations:
        base_from_gripper = fk.ee_pose(names, joints, "test")
        board_pose = pose_entry(invert(base_from_gripper @ gripper_from_cam) @ base_from_board)
        # as a driver logs it: another order, and without the finger (it does not move the ee)
        order = [6, 0, 5, 1, 4, 2, 3]
        joint_states = {"name": [names[i] for i in order], "position": [float(joints[i]) for i in order]}
        by_joints.append({"joint_states": joint_states, "board_pose": board_pose})
        by_poses.append({"robot_pose": pose_entry(base_from_gripper), "board_pose": board_pose})
    from_joints = calibrate_handeye(
        _write(tmp_path / "joints.yaml", {"robot": "arm", "samples": by_joints}),
        "eye_in_hand",
        "tsai",
        tmp_path / "a.yaml",
    )
    from_poses = calibrate_handeye(
        _write(tmp_path / "poses.yaml", {"samples": by_poses}), "eye_in_hand", "tsai", tmp_path / "b.yaml"
    )
    assert from_joints["translation_m"] == pytest.approx(from_poses["translation_m"], abs=1e-9)
    assert from_joints["quaternion_xyzw"] == pytest.approx(from_poses["quaternion_xyzw"], abs=1e-9)
    rotation_deg, translation_m = _errors(_result_pose(from_joints), gripper_from_cam)  # noise-free: exact
    assert rotation_deg < 1e-4 and translation_m < 1e-6
    frames = yaml.safe_load((tmp_path / "a.yaml").read_text())["parameters"]
    assert (frames["robot_base_frame"], frames["robot_effector_frame"]) == (fk.base_frame, fk.ee_frame)


def _motion_samples(rotations: list[np.ndarray], tmp_path: Path) -> Path:
    """A samples file with these gripper rotations (varied positions), exact board poses of a fixed board."""
    gripper_from_cam = pose_matrix(rotation_from_vector([0.1, -0.2, 1.2]), [0.05, 0.02, 0.08])
    base_from_board = pose_matrix(np.eye(3), [0.5, 0.0, 0.0])
    samples = []
    for index, rotation in enumerate(rotations):
        base_from_gripper = pose_matrix(rotation, [0.4 + 0.02 * index, 0.1 - 0.01 * index, 0.5])
        board = invert(base_from_gripper @ gripper_from_cam) @ base_from_board
        samples.append({"robot_pose": pose_entry(base_from_gripper), "board_pose": pose_entry(board)})
    return _write(tmp_path / "samples.yaml", {"samples": samples})


def test_rotations_about_one_axis_are_refused(tmp_path: Path) -> None:
    tool_down = rotation_from_vector([np.pi, 0.0, 0.0])
    about_z = [tool_down @ rotation_from_vector([0.0, 0.0, np.radians(angle)]) for angle in range(-60, 61, 12)]
    samples = _motion_samples(about_z, tmp_path)
    with pytest.raises(CalibrationError, match="single axis") as error:
        calibrate_handeye(samples, "eye_in_hand", "tsai", tmp_path / "out.yaml")
    assert "rotate the gripper about at least two different axes" in str(error.value)
    assert not (tmp_path / "out.yaml").exists()
    # the same check guards eye_to_hand, where the robot poses are inverted before solving
    with pytest.raises(CalibrationError, match="single axis"):
        calibrate_handeye(samples, "eye_to_hand", "park", tmp_path / "out.yaml")


def test_too_little_rotation_is_refused(tmp_path: Path) -> None:
    # 2 degrees about varied axes: any two differ by at most 4 degrees
    axes = np.random.default_rng(0).standard_normal((8, 3))
    small = [rotation_from_vector(np.radians(2.0) * axis / np.linalg.norm(axis)) for axis in axes]
    with pytest.raises(CalibrationError, match="barely rotates"):
        calibrate_handeye(_motion_samples(small, tmp_path), "eye_in_hand", "park", tmp_path / "out.yaml")


def test_two_axes_are_enough_for_the_checks(tmp_path: Path) -> None:
    """The degeneracy check must not refuse a good set: rotations about x, then about y."""
    rotations = [rotation_from_vector([np.radians(a), 0.0, 0.0]) for a in (-30, 0, 30)]
    rotations += [rotation_from_vector([0.0, np.radians(a), 0.0]) for a in (-30, 30)]
    result = calibrate_handeye(_motion_samples(rotations, tmp_path), "eye_in_hand", "park", tmp_path / "out.yaml")
    assert result["samples_used"] == 5 and result["rotation_residual_deg"] < 1e-6


def test_fewer_than_three_samples_are_refused(rigs: dict, tmp_path: Path) -> None:
    document = yaml.safe_load(rigs["eye_in_hand"][1].read_text())
    document["samples"] = document["samples"][:2]
    with pytest.raises(CalibrationError, match="at least 3 samples, got 2") as error:
        calibrate_handeye(_write(tmp_path / "two.yaml", document), "eye_in_hand", "tsai", tmp_path / "out.yaml")
    assert "10 or more" in str(error.value)


@pytest.mark.parametrize(
    ("first", "last", "extra", "message"),
    [
        (0, 7, ["wrist_roll_joint"], r"sample 0: joint_states: unknown joint\(s\) wrist_roll_joint"),
        (1, 7, [], r"sample 0: joint_states: missing joint\(s\) arm_joint1,"),
    ],
)
def test_joint_states_of_other_joints_are_named(tmp_path: Path, first, last, extra, message) -> None:
    fk, configurations, _, _ = _arm_samples(3, seed=0)
    names = [*fk.spec.joint_names[first:last], *extra]
    samples = [
        {
            "joint_states": {"name": names, "position": [float(v) for v in joints[first : first + len(names)]]},
            "board_pose": pose_entry(np.eye(4)),
        }
        for joints in configurations
    ]
    samples_file = _write(tmp_path / "s.yaml", {"robot": "arm", "samples": samples})
    with pytest.raises(CalibrationError, match=message):
        calibrate_handeye(samples_file, "eye_in_hand", "tsai", tmp_path / "o.yaml")


def test_unknown_mode_and_method_name_the_choices(rigs: dict, tmp_path: Path) -> None:
    samples = rigs["eye_in_hand"][1]
    with pytest.raises(CalibrationError, match="tsai, park, horaud, andreff, daniilidis"):
        calibrate_handeye(samples, "eye_in_hand", "lenz", tmp_path / "out.yaml")
    with pytest.raises(CalibrationError, match="eye_in_hand, eye_to_hand"):
        calibrate_handeye(samples, "eye_on_base", "tsai", tmp_path / "out.yaml")


def test_sample_without_board_observation_is_named(rigs: dict, tmp_path: Path) -> None:
    document = yaml.safe_load(rigs["eye_in_hand"][1].read_text())
    del document["samples"][4]["image_points"]
    with pytest.raises(CalibrationError, match="sample 4: give exactly one board observation"):
        calibrate_handeye(_write(tmp_path / "s.yaml", document), "eye_in_hand", "tsai", tmp_path / "out.yaml")


def test_corner_ids_use_the_board_spec(rigs: dict, tmp_path: Path) -> None:
    """image_points with corner_ids instead of object_points give the same calibration."""
    pytest.importorskip("calibration.board")
    # a chessboard of 11 x 8 squares has the synthetic rig's 10 x 7 inner corners, numbered row by row
    # like it, with the board frame one square further out: a fixed board may sit anywhere, X is the same
    board = {"kind": "chessboard", "cols": 11, "rows": 8, "square_m": 0.03}
    _write(tmp_path / "board.yaml", board)
    document = yaml.safe_load(rigs["eye_in_hand"][1].read_text())
    document["board"] = "board.yaml"
    for sample in document["samples"]:
        sample["corner_ids"] = list(range(len(sample.pop("object_points"))))
    samples = _write(tmp_path / "ids.yaml", document)
    by_ids = calibrate_handeye(samples, "eye_in_hand", "park", tmp_path / "a.yaml")
    by_points = calibrate_handeye(rigs["eye_in_hand"][1], "eye_in_hand", "park", tmp_path / "b.yaml")
    assert by_ids["translation_m"] == pytest.approx(by_points["translation_m"], abs=1e-6)
    assert by_ids["quaternion_xyzw"] == pytest.approx(by_points["quaternion_xyzw"], abs=1e-6)
    document["samples"][3]["corner_ids"][0] = 70
    with pytest.raises(CalibrationError, match=r"sample 3: corner_ids: corner id\(s\) \[70\] not on the board"):
        calibrate_handeye(_write(tmp_path / "bad.yaml", document), "eye_in_hand", "park", tmp_path / "c.yaml")


def test_unreadable_image_is_named(rigs: dict, tmp_path: Path) -> None:
    document = yaml.safe_load(rigs["eye_in_hand"][1].read_text())
    sample = document["samples"][2]
    del sample["image_points"], sample["object_points"]
    sample["image"] = "images/missing.png"
    with pytest.raises(CalibrationError, match=r"sample 2: image: cannot read image .*images/missing\.png"):
        calibrate_handeye(_write(tmp_path / "s.yaml", document), "eye_in_hand", "tsai", tmp_path / "out.yaml")
