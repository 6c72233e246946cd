"""`simreal teleop`, `simreal dataset` and `simreal train-bc`: demonstrations in, cloned policies out."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from sim.config_io import ConfigError

DEVICES = ("keyboard", "gamepad", "spacemouse", "scripted")
BC_STATE_NOISE = 0.0  # policies.bc.BCConfig.state_noise (not imported here: the CLI starts without torch)
DATASET_ACTIONS = ("info", "check", "recover", "replay")
EXAMPLES = {
    "teleop": """examples:
  simreal teleop --task arm-lift --device scripted --dataset datasets/lift --episodes 50
  simreal teleop --task arm-lift --device keyboard --dataset datasets/lift-human --episodes 10
  simreal teleop --task arm-lift --device gamepad --dataset datasets/lift-human --viewer
  simreal teleop --task quadruped-flat --device gamepad       (a twist on /cmd_vel)
keys while recording: n next episode, r re-record, q stop, space toggles intervention, s marks success""",
    "dataset": """examples:
  simreal dataset info datasets/lift
  simreal dataset check datasets/lift
  simreal dataset recover datasets/lift""",
    "record": """examples:
  simreal record --ros --params launch/params/arm.yaml --dataset datasets/robot --episodes 10 --fps 30
on the robot: cameras on /camera/<name>/image_raw, teleop on /teleop/ee_delta, /teleop/gripper, /teleop/events""",
    "train-bc": """examples:
  simreal train-bc --dataset datasets/lift --task arm-lift --run-dir runs/lift-bc
  simreal eval --run-dir runs/lift-bc --episodes 100 --dynamics randomized --json""",
}
DEMO_COMMANDS = tuple(EXAMPLES)


def add_demo_commands(sub: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register the three commands with the `simreal` parser (`sub` makes one sub-parser)."""
    teleop = sub("teleop", "teleoperate the arm in simulation and record demonstrations (LeRobot v3.0 layout)")
    teleop.add_argument(
        "--task", default="arm-lift", help="arm-lift (default) or arm-reach; quadruped-flat drives /cmd_vel"
    )
    teleop.add_argument("--device", choices=DEVICES, default="keyboard")
    teleop.add_argument("--dataset", type=Path, help="dataset folder: created, or appended to (arm tasks)")
    teleop.add_argument("--episodes", type=int, default=10, help="episodes to commit (default 10)")
    teleop.add_argument("--fps", type=int, default=30, help="recording rate, frames per second (default 30)")
    teleop.add_argument("--seed", type=int, default=0)
    teleop.add_argument("--nominal", action="store_true", help="no domain randomization")
    teleop.add_argument("--image-size", type=int, nargs=2, default=(128, 96), metavar=("WIDTH", "HEIGHT"))
    teleop.add_argument("--viewer", action="store_true", help="a MuJoCo viewer window (needs a display)")
    teleop.add_argument(
        "--expert-noise", type=float, default=0.0, help="scripted: noise on the executed delta, not the recorded one"
    )
    dataset = sub("dataset", "inspect, check, recover or replay a demonstration dataset")
    dataset.add_argument("action", choices=DATASET_ACTIONS)
    dataset.add_argument("dataset", type=Path)
    dataset.add_argument("--json", action="store_true")
    dataset.add_argument("--episode", type=int, nargs="+", help="replay: these episodes (default: all)")
    dataset.add_argument("--task", default="arm-lift", help="replay: the task the dataset was recorded in")
    dataset.add_argument("--viewer", action="store_true", help="replay: watch it in a MuJoCo viewer (needs a display)")
    record = sub("record", "record demonstrations from a robot over ROS 2 (joint states, cameras, teleop commands)")
    record.add_argument("--ros", action="store_true", required=True, help="read the robot over ROS 2 (the only source)")
    record.add_argument("--params", type=Path, help="parameter YAML with a simreal_recorder section")
    record.add_argument("--dataset", type=Path, required=True)
    record.add_argument("--episodes", type=int)
    record.add_argument("--fps", type=int)
    record.add_argument("--episode-seconds", type=float, help="end an episode after this long (0: only on 'next')")
    record.add_argument("--task", help="the task description stored with each episode")
    bc = sub("train-bc", "behaviour cloning: fit the task's actor to demonstrations (evaluate with simreal eval)")
    bc.add_argument("--dataset", type=Path, required=True)
    bc.add_argument("--task", default="arm-lift")
    bc.add_argument("--run-dir", type=Path, required=True)
    bc.add_argument("--epochs", type=int, default=100)
    bc.add_argument("--batch-size", type=int, default=256)
    bc.add_argument("--learning-rate", type=float, default=1e-3)
    bc.add_argument("--weight-decay", type=float, default=1e-3)
    bc.add_argument("--hidden-dims", type=int, nargs="+", default=[256, 256, 128])
    bc.add_argument("--seed", type=int, default=1)
    bc.add_argument(
        "--action",
        choices=["ee_delta", "joint_step", "joint_target"],
        default="ee_delta",
        help="what to clone: the device's end-effector delta through IK (default), or the joint targets",
    )
    bc.add_argument(
        "--state-noise", type=float, default=BC_STATE_NOISE, help="training-state noise, fraction of each spread"
    )
    bc.add_argument("--all-episodes", action="store_true", help="also clone episodes that never reached success")


