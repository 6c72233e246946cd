"""The `simreal` command: argument parsing and dispatch only (DESIGN.md §7)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from sim.config_io import ConfigError
from sim.tasks.config import BACKENDS, BackendConfig
from simreal.calibrate_commands import EXAMPLES as CALIBRATE_EXAMPLES
from simreal.calibrate_commands import add_calibrate_commands, run_calibrate_command
from simreal.demo_commands import DEMO_COMMANDS, add_demo_commands, run_demo_command
from simreal.demo_commands import EXAMPLES as DEMO_EXAMPLES
from simreal.sysid_commands import EXAMPLES as SYSID_EXAMPLES
from simreal.sysid_commands import add_sysid_commands, run_sysid_command

DEFAULT_TASK = "quadruped-flat"

EXAMPLES = {
    "train": """examples:
  simreal train --task quadruped-flat
  simreal train --task quadruped-flat --num-envs 256 --max-iterations 50 --run-dir runs/try
  simreal train --run-dir runs/try --resume --max-iterations 100
  simreal train --task quadruped-flat --config my_task.yaml --set rewards.torques=-1e-4
  simreal train --task quadruped-flat --robot-params calib/quadruped_params.yaml""",
    "eval": """examples:
  simreal eval --run-dir policies/pretrained/quadruped-flat --dynamics randomized --json
  simreal eval --run-dir runs/try --checkpoint 300 --episodes 128""",
    "play": """examples:
  simreal play --run-dir policies/pretrained/quadruped-flat --video walk.mp4
  simreal play --run-dir runs/try --cmd-vx 0.8 --seconds 8 --video fast.mp4""",
    "export": """examples:
  simreal export --run-dir policies/pretrained/quadruped-flat --out policies/pretrained/quadruped-flat/bundle
  simreal export --run-dir runs/try --checkpoint 300 --out bundles/try-300""",
    "bench": """examples:
  simreal bench env --task quadruped-flat --num-envs 512 --json
  simreal bench inference --bundle policies/pretrained/quadruped-flat/bundle --json
  simreal bench deploy --bundle policies/pretrained/quadruped-flat/bundle --seconds 30 --json""",
    "bench deploy": """examples:
  simreal bench deploy --bundle policies/pretrained/quadruped-flat/bundle --seconds 30 --json""",
    "deploy": """examples:
  simreal deploy --params launch/params/quadruped.yaml
  simreal deploy --params launch/params/quadruped.yaml --bundle bundles/try-300
