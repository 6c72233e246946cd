"""`simreal calibrate board|synth|camera|handeye|joints`: calibration targets, synthetic views, intrinsics, hand-eye,
joint (encoder) offsets.

The calibration package (OpenCV) is imported only when a calibrate command runs. The board's and the
renderer's defaults live there (an option left out here is not passed on); the command's own defaults
(25 views of 1280 x 720, park) are the issue's.
"""

from __future__ import annotations

import argparse
import glob
import json
from collections.abc import Callable
from pathlib import Path

from calibration.errors import CalibrationError

EXAMPLES = {
    "calibrate": """examples:
  simreal calibrate board --out calib/board                      (ChArUco 7x5, 30 mm squares; print board.pdf at 100 %)
  simreal calibrate board --kind chessboard --cols 10 --rows 7 --square-m 0.025 --out calib/chess
  simreal calibrate synth --board calib/board/board.yaml --views 25 --out calib/synth
  simreal calibrate camera --board calib/board/board.yaml --images 'calib/synth/*.png' --out calib/camera.yaml --json
  simreal calibrate handeye --mode eye_in_hand --samples calib/samples.yaml --method park --out calib/handeye.yaml
  simreal calibrate joints --robot quadruped --log calib/held.npz --out calib/quadruped_params.yaml
  simreal calibrate joints --robot quadruped --log calib/held.npz --reference pose.yaml --out p.yaml --json""",
}
HANDEYE_MODES = ("eye_in_hand", "eye_to_hand")
HANDEYE_METHODS = ("tsai", "park", "horaud", "andreff", "daniilidis")


def add_calibrate_commands(sub: Callable[[str, str], argparse.ArgumentParser]) -> None:
    calibrate = sub(
        "calibrate", "camera intrinsics, hand-eye and joint-offset calibration (boards, synthetic views, solvers)"
    )
    steps = calibrate.add_subparsers(dest="calibrate_step", required=True)

    board = steps.add_parser("board", help="write a printable board: board.yaml, board.png, board.pdf (true scale)")
    board.add_argument("--kind", choices=("charuco", "chessboard"))
    board.add_argument("--cols", type=int, help="squares across")
    board.add_argument("--rows", type=int, help="squares down")
    board.add_argument("--square-m", type=float, help="square edge, metres")
    board.add_argument("--marker-m", type=float, help="ArUco marker edge, metres (ChArUco)")
    board.add_argument("--dict", dest="dictionary", help="ArUco dictionary, e.g. DICT_5X5_100 (ChArUco)")
    board.add_argument("--dpi", type=int, default=300, help="PNG and PDF raster resolution")
    board.add_argument("--out", type=Path, required=True)

    synth = steps.add_parser("synth", help="render views of a board through a known camera, with truth.yaml")
    synth.add_argument("--board", type=Path, required=True)
    synth.add_argument("--views", type=int, default=25)
    synth.add_argument("--width", type=int, default=1280)
    synth.add_argument("--height", type=int, default=720)
    synth.add_argument("--noise-grey-levels", dest="noise_px", type=float, help="pixel noise sigma, grey levels of 255")
    synth.add_argument("--blur-px", type=float, help="lens blur sigma, pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", type=Path, required=True)

    camera = steps.add_parser("camera", help="intrinsics from images of the board: camera.yaml (ROS camera_info)")
    camera.add_argument("--board", type=Path, required=True)
    camera.add_argument("--images", required=True, help="a quoted glob, e.g. 'shots/*.png'")
    camera.add_argument("--out", type=Path, required=True)
    camera.add_argument("--min-views", type=int)
    camera.add_argument("--json", action="store_true")

    handeye = steps.add_parser("handeye", help="hand-eye transform from paired robot and board poses")
    handeye.add_argument("--mode", choices=HANDEYE_MODES, required=True)
    handeye.add_argument("--samples", type=Path, required=True, help="samples YAML (see calibration/handeye.py)")
    handeye.add_argument("--method", choices=HANDEYE_METHODS, default="park")
    handeye.add_argument("--out", type=Path, required=True)
    handeye.add_argument("--json", action="store_true")

    joints = steps.add_parser(
        "joints", help="encoder offsets from /joint_states logged while the robot is held at a known pose"
    )
    joints.add_argument("--robot", required=True, help="sim/robots/<robot>/ or a spec YAML")
    joints.add_argument("--log", type=Path, required=True, help="npz with joint_names, state_time_s, q_rad")
    joints.add_argument(
        "--reference", default="default", help="'default' (the spec's default_joint_pos) or a YAML joint -> rad"
    )
    joints.add_argument(
        "--out", type=Path, required=True, help="robot parameter YAML; an existing one keeps its other sections"
    )
    joints.add_argument("--json", action="store_true")


