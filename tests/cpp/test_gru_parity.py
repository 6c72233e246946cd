"""The C++ GRU evaluator (gru_eval) against the trained torch actor on an exported GRU bundle."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from simreal.cli import main
from tests.policies.test_gru_policy import actor_actions, load_gru_policy, train_gru_run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MLP = ROOT / "policies" / "pretrained" / "quadruped-flat" / "bundle"
STEPS = 10_000


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run directory, exported bundle) of a tiny but really trained GRU run."""
    run_dir = train_gru_run(tmp_path_factory.mktemp("gru_cpp") / "run", seed=5)
    bundle = run_dir.parent / "bundle"
    assert main(["export", "--run-dir", str(run_dir), "--out", str(bundle)]) == 0
    return run_dir, bundle


def _gru_eval(build: Path, weights: Path, activation: str, inputs: Path, resets: Path, outputs: Path):
    command = [str(build / "gru_eval"), str(weights), activation, str(inputs), str(resets), str(outputs)]
    return subprocess.run(command, capture_output=True, text=True)


def _episodes(steps: int, seed: int) -> np.ndarray:
    """Reset flags of back-to-back episodes of 1..400 ticks (the first tick always starts one)."""
    rng = np.random.default_rng(seed)
    resets = np.zeros(steps, dtype=np.uint8)
    start = 0
    while start < steps:
        resets[start] = 1
        start += int(rng.integers(1, 401))
    return resets


def test_cpp_gru_matches_the_torch_actor_over_sequences_with_resets(build, gru_run, tmp_path):
    run_dir, bundle = gru_run
    spec = yaml.safe_load((bundle / "deploy.yaml").read_text())
    generator = torch.Generator().manual_seed(11)
    observations = torch.randn(STEPS, spec["network"]["input_dim"], generator=generator) * 2.0
    resets = _episodes(STEPS, seed=11)
    assert 30 < int(resets.sum()) < 100
    observations.numpy().astype(np.float32).tofile(tmp_path / "inputs.f32")
    resets.tofile(tmp_path / "resets.u8")
    result = _gru_eval(
        build,
        bundle / "policy.safetensors",
        spec["network"]["activation"],
        tmp_path / "inputs.f32",
        tmp_path / "resets.u8",
        tmp_path / "outputs.f32",
    )
    assert result.returncode == 0, result.stderr
    assert f"sha256 {spec['sha256']}" in result.stdout and f"rows {STEPS}" in result.stdout
    cpp = np.fromfile(tmp_path / "outputs.f32", dtype=np.float32).reshape(STEPS, 12)
    expected = actor_actions(load_gru_policy(run_dir), observations, resets.astype(bool))
    difference = np.abs(cpp - expected).max()
    print(f"C++ GRU vs torch actor, 10,000 random observations with resets: max abs diff {difference:.3g}")
    assert difference <= 1e-5
    # the resets are honoured: one fewer reset changes the episode that follows it
    second = int(np.flatnonzero(resets)[1])
    resets[second] = 0
    resets.tofile(tmp_path / "resets.u8")
    result = _gru_eval(
        build,
        bundle / "policy.safetensors",
        "elu",
        tmp_path / "inputs.f32",
        tmp_path / "resets.u8",
        tmp_path / "outputs.f32",
    )
    assert result.returncode == 0, result.stderr
    merged = np.fromfile(tmp_path / "outputs.f32", dtype=np.float32).reshape(STEPS, 12)
    assert np.abs(merged[:second] - cpp[:second]).max() == 0.0
    assert np.abs(merged[second] - cpp[second]).max() > 1e-3


def test_gru_eval_refuses_an_mlp_bundle_and_mismatched_resets(build, gru_run, tmp_path):
    _, bundle = gru_run
    np.zeros((3, 45), dtype=np.float32).tofile(tmp_path / "in.f32")
    np.ones(3, dtype=np.uint8).tofile(tmp_path / "resets.u8")
    mlp = _gru_eval(
        build, SHIPPED_MLP / "policy.safetensors", "elu", tmp_path / "in.f32", tmp_path / "resets.u8", tmp_path / "o"
    )
    assert mlp.returncode == 1 and "gru_eval: error: tensor 'gru.0.weight_ih': not found" in mlp.stderr
    np.ones(2, dtype=np.uint8).tofile(tmp_path / "resets.u8")
    short = _gru_eval(
        build, bundle / "policy.safetensors", "elu", tmp_path / "in.f32", tmp_path / "resets.u8", tmp_path / "o"
    )
    assert short.returncode == 1 and "resets hold 2 bytes for 3 input rows" in short.stderr