then, from another shell: ros2 service call /simreal_policy/stand_up std_srvs/srv/Trigger""",
    "sim-robot": """examples:
  simreal sim-robot --robot quadruped
  simreal sim-robot --robot quadruped --friction 0.5 --added-mass-kg 2 --latency-ms 10 --drop-rate 0.05
  simreal sim-robot --robot quadruped --reality my_floor.yaml
  simreal sim-robot --robot arm --kp-scale 0.9 --latency-ms 10""",
    "sim2sim": """examples:
  simreal sim2sim --cmd-vx 0.5 --seconds 10 --json
  simreal sim2sim --bundle bundles/try-300 --cmd-vx 0.8 --friction 0.4 --kp-scale 0.9 --json
  simreal sim2sim --params launch/params/quadruped.yaml --reality my_floor.yaml
  simreal sim2sim --params launch/params/arm.yaml --target 0.5 0.1 0.2 --seconds 4 --json
  simreal sim2sim --params launch/params/arm.yaml --target 0.4 -0.15 0.3 0 0.989 0.149 0 --latency-ms 10""",
    "bench env": """examples:
  simreal bench env --task quadruped-flat --num-envs 512 --json""",
    "bench inference": """examples:
  simreal bench inference --bundle policies/pretrained/quadruped-flat/bundle
  simreal bench inference --bundle policies/pretrained/quadruped-flat/bundle --iterations 100000 --json""",
}

EXAMPLES.update(DEMO_EXAMPLES)
EXAMPLES.update(CALIBRATE_EXAMPLES)
EXAMPLES.update(SYSID_EXAMPLES)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simreal", description="simreal: sim-to-real robotics stack")
    commands = parser.add_subparsers(dest="command", required=True)

    def sub(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    train = sub("train", "train a policy with PPO (rsl_rl) on a registered task")
    train.add_argument("--task", help=f"registered task (default {DEFAULT_TASK})")
    train.add_argument("--num-envs", type=int)
    train.add_argument("--max-iterations", type=int)
    train.add_argument("--max-minutes", type=float, help="training wall-time budget (train.max_wall_time_s / 60)")
    train.add_argument("--seed", type=int)
    train.add_argument("--run-dir", type=Path, help="default: runs/<task>-<date>")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its latest checkpoint")
    train.add_argument("--config", type=Path, help="YAML overrides: {env: {...}, train: {...}}")
    train.add_argument(
        "--robot-params",
        type=Path,
        help="fitted robot parameters (sysid / calibrate joints output): the nominal robot and the centre of "
        "the randomization ranges; recorded as env.robot_params in the run's config.yaml",
    )
    _backend_arguments(train)
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one env config field, e.g. rewards.torques=-1e-4 (repeatable)",
    )

    evaluate = sub("eval", "evaluate a trained policy; prints locomotion metrics")
    evaluate.add_argument("--run-dir", type=Path, required=True)
    evaluate.add_argument("--checkpoint", type=int, help="iteration; default: the latest")
    evaluate.add_argument("--episodes", type=int, default=64)
    evaluate.add_argument("--dynamics", choices=("nominal", "randomized"), default="randomized")
    evaluate.add_argument("--seed", type=int, default=12345)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _backend_arguments(evaluate)

    play = sub("play", "render a trained policy offscreen to a video (EGL or OSMesa)")
    play.add_argument("--run-dir", type=Path, required=True)
    play.add_argument("--checkpoint", type=int)
    play.add_argument("--video", type=Path, default=Path("play.mp4"))
    play.add_argument("--seconds", type=float, default=10.0)
    play.add_argument(
        "--cmd-vx", type=float, default=None, help="fixed forward command (m/s); default: a scripted tour"
    )
    play.add_argument("--frame", type=Path, help="also save the middle frame as PNG")
    play.add_argument("--dynamics", choices=("nominal", "randomized"), default="nominal")

    export = sub("export", "write a deploy bundle (deploy.yaml, policy.safetensors, policy.onnx) from a run")
    export.add_argument("--run-dir", type=Path, required=True)
    export.add_argument("--checkpoint", type=int, help="iteration; default: the latest")
    export.add_argument("--out", type=Path, required=True, help="bundle directory (replaced if it exists)")

    deploy = sub("deploy", "run the ROS 2 policy node on a robot (the node of launch/deploy.launch.py)")
    deploy.add_argument(
        "--params", type=Path, required=True, help="ros__parameters YAML, e.g. launch/params/quadruped.yaml"
    )
    deploy.add_argument("--bundle", type=Path, help="deploy bundle (default: the YAML's `bundle`)")

    sim_robot = sub("sim-robot", "the MuJoCo hardware emulator: a simulated robot behind the robot's ROS 2 topics")
    sim_robot.add_argument("--robot", default="quadruped", help="sim/robots/<robot>/ (default quadruped)")
    sim_robot.add_argument("--params", type=Path, help="ros__parameters YAML (default launch/params/<robot>.yaml)")
    sim_robot.add_argument(
        "--camera-rate-hz", type=float, default=0.0, help="publish rendered camera images (robots with cameras)"
    )
    _reality_arguments(sim_robot)

    sim2sim = sub(
        "sim2sim", "emulator + policy node over ROS 2: stand up, walk on command (an arm: reach a target), measure"
    )
    sim2sim.add_argument(
        "--bundle", type=Path, help="deploy bundle (default: the --params YAML's, else the shipped quadruped policy)"
    )
    sim2sim.add_argument(
        "--params",
        type=Path,
        help="ros__parameters YAML (default launch/params/quadruped.yaml); its simreal_sim_robot robot picks the flow",
    )
    sim2sim.add_argument(
        "--target",
        type=float,
        nargs="+",
        metavar="V",
        help="arm only: end-effector goal X Y Z [QW QX QY QZ] in the base frame, m (default 0.5 0.1 0.2, fingers down)",
    )
    sim2sim.add_argument("--cmd-vx", type=float, default=0.5, help="forward command, m/s")
    sim2sim.add_argument("--cmd-vy", type=float, default=0.0, help="lateral command, m/s")
    sim2sim.add_argument("--cmd-yaw", type=float, default=0.0, help="yaw-rate command, rad/s")
    sim2sim.add_argument("--seconds", type=float, default=10.0, help="how long the policy runs")
    sim2sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim2sim.add_argument(
        "--domain-id", type=int, help="DDS domain (default: a random private one, never 0 nor this shell's)"
    )
    _reality_arguments(sim2sim)

    bench = sub("bench", "benchmarks with machine-readable output")
    bench_kinds = bench.add_subparsers(dest="bench_kind", required=True)
    bench_env = bench_kinds.add_parser(
        "env",
        help="env throughput vs a bare Batch.step loop",
        epilog=EXAMPLES["bench env"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_env.add_argument("--task", default="quadruped-flat")
    bench_env.add_argument("--num-envs", type=int, default=512)
    bench_env.add_argument("--steps", type=int, default=200, help="policy steps per measurement")
    bench_env.add_argument("--repeats", type=int, default=5, help="measurements; the median is reported")
    bench_env.add_argument("--json", action="store_true")
    _backend_arguments(bench_env)
    bench_inference = bench_kinds.add_parser(
        "inference",
        help="per-call policy latency of a deploy bundle: C++ core, ONNX Runtime, torch, TorchScript",
        description="per-call latency (batch 1, one thread) of one deploy bundle in four runtimes, measured in\n"
        "one run: cpp (the C++ core, timed in C++), onnxruntime (the bundle's ONNX), torch (eager) and\n"
        "torchscript. Builds cpp_ext/ into build/cpp_ext first (incremental).",
        epilog=EXAMPLES["bench inference"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_inference.add_argument("--bundle", type=Path, required=True, help="deploy bundle directory")
    # 20_000 = benchmarks.inference_bench.DEFAULT_ITERATIONS (not imported here: it pulls in torch)
    bench_inference.add_argument(
        "--iterations", type=_positive_int, default=20_000, help="timed calls per runtime (default 20000)"
    )
    bench_inference.add_argument("--json", action="store_true", help="print one JSON object")
    bench_deploy = bench_kinds.add_parser(
        "deploy",
        help="timing of the deployed loop: emulator + policy node over ROS 2 (jitter, latency, real-time factor)",
        epilog=EXAMPLES["bench deploy"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_deploy.add_argument("--bundle", type=Path, help="deploy bundle (default: the shipped quadruped policy)")
    bench_deploy.add_argument("--params", type=Path, help="ros__parameters YAML (default launch/params/quadruped.yaml)")
    bench_deploy.add_argument("--seconds", type=float, default=30.0, help="how long the policy runs")
    bench_deploy.add_argument("--json", action="store_true", help="print one JSON object")
    bench_deploy.add_argument(
        "--domain-id", type=int, help="DDS domain (default: a random private one, never 0 nor this shell's)"
    )
    add_demo_commands(sub)
    add_calibrate_commands(sub)
    add_sysid_commands(sub, _reality_arguments)
    return parser


# emulator "reality" options: flag -> parameter name of the simreal_sim_robot node
REALITY_FLAGS = {
    "friction": "foot sliding friction coefficient",
    "added_mass_kg": "mass added to the trunk, kg",
    "kp_scale": "scale of the PD stiffness the motors really apply",
    "kd_scale": "scale of the PD damping the motors really apply",
    "latency_ms": "commands take effect this long after they arrive, ms",
    "imu_noise": "std of gyro (rad/s) and orientation (rad) noise",
    "drop_rate": "probability that a sensor message is lost",
}


def _reality_arguments(parser: argparse.ArgumentParser) -> None:
    for name, help_text in REALITY_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, help=help_text)
    parser.add_argument("--reality", type=Path, help="YAML with the same keys (flags given here win)")


def _reality_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Emulator parameter overrides from --reality FILE and the reality flags (flags win)."""
    overrides: dict[str, object] = {}
    if args.reality is not None:
        from robot_io.reality import load_reality_overrides

        overrides.update(load_reality_overrides(args.reality))
    for name in REALITY_FLAGS:
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    return overrides