def run_calibrate_command(args: argparse.Namespace) -> int:
    steps = {"board": _board, "synth": _synth, "camera": _camera, "handeye": _handeye, "joints": _joints}
    return steps[args.calibrate_step](args)


def _given(args: argparse.Namespace, *names: str) -> dict:
    """The options the user gave (the rest keep the calibration package's defaults)."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _board(args: argparse.Namespace) -> int:
    from calibration.board import make_board, write_board

    spec = make_board(**_given(args, "kind", "cols", "rows", "square_m", "marker_m", "dictionary"))
    written = write_board(spec, args.out, dpi=args.dpi)
    for path in written.values():
        print(path)
    print(f"print board.pdf at 100 % (no fit-to-page) and check one square measures {1000 * spec.square_m:g} mm")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from calibration.synth_views import render_views

    options = _given(args, "noise_px", "blur_px")
    result = render_views(args.board, args.views, args.out, args.seed, args.width, args.height, **options)
    print(f"{len(result['images'])} views in {args.out}; the camera they were taken with: {result['truth_yaml']}")
    return 0


def _camera(args: argparse.Namespace) -> int:
    from calibration.intrinsics import calibrate_camera

    images = sorted(Path(path) for path in glob.glob(str(args.images)))
    if not images:
        raise CalibrationError(f"--images {args.images!r} matches no file (quote the pattern so the shell keeps it)")
    result = calibrate_camera(args.board, images, args.out, **_given(args, "min_views"))
    if args.json:
        keys = ("rms", "fx", "fy", "cx", "cy", "views_used", "views_rejected")
        print(json.dumps({key: result[key] for key in keys}, default=str))
        return 0
    print(f"rms {result['rms']:.3f} px from {result['views_used']} views; fx {result['fx']:.2f} fy {result['fy']:.2f}")
    print(f"cx {result['cx']:.2f} cy {result['cy']:.2f}; written {result['camera_yaml']} and {result['report_png']}")
    for image, reason in result["views_rejected"].items():
        print(f"  rejected {image}: {reason}")
    return 0


def _handeye(args: argparse.Namespace) -> int:
    from calibration.handeye import calibrate_handeye

    result = calibrate_handeye(args.samples, args.mode, args.method, args.out)
    if args.json:
        print(json.dumps(result, default=str))
        return 0
    x, y, z = result["translation_m"]
    print(f"{args.mode} ({args.method}, {result['samples_used']} samples): translation {x:.4f} {y:.4f} {z:.4f} m")
    print(f"quaternion x y z w {' '.join(f'{value:.5f}' for value in result['quaternion_xyzw'])}")
    print(
        f"residuals: {result['rotation_residual_deg']:.3f} deg, {1000 * result['translation_residual_m']:.2f} mm RMS; "
        f"written {result['handeye_yaml']}"
    )
    return 0


def _joints(args: argparse.Namespace) -> int:
    from calibration.joint_offsets import calibrate_joint_offsets

    result = calibrate_joint_offsets(args.robot, args.log, args.out, args.reference)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['robot']}: offsets from {result['samples']} samples (reading = true angle + offset)")
    for name, offset in result["offsets_rad"].items():
        print(f"  {name:<12} {offset:+.4f} rad  (std {result['std_rad'][name]:.4f})")
    print(f"written {result['out']}")
    return 0
