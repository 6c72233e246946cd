"""The C++ core: its own ctest suite, and parity of its MLP with the torch policy on the shipped bundle."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch
import yaml

from policies.inference import load_policy
from policies.rsl_rl_env import as_tensordict
from sim.vec_env import LocomotionEnv
from tests.conftest import in_float64, small_config

ROOT = Path(__file__).resolve().parents[2]
PRETRAINED = ROOT / "policies" / "pretrained" / "quadruped-flat"


def test_ctest_suite_passes(build):
    tests = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"], capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "100% tests passed" in tests.stdout


def test_cpp_mlp_matches_torch_policy_on_the_shipped_bundle(build, tmp_path):
    bundle = PRETRAINED / "bundle"
    spec = yaml.safe_load((bundle / "deploy.yaml").read_text())
    env = LocomotionEnv(small_config(num_envs=1), seed=0)
    policy = load_policy(PRETRAINED, None, env.get_observations(), 12)
    generator = torch.Generator().manual_seed(1)
    observations = torch.randn(10_000, spec["network"]["input_dim"], generator=generator) * 2.0
    observations.numpy().astype(np.float32).tofile(tmp_path / "inputs.f32")
    result = subprocess.run(
        [
            str(build / "mlp_eval"),
            str(bundle / "policy.safetensors"),
            spec["network"]["activation"],
            str(tmp_path / "inputs.f32"),
            str(tmp_path / "outputs.f32"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert f"sha256 {spec['sha256']}" in result.stdout  # the C++ hash agrees with the exporter's
    cpp = np.fromfile(tmp_path / "outputs.f32", dtype=np.float32).reshape(10_000, 12)
    with torch.no_grad():
        expected = in_float64(policy.actor)(as_tensordict({"policy": observations.double()})).numpy()
    difference = np.abs(cpp - expected).max()
    print(f"C++ MLP vs the torch actor in float64, 10,000 random observations: max abs diff {difference:.3g}")
    assert difference <= 1e-5


def test_cpp_tool_refuses_a_corrupt_weights_file(build, tmp_path):
    broken = tmp_path / "policy.safetensors"
    data = (PRETRAINED / "bundle" / "policy.safetensors").read_bytes()
    broken.write_bytes(data[:1000])  # truncated mid-tensor
    (tmp_path / "in.f32").write_bytes(b"")
    result = subprocess.run(
        [str(build / "mlp_eval"), str(broken), "elu", str(tmp_path / "in.f32"), str(tmp_path / "out.f32")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "mlp_eval: error:" in result.stderr


def test_cpp_observation_builder_matches_the_simulator(build, tmp_path):
    """Recorded states of the quadruped task through obs_eval equal the env's own observations (noise off)."""
    cfg = small_config(num_envs=4, randomized=False, noise=False)
    cfg.observations.history = 3
    env = LocomotionEnv(cfg, seed=3)
    names = list(env.spec.joint_names)
    driver_order = names[::-1]  # the robot reports joints in another order: matched by name
    to_driver = [names.index(name) for name in driver_order]
    config = [
        f"policy_joints {' '.join(names)}",
        f"driver_joints {' '.join(driver_order)}",
        "default " + " ".join(repr(float(v)) for v in env.spec.default_joint_pos),
        "history 3",
    ]
    config += [f"term {name} {scale!r} {clip!r}" for name, _, scale, clip in env.observation_layout()]
    (tmp_path / "config.txt").write_text("\n".join(config) + "\n")

    generator = torch.Generator().manual_seed(5)
    ticks: list[list[np.ndarray]] = [[] for _ in range(4)]
    expected: list[list[np.ndarray]] = [[] for _ in range(4)]
    fresh = np.ones(4, dtype=bool)
    obs, dones = env.get_observations(), torch.zeros(4)  # tick 0: the state after reset
    for step in range(25):
        if step > 0:
            obs, _, dones, _ = env.step(0.4 * torch.randn(4, 12, generator=generator))
        b, d = env.base_qpos, env.base_dof
        for i in range(4):
            joint_pos = env.qpos[i, env.qpos_ids][to_driver]
            joint_vel = env.qvel[i, env.dof_ids][to_driver]
            row = [
                [1.0 if fresh[i] or dones[i] else 0.0],
                env.qpos[i, b + 3 : b + 7],
                env.qvel[i, d + 3 : d + 6],
                env.commands[i].double().numpy(),
                joint_pos,
                joint_vel,
                env.actions[i].double().numpy(),
                np.zeros(7),
            ]
            ticks[i].append(np.concatenate([np.asarray(part, dtype=np.float64) for part in row]))
            expected[i].append(obs["policy"][i].numpy())
        fresh[:] = False
    np.concatenate([t for env_ticks in ticks for t in env_ticks]).tofile(tmp_path / "inputs.f64")
    result = subprocess.run(
        [
            str(build / "obs_eval"),
            str(tmp_path / "config.txt"),
            str(tmp_path / "inputs.f64"),
            str(tmp_path / "outputs.f32"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    cpp = np.fromfile(tmp_path / "outputs.f32", dtype=np.float32).reshape(4 * 25, -1)
    want = np.stack([e for env_expected in expected for e in env_expected])
    assert cpp.shape == want.shape == (100, 3 * 45)
    difference = np.abs(cpp - want).max()
    print(f"C++ observation builder vs simulator, 100 recorded ticks x 135 values: max abs diff {difference:.3g}")
    assert difference <= 1e-6