def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="what steps the simulations: batch (mujoco.batch on CPU threads, the default) or warp (MuJoCo Warp)",
    )
    parser.add_argument("--device", help="warp: cuda, cuda:N or cpu (Warp's CPU device; default); batch: cpu")


def _backend_config(args: argparse.Namespace) -> BackendConfig | None:
    """The --backend / --device choice, or None when neither flag is given."""
    if args.backend is None and args.device is None:
        return None
    name = args.backend or "batch"
    if args.device is not None and args.device != "cpu" and name == "batch":
        raise ConfigError(f"--device {args.device}: the batch backend runs on the CPU; add --backend warp")
    return BackendConfig(name=name, device=args.device or "cpu")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "play":
        from sim.offscreen_gl import choose_gl_backend

        try:
            choose_gl_backend()
        except RuntimeError as error:
            print(f"simreal play: error: {error}", file=sys.stderr)
            return 2
    from simreal.errors import USER_ERRORS

    try:
        return _dispatch(args)
    except USER_ERRORS as error:
        print(f"simreal {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"simreal {args.command}: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "train":
        return _train(args)
    if args.command == "eval":
        from policies.evaluate import evaluate_run

        result = evaluate_run(
            args.run_dir, args.checkpoint, args.episodes, args.dynamics, args.seed, _backend_config(args)
        )
        _print_result(result, args.json)
        return 0
    if args.command == "play":
        from policies.play import play_run

        out = play_run(args.run_dir, args.checkpoint, args.video, args.seconds, args.cmd_vx, args.frame, args.dynamics)
        print(f"video: {out}")
        return 0
    if args.command == "export":
        from policies.export import export_run

        out = export_run(args.run_dir, args.checkpoint, args.out)
        print(f"bundle: {out} (deploy.yaml, policy.safetensors, policy.onnx)")
        return 0
    if args.command == "bench" and args.bench_kind == "env":
        from benchmarks.env_bench import bench_env

        backend = _backend_config(args) or BackendConfig()
        result = bench_env(args.task, args.num_envs, args.steps, args.repeats, backend.name, backend.device)
        _print_result(result, args.json)
        return 0
    if args.command == "bench" and args.bench_kind == "inference":
        from benchmarks.inference_bench import bench_inference, format_table

        result = bench_inference(args.bundle, args.iterations)
        print(json.dumps(result) if args.json else format_table(result))
        return 0
    if args.command in DEMO_COMMANDS:
        return run_demo_command(args)
    if args.command == "calibrate":
        return run_calibrate_command(args)
    if args.command == "sysid":
        return run_sysid_command(args, _reality_overrides)
    if args.command in ("deploy", "sim-robot", "sim2sim") or (args.command == "bench" and args.bench_kind == "deploy"):
        return _ros_command(args)
    raise AssertionError(args.command)


def _ros_command(args: argparse.Namespace) -> int:
    """The ROS 2 commands; imported late so that the others start without rclpy."""
    if args.command == "deploy":
        from robot_io.policy_node import run_policy_node

        overrides = {"bundle": args.bundle.resolve()} if args.bundle else {}
        return run_policy_node(args.params, overrides)
    if args.command == "sim-robot":
        from robot_io.sim_robot import run_sim_robot

        params = args.params or Path(__file__).resolve().parents[1] / "launch" / "params" / f"{args.robot}.yaml"
        cameras = {"camera_rate_hz": args.camera_rate_hz} if args.camera_rate_hz else {}
        return run_sim_robot(params, {"robot": args.robot, **cameras, **_reality_overrides(args)})
    from robot_io import sim2sim

    bundle = args.bundle or (sim2sim.bundle_of(args.params) if args.params else sim2sim.DEFAULT_BUNDLE)
    config = sim2sim.Sim2SimConfig(
        bundle=bundle, params=args.params or sim2sim.DEFAULT_PARAMS, domain_id=args.domain_id
    )
    config.seconds = args.seconds
    if args.command == "bench":
        _print_result(sim2sim.run_bench_deploy(config), args.json)
        return 0
    config.cmd_vx_m_s, config.cmd_vy_m_s, config.cmd_yaw_rate_rad_s = args.cmd_vx, args.cmd_vy, args.cmd_yaw
    config.reality = _reality_overrides(args)
    if args.target is not None:
        config.target_pose = sim2sim.target_pose_from_values(args.target)
    _print_result(sim2sim.run_sim2sim(config), args.json)
    return 0


def _train(args: argparse.Namespace) -> int:
    from policies.train import resume_training, train

    if args.resume:
        if args.run_dir is None:
            raise ConfigError("--resume needs --run-dir")
        fixed = {"--task": args.task, "--num-envs": args.num_envs, "--seed": args.seed, "--config": args.config}
        fixed["--robot-params"] = args.robot_params
        given = [flag for flag, value in fixed.items() if value is not None] + (["--set"] if args.set else [])
        if given:
            raise ConfigError(
                f"--resume continues a run with the config it was started with; drop {', '.join(given)} "
                "(only --max-iterations and --max-minutes may change)"
            )
        print(f"run directory: {args.run_dir}")
        budget_s = None if args.max_minutes is None else 60.0 * args.max_minutes
        resume_training(args.run_dir, args.max_iterations, budget_s, _backend_config(args))
        return 0
    env_cfg, train_cfg = _configs_from_args(args)
    run_dir = args.run_dir or Path("runs") / f"{env_cfg.task}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    print(f"run directory: {run_dir}")
    train(env_cfg, train_cfg, run_dir)
    return 0


def _configs_from_args(args: argparse.Namespace):
    """Task defaults, then --config YAML, then --set, then the explicit flags."""
    from policies.config import TrainConfig
    from sim.config_io import apply_overrides, load_yaml_overrides, parse_set_option
    from sim.robot_params import load_robot_params
    from sim.robot_spec import load_robot_spec
    from sim.tasks import make_task_config

    env_cfg = make_task_config(args.task or DEFAULT_TASK)
    train_cfg = TrainConfig()
    if args.config:
        overrides = load_yaml_overrides(args.config)
        apply_overrides(env_cfg, overrides.get("env", {}), "env")
        apply_overrides(train_cfg, overrides.get("train", {}), "train")
    for text in args.set:
        apply_overrides(env_cfg, parse_set_option(text), "env")
    if args.num_envs is not None:
        env_cfg.num_envs = args.num_envs
    backend = _backend_config(args)
    if backend is not None:
        env_cfg.backend = backend
    if args.max_iterations is not None:
        train_cfg.max_iterations = args.max_iterations
    if args.max_minutes is not None:
        train_cfg.max_wall_time_s = 60.0 * args.max_minutes
    if args.seed is not None:
        train_cfg.seed = args.seed
    if args.robot_params is not None:
        # validated now, so a bad file stops the command before a run directory exists
        params = load_robot_params(args.robot_params, load_robot_spec(env_cfg.robot))
        env_cfg.robot_params = params.to_yaml_dict()
    return env_cfg, train_cfg


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
