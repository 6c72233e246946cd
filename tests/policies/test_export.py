"""`simreal export`: the bundle of DESIGN.md §4, parity of its network and ONNX, refusal of bad bundles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from safetensors.numpy import load_file

from policies.bundle import BundleError, load_bundle
from policies.export import folded_layers, folded_network
from policies.inference import load_policy
from policies.rsl_rl_env import as_tensordict
from sim.vec_env import LocomotionEnv
from simreal.cli import main
from tests.conftest import in_float64, small_config

PRETRAINED = Path(__file__).resolve().parents[2] / "policies" / "pretrained" / "quadruped-flat"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "quadruped"
    assert main(["export", "--run-dir", str(PRETRAINED), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def policy():
    env = LocomotionEnv(small_config(num_envs=1), seed=0)
    return load_policy(PRETRAINED, None, env.get_observations(), 12)


def _random_observations(count: int, dim: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(count, dim, generator=generator) * 2.0


def test_bundle_holds_the_design_fields(bundle):
    spec = load_bundle(bundle)
    assert spec["joint_names"][0] == "FR_hip" and spec["default_joint_pos"]["FR_thigh"] == 0.8
    assert spec["action"] == {"type": "joint_position_offset", "scale": 0.25, "clip": 100.0}
    assert spec["control_dt"] == pytest.approx(0.02)
    assert [t["name"] for t in spec["observation"]["terms"]][:2] == ["base_ang_vel", "projected_gravity"]
    assert spec["network"]["input_dim"] == 45 and spec["network"]["hidden_sizes"] == [256, 128, 128]
    assert spec["safety"]["torque_limit_nm"]["FR_calf"] == 35.5
    assert spec["provenance"]["task"] == "quadruped-flat" and spec["provenance"]["iteration"] == 699
    assert spec["provenance"]["randomization"]["foot_friction"]["low"] == 0.3
    assert set(p.name for p in bundle.iterdir()) == {"deploy.yaml", "policy.safetensors", "policy.onnx"}


def test_folded_network_matches_the_trained_actor(policy):
    network = in_float64(folded_network(folded_layers(policy), "elu"))
    obs = _random_observations(10_000, 45).double()
    with torch.no_grad():
        expected = in_float64(policy.actor)(as_tensordict({"policy": obs}))
        got = network(obs)
    assert float((expected - got).abs().max()) <= 1e-5


def test_safetensors_weights_rebuild_the_network(bundle, policy):
    tensors = load_file(str(bundle / "policy.safetensors"))
    x = _random_observations(1000, 45).numpy().astype(np.float64)
    for index in range(4):
        x = x @ tensors[f"layers.{index}.weight"].T.astype(np.float64) + tensors[f"layers.{index}.bias"]
        if index < 3:
            x = np.where(x > 0, x, np.expm1(x))  # ELU
    with torch.no_grad():
        expected = in_float64(policy.actor)(as_tensordict({"policy": _random_observations(1000, 45).double()})).numpy()
    assert np.abs(x - expected).max() <= 1e-5


def test_onnx_runtime_matches_torch_and_carries_the_spec(bundle, policy):
    session = onnxruntime.InferenceSession(str(bundle / "policy.onnx"), providers=["CPUExecutionProvider"])
    obs = _random_observations(10_000, 45)
    got = session.run(["action"], {"obs": obs.numpy()})[0]
    with torch.no_grad():
        expected = policy.actor(as_tensordict({"policy": obs})).numpy()
    difference = np.abs(got - expected).max()
    print(f"ONNX Runtime vs torch actor, 10,000 random observations: max abs diff {difference:.3g}")
    assert difference <= 1e-5
    metadata = {p.key: p.value for p in onnx.load(str(bundle / "policy.onnx")).metadata_props}
    assert metadata["deploy_yaml"] == (bundle / "deploy.yaml").read_text()


def _tampered(bundle: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    spec = yaml.safe_load((copy / "deploy.yaml").read_text())
    edit(spec)
    (copy / "deploy.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("safety"), "missing field\\(s\\) safety"),
        (lambda s: s["kp"].pop("RL_calf"), "kp: missing \\['RL_calf'\\]"),
        (
            lambda s: s["observation"]["terms"].append({"name": "base_height", "dim": 1, "scale": 1, "clip": 1}),
            "unknown term 'base_height'",
        ),
        (lambda s: s["observation"]["terms"][3].update(dim=11), "joint_pos_rel\\): dim 11 != 12"),
        (lambda s: s.update(sha256="0" * 64), "sha256 does not match"),
        (lambda s: s["action"].update(type="torque"), "action.type 'torque'"),
    ],
)
def test_bad_bundles_are_refused_naming_the_field(bundle, tmp_path, edit, message):
    with pytest.raises(BundleError, match=message):
        load_bundle(_tampered(bundle, tmp_path, edit))


def test_changed_weights_fail_the_hash(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "policy.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "policy.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 does not match"):
        load_bundle(copy)


def test_shipped_bundle_is_valid_and_current():
    spec = load_bundle(PRETRAINED / "bundle")
    assert spec["provenance"]["checkpoint"] == "model_699.pt"