def run_demo_command(args: argparse.Namespace) -> int:
    if args.command == "teleop":
        return _teleop(args)
    if args.command == "dataset":
        return _dataset(args)
    if args.command == "record":
        return _record(args)
    return _train_bc(args)


def _teleop(args: argparse.Namespace) -> int:
    if args.task.startswith("quadruped"):
        return _drive_quadruped(args)
    if args.dataset is None:
        raise ConfigError("teleop of the arm records demonstrations: give --dataset DIR")
    from sim.offscreen_gl import choose_gl_backend

    choose_gl_backend()  # before mujoco's GL context module is first imported
    from robot_io.teleop.arm_session import ArmTeleopConfig, ArmTeleopSession

    width, height = args.image_size
    scripted = args.device == "scripted"
    config = ArmTeleopConfig(
        task=args.task,
        episodes=args.episodes,
        fps=args.fps,
        seed=args.seed,
        randomized=not args.nominal,
        image_width=width,
        image_height=height,
        realtime=not scripted,  # a person needs real time; a program does not
        viewer=args.viewer,
        expert_noise=args.expert_noise,
    )
    session = ArmTeleopSession(config, _make_device(args.device, args.task), args.dataset)

    def report(index: int, outcome) -> None:
        verdict = "success" if outcome.success else "no success"
        if outcome.committed:
            print(f"episode {index}: {outcome.frames} frames, {verdict}", flush=True)
        else:
            print(f"episode discarded ({outcome.frames} frames)", flush=True)

    committed = session.run(on_episode=report)
    print(f"dataset: {args.dataset} ({committed} episodes recorded, {session.writer.num_episodes} in total)")
    return 0


def _drive_quadruped(args: argparse.Namespace) -> int:
    """A twist on /cmd_vel from the device (the robot's policy node or sim2sim listens); nothing recorded."""
    if args.device == "scripted":
        raise ConfigError("the quadruped is driven by a person: --device keyboard, gamepad or spacemouse")
    from robot_io.teleop.twist_teleop import TwistTeleopConfig, run_twist_teleop

    print("publishing /cmd_vel; q stops")
    sent = run_twist_teleop(_make_device(args.device, args.task), TwistTeleopConfig())
    print(f"sent {sent} twists")
    return 0


def _make_device(kind: str, task: str):
    if kind == "scripted":
        from robot_io.teleop.scripted import scripted_expert

        return scripted_expert(task)
    from robot_io.teleop.devices import make_device

    return make_device(kind)


def _dataset(args: argparse.Namespace) -> int:
    from robot_io.datasets import check_dataset, dataset_info, recover_dataset

    if args.action == "info":
        _print(dataset_info(args.dataset), args.json)
        return 0
    if args.action == "recover":
        _print(recover_dataset(args.dataset), args.json)
        return 0
    if args.action == "replay":
        return _replay(args)
    problems = check_dataset(args.dataset)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": problems}))
    else:
        print(f"{args.dataset}: " + ("ok" if not problems else f"{len(problems)} problems"))
        for problem in problems:
            print(f"  {problem}")
    return 0 if not problems else 1


