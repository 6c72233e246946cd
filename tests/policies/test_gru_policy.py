"""Recurrent (GRU) actors end to end: tiny real training, export to the bundle contract, parity, validation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from safetensors.numpy import load_file, save_file

from policies.bundle import BundleError, load_bundle, sha256_of
from policies.config import TrainConfig, rsl_rl_config
from policies.evaluate import evaluate_run
from policies.export import FoldedGruPolicy, folded_network
from policies.inference import LoadedPolicy, load_policy
from policies.run_dir import find_checkpoint, load_checkpoint
from sim.config_io import ConfigError
from sim.vec_env import LocomotionEnv
from simreal.cli import main
from tests.conftest import small_config

pytestmark = pytest.mark.slow
HIDDEN, LAYERS, HEAD = 32, 2, [32]
GRU_PPO = {
    "actor_rnn_type": "gru",
    "actor_rnn_hidden_dim": HIDDEN,
    "actor_rnn_num_layers": LAYERS,
    "actor_hidden_dims": HEAD,
    "critic_hidden_dims": [64, 64],
}


def train_gru_run(run_dir: Path, seed: int = 3) -> Path:
    """Two PPO iterations of a GRU actor (MLP critic) on the real quadruped task, through the CLI."""
    config = run_dir.parent / f"{run_dir.name}.yaml"
    config.write_text(yaml.safe_dump({"train": {"ppo": GRU_PPO}}))
    argv = ["train", "--task", "quadruped-flat", "--num-envs", "16", "--set", "num_threads=2"]
    argv += ["--max-iterations", "2", "--seed", str(seed), "--config", str(config), "--run-dir", str(run_dir)]
    assert main(argv) == 0
    return run_dir


def load_gru_policy(run_dir: Path) -> LoadedPolicy:
    env = LocomotionEnv(small_config(num_envs=1), seed=0)
    return load_policy(run_dir, None, env.get_observations(), 12)


def bundle_network(bundle: Path) -> FoldedGruPolicy:
    """torch.nn.GRU + head rebuilt from the bundle's safetensors alone (names and layout of the contract)."""
    spec = load_bundle(bundle)["network"]
    tensors = {name: torch.from_numpy(value) for name, value in load_file(str(bundle / "policy.safetensors")).items()}
    gru = torch.nn.GRU(spec["input_dim"], spec["rnn_hidden_dim"], spec["rnn_num_layers"])
    gru.load_state_dict(
        {
            f"{kind}_l{layer}": tensors[f"gru.{layer}.{kind}"]
            for layer in range(spec["rnn_num_layers"])
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
    )
    head = []
    for index in range(len(spec["hidden_sizes"]) + 1):
        weight, bias = tensors[f"layers.{index}.weight"], tensors[f"layers.{index}.bias"]
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        layer.load_state_dict({"weight": weight, "bias": bias})
        head.append(layer)
    return FoldedGruPolicy(gru, folded_network(head, spec["activation"])).eval()


def random_sequence(steps: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(steps, 45, generator=generator) * 2.0


def actor_actions(policy: LoadedPolicy, obs: torch.Tensor, resets: np.ndarray) -> np.ndarray:
    """The trained actor stepped one tick at a time (batch 1), its hidden state zeroed where resets[t]."""
    policy.reset()
    actions = []
    for step in range(obs.shape[0]):
        if resets[step]:
            policy.reset(torch.ones(1))
        actions.append(policy({"policy": obs[step : step + 1]})[0].numpy())
    return np.stack(actions)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_gru_run(tmp_path_factory.mktemp("gru") / "run")


@pytest.fixture(scope="module")
def bundle(run_dir) -> Path:
    out = run_dir.parent / "bundle"
    assert main(["export", "--run-dir", str(run_dir), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def policy(run_dir) -> LoadedPolicy:
    return load_gru_policy(run_dir)


def test_training_updates_a_gru_actor_beside_an_mlp_critic(run_dir):
    first = load_checkpoint(find_checkpoint(run_dir, 0))
    last = load_checkpoint(find_checkpoint(run_dir))
    actor, critic = last["actor_state_dict"], last["critic_state_dict"]
    assert tuple(actor["rnn.rnn.weight_ih_l0"].shape) == (3 * HIDDEN, 45)
    assert tuple(actor["rnn.rnn.weight_hh_l1"].shape) == (3 * HIDDEN, HIDDEN)
    assert tuple(actor["mlp.0.weight"].shape) == (HEAD[0], HIDDEN)
    assert not any(key.startswith("rnn.") for key in critic)
    # the second PPO update moved every GRU layer: gradients reach the recurrent weights
    for key in ("rnn.rnn.weight_ih_l0", "rnn.rnn.weight_hh_l0", "rnn.rnn.weight_hh_l1"):
        assert not torch.equal(first["actor_state_dict"][key], actor[key]), key
    # a fitted normalizer, so the export really folds something
    assert float(actor["obs_normalizer._mean"].abs().max()) > 0.01


def test_bundle_follows_the_gru_contract(bundle):
    spec = load_bundle(bundle)
    assert spec["network"] == {
        "type": "gru",
        "input_dim": 45,
        "output_dim": 12,
        "hidden_sizes": HEAD,
        "activation": "elu",
        "rnn_hidden_dim": HIDDEN,
        "rnn_num_layers": LAYERS,
        "normalizer": "folded into gru.0.weight_ih",
    }
    tensors = load_file(str(bundle / "policy.safetensors"))
    expected = {
        f"gru.{layer}.{kind}" for layer in range(LAYERS) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    expected |= {f"layers.{index}.{kind}" for index in range(2) for kind in ("weight", "bias")}
    assert set(tensors) == expected
    assert tensors["gru.0.weight_ih"].shape == (3 * HIDDEN, 45) and tensors["gru.1.weight_ih"].shape == (96, HIDDEN)
    assert all(value.dtype == np.float32 for value in tensors.values())
    model = onnx.load(str(bundle / "policy.onnx"))
    assert {p.key: p.value for p in model.metadata_props}["deploy_yaml"] == (bundle / "deploy.yaml").read_text()


def test_bundle_gru_in_torch_matches_the_trained_actor(bundle, policy):
    """The folded weights from policy.safetensors, stepped in torch, equal the actor (normalizer inside)."""
    network = bundle_network(bundle)
    obs = random_sequence(300, seed=1)
    resets = np.zeros(300, dtype=bool)
    resets[[0, 140]] = True
    expected = actor_actions(policy, obs, resets)
    hidden = torch.zeros(LAYERS, 1, HIDDEN)
    got = []
    with torch.no_grad():
        for step in range(300):
            if resets[step]:
                hidden = torch.zeros_like(hidden)
            actions, hidden = network(obs[step : step + 1], hidden)
            got.append(actions[0].numpy())
    assert np.abs(np.stack(got) - expected).max() <= 1e-5
    assert np.abs(expected[140] - expected[0]).max() > 1e-3  # different inputs: the check is not vacuous


def test_onnx_runtime_matches_torch_over_a_sequence_with_a_reset(bundle, policy):
    session = onnxruntime.InferenceSession(str(bundle / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("obs", [1, 45]), ("h_in", [LAYERS, 1, HIDDEN])]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("actions", [1, 12]), ("h_out", [LAYERS, 1, HIDDEN])]
    obs = random_sequence(250, seed=2)
    resets = np.zeros(250, dtype=bool)
    resets[[0, 125]] = True
    expected = actor_actions(policy, obs, resets)
    hidden = np.zeros((LAYERS, 1, HIDDEN), dtype=np.float32)
    got = []
    for step in range(250):
        if resets[step]:
            hidden = np.zeros_like(hidden)
        actions, hidden = session.run(["actions", "h_out"], {"obs": obs[step : step + 1].numpy(), "h_in": hidden})
        got.append(actions[0])
    assert np.abs(np.stack(got) - expected).max() <= 1e-5
    # the final hidden state agrees too, and the reset mattered: without it the second half differs
    assert np.abs(hidden - policy.actor.get_hidden_state().numpy()).max() <= 1e-5
    no_reset = actor_actions(policy, obs, np.arange(250) == 0)
    assert np.abs(no_reset[125:] - expected[125:]).max() > 1e-3


def test_reset_clears_only_the_finished_environments(policy):
    obs = random_sequence(3 * 20, seed=4).reshape(20, 3, 45)
    policy.reset()
    for step in range(19):
        policy({"policy": obs[step]})
    before = policy.actor.get_hidden_state().clone()
    policy.reset(torch.tensor([0, 1, 0]))
    after = policy.actor.get_hidden_state()
    assert torch.equal(after[:, [0, 2]], before[:, [0, 2]]) and float(before[:, 1].abs().max()) > 0
    assert torch.equal(after[:, 1], torch.zeros_like(after[:, 1]))
    actions = policy({"policy": obs[19]})
    policy.reset()
    fresh = policy({"policy": obs[19]})
    assert torch.allclose(actions[1], fresh[1], atol=1e-6, rtol=0)  # env 1 starts from zeros again
    assert not torch.allclose(actions[0], fresh[0], atol=1e-3, rtol=0)  # env 0 kept its memory


def test_eval_resets_the_hidden_state_of_finished_episodes(run_dir, monkeypatch):
    calls: list[int] = []
    original = LoadedPolicy.reset

    def recording_reset(self, dones=None):
        calls.append(int(torch.as_tensor(dones).sum()) if dones is not None else -1)
        original(self, dones)

    monkeypatch.setattr(LoadedPolicy, "reset", recording_reset)
    metrics = evaluate_run(run_dir, None, episodes=4, dynamics="nominal", seed=0)
    assert metrics["num_episodes"] == 4
    assert calls and min(calls) >= 0 and sum(calls) >= 4  # every finished episode reset its env's state


def _edited(bundle: Path, tmp_path: Path, edit_spec=None, edit_tensors=None) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    spec = yaml.safe_load((copy / "deploy.yaml").read_text())
    if edit_tensors is not None:
        tensors = load_file(str(copy / "policy.safetensors"))
        edit_tensors(tensors)
        save_file(tensors, str(copy / "policy.safetensors"))
        spec["sha256"] = sha256_of(copy / "policy.safetensors")  # a consistent hash: only the content is wrong
    if edit_spec is not None:
        edit_spec(spec)
    (copy / "deploy.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return copy


@pytest.mark.parametrize(
    ("edit_spec", "edit_tensors", "message"),
    [
        (lambda s: s["network"].update(rnn_hidden_dim=16), None, "'gru.0.weight_ih'.*network.rnn_hidden_dim 16"),
        (None, lambda t: t.pop("gru.0.weight_hh"), "lacks tensor 'gru.0.weight_hh'"),
        (lambda s: s["network"].update(rnn_num_layers=3), None, "lacks tensor 'gru.2.weight_ih'.*rnn_num_layers 3"),
        (lambda s: s["network"].update(rnn_num_layers=1), None, "tensor\\(s\\) \\['gru.1.bias_hh'"),
        (lambda s: s["network"].pop("rnn_hidden_dim"), None, "network lacks rnn_hidden_dim"),
        (lambda s: s["network"].update(rnn_num_layers=0), None, "network.rnn_num_layers must be a positive integer"),
        (lambda s: s["network"].update(type="lstm"), None, "network.type 'lstm' is not supported"),
        (None, lambda t: t.update({"gru.1.bias_ih": t["gru.1.bias_ih"][:-1]}), "'gru.1.bias_ih' is \\(95,\\)"),
    ],
)
def test_bad_gru_bundles_are_refused_naming_the_field(bundle, tmp_path, edit_spec, edit_tensors, message):
    with pytest.raises(BundleError, match=message):
        load_bundle(_edited(bundle, tmp_path, edit_spec, edit_tensors))


def test_unknown_rnn_type_is_refused_naming_the_field():
    config = TrainConfig()
    config.ppo.actor_rnn_type = "lstm"
    with pytest.raises(ConfigError, match=re.escape("train.ppo.actor_rnn_type 'lstm'")):
        rsl_rl_config(config, "run")
    config.ppo.actor_rnn_type = "gru"
    config.ppo.actor_rnn_hidden_dim = 0
    with pytest.raises(ConfigError, match=re.escape("train.ppo.actor_rnn_hidden_dim must be a positive integer")):
        rsl_rl_config(config, "run")


def test_mlp_actor_config_is_unchanged():
    actor = rsl_rl_config(TrainConfig(), "run")["actor"]
    assert actor["class_name"] == "MLPModel" and not any(key.startswith("rnn") for key in actor)
