"""`simreal sysid excite|fit`: excite a hung robot through the policy node, then fit the simulator to its log.

excite: a per-joint chirp table around the standing pose (calibration/excitation.py) played by the policy node
while STANDING (robot_io/excitation.py), here on the emulator hung on a test stand with any hidden reality
(`--kp-scale 0.8 --kd-scale 1.5 --latency-ms 10`); on a robot, `--table-only` writes the table, and the node
plays it with its `excitation_file` and `sysid_log` parameters and `~/excite`.
fit: kp and kd scales, joint damping, armature, friction loss and the actuation delay (calibration/sysid_fit.py)
from that log or a rosbag2; writes the parameter-override YAML that `simreal train --robot-params` centres
randomization on, and a PNG of simulated vs logged joint trajectories before and after the fit.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

EXAMPLES = {
    "sysid": """examples:
  simreal sysid excite --robot quadruped --out logs/sysid.npz --kp-scale 0.8 --kd-scale 1.5 --latency-ms 10
  simreal sysid excite --robot quadruped --table-only --out logs/excitation_table.npz     (for a real robot)
  simreal sysid fit --robot quadruped --log logs/sysid.npz --out params/quadruped_fit.yaml --json
  simreal train --task quadruped-flat --robot-params params/quadruped_fit.yaml""",
}
TABLE_RATE_HZ = 1000.0  # the node interpolates the table linearly: 1 ms rows keep that error below 1e-6 rad


def add_sysid_commands(sub: Callable[[str, str], argparse.ArgumentParser], reality_arguments: Callable) -> None:
    sysid = sub("sysid", "system identification: excite a hung robot, fit the simulator to the log")
    steps = sysid.add_subparsers(dest="sysid_step", required=True)

    excite = steps.add_parser("excite", help="chirps around the standing pose through the policy node; the log")
    excite.add_argument("--robot", default="quadruped")
    excite.add_argument("--out", type=Path, required=True, help="the log (.npz); with --table-only the table")
    excite.add_argument("--duration-s", type=float, default=20.0, help="the position chirp's length")
    excite.add_argument("--feedforward-s", type=float, default=8.0, help="then the velocity-target-only phase")
    excite.add_argument("--amplitude-rad", type=float, default=0.3, help="largest offset from the standing pose")
    excite.add_argument("--f0-hz", type=float, default=0.3)
    excite.add_argument("--f1-hz", type=float, default=3.0)
    excite.add_argument("--bundle", type=Path, help="the policy node's bundle (default: the params file's)")
    excite.add_argument("--params", type=Path, help="ros__parameters YAML (default launch/params/<robot>.yaml)")
    excite.add_argument("--table-only", action="store_true", help="only write the table, for a real robot")
    excite.add_argument("--domain-id", type=int)
    excite.add_argument("--json", action="store_true")
    reality_arguments(excite)

    fit = steps.add_parser("fit", help="fit kp, kd, damping, armature, friction loss and delay to a log")
    fit.add_argument("--robot", default="quadruped")
    fit.add_argument("--log", type=Path, required=True, help="an excite log (.npz) or a rosbag2 (folder or file)")
    fit.add_argument("--out", type=Path, required=True, help="parameter-override YAML")
    fit.add_argument("--plot", type=Path, help="PNG of the trajectories (default: next to --out)")
    fit.add_argument("--json", action="store_true")


def run_sysid_command(args: argparse.Namespace, reality_overrides: Callable) -> int:
    if args.sysid_step == "excite":
        return _excite(args, reality_overrides(args))
    return _fit(args)


def _excitation_table(args: argparse.Namespace, path: Path) -> float:
    """Write the robot's table (the position chirp, then the velocity-target phase); its duration, s."""
    from calibration.excitation import ExcitationConfig, excitation
    from robot_io.sysid_excite import write_excitation_table
    from sim.hanging import hanging_model
    from sim.robot_spec import load_robot_spec

    spec = load_robot_spec(args.robot)
    config = ExcitationConfig(
        duration_s=args.duration_s,
        feedforward_s=args.feedforward_s,
        amplitude_rad=args.amplitude_rad,
        f0_hz=args.f0_hz,
        f1_hz=args.f1_hz,
    )
    config.validate()
    model = hanging_model(spec, spec.physics_dt) if spec.floating_base else spec.load_model()
    time_s = np.arange(0.0, config.total_s + 0.5 / TABLE_RATE_HZ, 1.0 / TABLE_RATE_HZ)
    q_rad, dq_rad_s = excitation(spec, model, config, time_s)
    write_excitation_table(path, list(spec.joint_names), time_s, q_rad, dq_rad_s)
    return config.total_s


def _excite(args: argparse.Namespace, reality: dict[str, object]) -> int:
    if args.table_only:
        duration_s = _excitation_table(args, args.out)
        _report(args, {"table": str(args.out), "duration_s": duration_s}, f"wrote the excitation table {args.out}")
        return 0
    from robot_io.sim2sim import Sim2SimConfig, bundle_of
    from robot_io.sysid_excite import excite_on_emulator

    params = args.params or Path("launch/params") / f"{args.robot}.yaml"
    bundle = args.bundle or bundle_of(params)
    config = Sim2SimConfig(bundle=bundle, params=params, reality=reality, domain_id=args.domain_id)
    with tempfile.TemporaryDirectory(prefix="simreal-sysid-") as folder:
        table = Path(folder) / "excitation_table.npz"
        duration_s = _excitation_table(args, table)
        summary = excite_on_emulator(config, table, args.out, duration_s)
    summary["reality"] = reality
    _report(args, summary, f"wrote {args.out}: {summary['excitation']}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from calibration.sysid_fit import fit_sysid, write_robot_params
    from calibration.sysid_log import load_sysid_log
    from calibration.sysid_plot import plot_fit
    from sim.robot_spec import load_robot_spec

    spec = load_robot_spec(args.robot)
    log = load_sysid_log(args.log, spec)
    result = fit_sysid(log, spec)
    write_robot_params(args.out, result, spec, args.log)
    plot = args.plot or args.out.with_suffix(".png")
    plot_fit(plot, log, spec, result)
    summary = {
        **{name: round(value, 6) for name, value in asdict(result.fitted).items()},
        "rms_nominal_rad": round(result.rms_nominal_rad, 6),
        "rms_fitted_rad": round(result.rms_fitted_rad, 6),
        "error_reduction": round(result.rms_nominal_rad / max(result.rms_fitted_rad, 1e-12), 2),
        "params": str(args.out),
        "plot": str(plot),
    }
    text = ", ".join(f"{name} {summary[name]}" for name in ("kp_scale", "kd_scale", "delay_s", "error_reduction"))
    _report(args, summary, f"wrote {args.out} and {plot}: {text}")
    return 0


def _report(args: argparse.Namespace, summary: dict[str, object], line: str) -> None:
    print(json.dumps(summary) if args.json else line)