def _replay(args: argparse.Namespace) -> int:
    from robot_io.teleop.arm_replay import replay_dataset

    result = replay_dataset(args.dataset, args.task, args.episode, viewer=args.viewer)
    if args.json:
        print(json.dumps(result))
        return 0
    for episode in result["per_episode"]:
        print(
            f"episode {episode['episode']}: {episode['frames']} frames, "
            f"success recorded {episode['recorded_success']} / replayed {episode['replayed_success']}, "
            f"ee error rms {1000 * episode['ee_error_rms_m']:.1f} mm (max {1000 * episode['ee_error_max_m']:.1f}), "
            f"cube lift {100 * episode['recorded_object_lift_m']:.1f} cm / "
            f"{100 * episode['replayed_object_lift_m']:.1f} cm"
        )
    print(
        f"{result['episodes']} episodes: success recorded {result['recorded_success_rate']:.2f}, "
        f"replayed {result['replayed_success_rate']:.2f} (nominal dynamics)"
    )
    return 0


def _record(args: argparse.Namespace) -> int:
    from robot_io.ros_recorder import RosRecorderConfig, run_ros_recorder

    config = RosRecorderConfig(
        dataset=args.dataset,
        params=args.params,
        episodes=args.episodes,
        fps=args.fps,
        episode_seconds=args.episode_seconds,
        task=args.task,
    )
    _print(run_ros_recorder(config), as_json=False)
    return 0


def _train_bc(args: argparse.Namespace) -> int:
    from policies.bc import BCConfig, train_bc

    cfg = BCConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        hidden_dims=list(args.hidden_dims),
        seed=args.seed,
        action=args.action,
        state_noise=args.state_noise,
    )
    print(f"run directory: {args.run_dir}")
    demos = load_demonstrations(args.dataset, successful_only=not args.all_episodes)
    print(f"cloning {demos.num_episodes} episodes, {len(demos.states)} frames")
    checkpoint = train_bc(demos, args.task, args.run_dir, cfg)
    print(f"checkpoint: {checkpoint}\nevaluate: simreal eval --run-dir {args.run_dir} --json")
    return 0


def load_demonstrations(root: Path, successful_only: bool = True):
    """The dataset's states, commands and joint targets as policies.bc reads them (policies never import robot_io);
    with successful_only, episodes whose next.success never turned true are left out."""
    import numpy as np

    from policies.bc import BCError, Demonstrations
    from robot_io.datasets import load_dataset

    ds = load_dataset(root)
    for key in ("observation.state", "action.joint_target"):
        if key not in ds.info["features"]:
            raise BCError(f"{root} has no {key} feature: behaviour cloning needs the states and the joint targets")
    names = list(ds.info["features"]["observation.state"].get("names") or [])
    states, commands, targets, episodes = [], [], [], []
    for episode in range(ds.num_episodes):
        frames = ds.frames(episode)
        if successful_only and "next.success" in frames and not np.any(frames["next.success"]):
            continue
        states.append(np.asarray(frames["observation.state"], dtype=np.float32))
        # the device's command; a dataset without one can still clone its joint targets
        commands.append(np.asarray(frames.get("action", np.zeros((len(frames["observation.state"]), 0))), np.float32))
        targets.append(np.asarray(frames["action.joint_target"], dtype=np.float32))
        episodes.append(np.full(len(targets[-1]), episode))
    if not states:
        empty = np.zeros((0, 0), np.float32)
        return Demonstrations(np.zeros((0, len(names)), np.float32), empty, empty, np.zeros(0), names, str(root))
    return Demonstrations(
        np.concatenate(states),
        np.concatenate(targets),
        np.concatenate(commands),
        np.concatenate(episodes),
        names,
        str(root),
    )


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, default=str))
        return
    for key, value in result.items():
        print(f"{key}: {value}")
