"""The run directory: resolved config, seed, git commit, randomization ranges, checkpoints."""

from __future__ import annotations

import csv
import datetime
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from policies.config import TrainConfig
from sim.atomic_file import atomic_write_bytes
from sim.config_io import from_dict, to_dict
from sim.errors import SimrealError
from sim.tasks.config import EnvConfig

CHECKPOINT_PATTERN = re.compile(r"model_(\d+)\.pt$")


class RunDirError(SimrealError):
    """A run directory that is missing, incomplete or unreadable; the message names the file."""


@dataclass
class RunConfig:
    env: EnvConfig
    train: TrainConfig


def git_commit() -> str:
    """The commit of the simreal checkout, with '+dirty' when it has local changes, or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_text_atomic(path: Path, text: str) -> None:
    """Write beside the target, then rename: a crash never leaves a half-written file under its name."""
    atomic_write_bytes(path, text.encode())


def write_yaml_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def write_run_files(run_dir: Path, config: RunConfig, randomization: dict) -> None:
    """config.yaml (resolved), run.yaml (seed, commit, date, command), randomization.yaml."""
    commit = git_commit()  # before this run's own files make the tree look dirty
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml_atomic(run_dir / "config.yaml", {"env": to_dict(config.env), "train": to_dict(config.train)})
    write_yaml_atomic(
        run_dir / "run.yaml",
        {
            "task": config.env.task,
            "seed": config.train.seed,
            "git_commit": commit,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["simreal", *sys.argv[1:]]),
            "torch": str(torch.__version__),
        },
    )
    write_yaml_atomic(run_dir / "randomization.yaml", randomization)


def record_resume(run_dir: Path, from_iteration: int, max_iterations: int, max_wall_time_s: float = 0.0) -> None:
    """Keep run.yaml's original provenance and append this resume to its list."""
    path = run_dir / "run.yaml"
    run = yaml.safe_load(path.read_text()) if path.is_file() else {}
    run.setdefault("resumes", []).append(
        {
            "from_iteration": from_iteration,
            "max_iterations": max_iterations,
            "max_wall_time_s": max_wall_time_s,
            "git_commit": git_commit(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["simreal", *sys.argv[1:]]),
        }
    )
    write_yaml_atomic(path, run)


def truncate_progress(run_dir: Path, last_iteration: int, columns: tuple[str, ...]) -> None:
    """Keep progress.csv's rows up to `last_iteration` (later ones were logged after the checkpoint a resume
    starts from), in `columns`: a column the file predates (a run logged by an older simreal) is NaN, so that
    the rows the resume appends line up with the header."""
    path = run_dir / "progress.csv"
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        kept = [row for row in csv.DictReader(handle) if int(row["iteration"]) <= last_iteration]
    lines = [",".join(columns)] + [",".join(row.get(column) or "nan" for column in columns) for row in kept]
    write_text_atomic(path, "\n".join(lines) + "\n")


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.yaml"
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise RunDirError(f"{path} is missing: {run_dir} is not a simreal run directory")
    data = yaml.safe_load(path.read_text()) or {}
    return RunConfig(env=from_dict(EnvConfig, data.get("env", {})), train=from_dict(TrainConfig, data.get("train", {})))


def checkpoint_path(run_dir: Path, iteration: int) -> Path:
    return run_dir / "checkpoints" / f"model_{iteration}.pt"


def list_checkpoints(run_dir: Path) -> dict[int, Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def find_checkpoint(run_dir: Path, iteration: int | None = None) -> Path:
    """The checkpoint of `iteration`, or the latest one."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise RunDirError(f"{run_dir / 'checkpoints'} holds no model_<iteration>.pt checkpoint")
    if iteration is None:
        return checkpoints[max(checkpoints)]
    if iteration not in checkpoints:
        raise RunDirError(f"{run_dir} has no checkpoint for iteration {iteration}; it has {sorted(checkpoints)}")
    return checkpoints[iteration]


def save_checkpoint(path: Path, content: dict) -> None:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(content, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Load tensors and plain data only (weights_only=True): never unpickle code from a file."""
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises several types for corrupt files
        raise RunDirError(f"cannot read checkpoint {path}: {error}") from None
