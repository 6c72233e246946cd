"""Training and evaluation on the MuJoCo Warp backend (on Warp's CPU device here; the GPU runs the same code)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def _simreal(*args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simreal", *args], capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def warp_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run_dir = tmp_path_factory.mktemp("warp") / "run"
    out = _simreal(
        "train",
        "--task",
        "quadruped-flat",
        "--backend",
        "warp",
        "--device",
        "cpu",
        "--num-envs",
        "64",
        "--max-iterations",
        "3",
        "--run-dir",
        str(run_dir),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return run_dir, out


def test_train_runs_end_to_end_on_warp_and_reports_the_compile_time(warp_run):
    run_dir, out = warp_run
    match = re.search(
        r"simulation: warp on cpu \(Warp [\d.]+\), 64 envs, kernels compiled or loaded in ([\d.]+) s", out.stdout
    )
    assert match, out.stdout[-2000:]
    print(f"warp startup (compile or cache load): {match.group(1)} s")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"]["backend"]["name"] == "warp" and config["env"]["backend"]["device"] == "cpu"
    with (run_dir / "progress.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["iteration"]) for row in rows] == [0, 1, 2]
    assert all(float(row["steps_per_s"]) > 0 for row in rows)


@pytest.mark.parametrize("backend", ["batch", "warp"])
def test_a_warp_trained_run_evaluates_on_either_backend(warp_run, backend):
    run_dir, _ = warp_run
    out = _simreal("eval", "--run-dir", str(run_dir), "--episodes", "2", "--backend", backend, "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["num_episodes"] == 2 and 0.0 <= result["fall_rate"] <= 1.0
