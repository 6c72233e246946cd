"""`simreal export`: a trained run to a self-describing deploy bundle (DESIGN.md §4).

The observation normalizer is folded into the first layer (an MLP's layers.0,
a GRU's gru.0.weight_ih / bias_ih), so the bundle's network maps the raw
(scaled, clipped) observation straight to the action.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.numpy import save_file

from policies.bundle import DEPLOY_YAML, FORMAT_VERSION, ONNX, WEIGHTS, BundleError, load_bundle, sha256_of
from policies.inference import LoadedPolicy, open_run
from policies.run_dir import RunConfig, load_run_config
from sim.terms.observations import SIMULATION_ONLY_TERMS


@dataclass
class SafetyDefaults:
    """Robot-side safety values that training does not define."""

    state_timeout_s: float = 0.1  # stale /joint_states or /imu/data for this long -> DAMPING
    damping_kd: float = 2.0  # N m s/rad in DAMPING (kp = 0)


def _check_deployable(config: RunConfig, run_dir: Path) -> None:
    sim_only = [t.name for t in config.env.observations.policy if t.name in SIMULATION_ONLY_TERMS]
    if sim_only:
        raise BundleError(
            f"{run_dir}: task {config.env.task} observes {sim_only}, which have no robot source in the C++ core "
            "yet (simulation only): it trains and evaluates, but does not export to a deploy bundle"
        )
    if config.train.ppo.actor_output != "absolute":
        raise BundleError(
            f"{run_dir}: its actor outputs {config.train.ppo.actor_output!r} actions (a step from the last action, "
            "or an end-effector delta for IK); the C++ core evaluates joint-target actors only"
        )


def folded_layers(policy: LoadedPolicy) -> list[torch.nn.Linear]:
    """The actor's linear layers with the observation normalizer folded into the first one."""
    layers = head_layers(policy)
    fold = _normalizer_fold(policy.actor)
    if fold is None:
        return layers
    mean, inv_std = fold
    first = layers[0]
    with torch.no_grad():
        weight = first.weight.double()
        bias = first.bias.double()
        first.weight.copy_((weight * inv_std).float())
        first.bias.copy_((bias - weight @ (mean * inv_std)).float())
    return layers


def head_layers(policy: LoadedPolicy) -> list[torch.nn.Linear]:
    """Copies of the actor's MLP linear layers, unchanged."""
    linears = [module for module in policy.actor.mlp if isinstance(module, torch.nn.Linear)]
    layers = [torch.nn.Linear(m.in_features, m.out_features) for m in linears]
    for source, target in zip(linears, layers, strict=True):
        target.load_state_dict(source.state_dict())
    return layers


def folded_gru(policy: LoadedPolicy) -> torch.nn.GRU:
    """A copy of a recurrent actor's GRU with the observation normalizer folded into weight_ih_l0 / bias_ih_l0.

    The input enters every gate (r, z, n) only through W_ih x + b_ih, outside the
    reset gate's product, so an affine map of x folds into that term exactly.
    """
    source: torch.nn.GRU = policy.actor.rnn.rnn
    gru = torch.nn.GRU(source.input_size, source.hidden_size, source.num_layers)
    gru.load_state_dict(source.state_dict())
    fold = _normalizer_fold(policy.actor)
    if fold is not None:
        mean, inv_std = fold
        with torch.no_grad():
            weight = source.weight_ih_l0.double()
            gru.weight_ih_l0.copy_((weight * inv_std).float())
            gru.bias_ih_l0.copy_((source.bias_ih_l0.double() - weight @ (mean * inv_std)).float())
    return gru.eval()


def _normalizer_fold(actor: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(mean, 1 / (std + eps)) in float64 of the actor's observation normalizer, None without one."""
    normalizer = actor.obs_normalizer
    if isinstance(normalizer, torch.nn.Identity):
        return None
    mean = normalizer._mean.squeeze(0).double()
    inv_std = 1.0 / (normalizer._std.squeeze(0).double() + normalizer.eps)
    return mean, inv_std


def folded_network(layers: list[torch.nn.Linear], activation: str) -> torch.nn.Sequential:
    act = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    modules: list[torch.nn.Module] = []
    for index, layer in enumerate(layers):
        modules.append(layer)
        if index < len(layers) - 1:
            modules.append(act())
    return torch.nn.Sequential(*modules).eval()


class FoldedGruPolicy(torch.nn.Module):
    """One control tick of a GRU bundle: (obs [B, in], h_in [L, B, H]) -> (actions [B, out], h_out [L, B, H])."""

    def __init__(self, gru: torch.nn.GRU, head: torch.nn.Sequential) -> None:
        super().__init__()
        self.gru = gru
        self.head = head

    def forward(self, obs: torch.Tensor, h_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_out = self.gru(obs.unsqueeze(0), h_in)
        return self.head(out.squeeze(0)), h_out


def folded_gru_network(policy: LoadedPolicy, activation: str) -> FoldedGruPolicy:
    """The bundle's GRU policy in torch: folded GRU, then the MLP head."""
    return FoldedGruPolicy(folded_gru(policy), folded_network(head_layers(policy), activation)).eval()


def export_run(run_dir: Path, iteration: int | None, out: Path, safety: SafetyDefaults | None = None) -> Path:
    """Write deploy.yaml, policy.safetensors and policy.onnx into `out` (replaced atomically)."""
    safety = safety or SafetyDefaults()
    _check_deployable(load_run_config(run_dir), run_dir)  # before building an env and loading weights
    # randomized: the bundle's provenance records the ranges the policy was trained on
    env, policy = open_run(run_dir, iteration, num_envs=1, dynamics="randomized", seed=0)
    config = policy.config
    spec = env.spec
    activation = config.train.ppo.activation
    if policy.is_recurrent:
        gru = folded_gru(policy)
        layers = head_layers(policy)
        tensors = {**_gru_tensors(gru), **_layer_tensors(layers)}
        network_spec = _gru_network_spec(gru, layers, activation)
        metadata = {"format": "simreal-gru"}
    else:
        layers = folded_layers(policy)
        tensors = _layer_tensors(layers)
        network_spec = _mlp_network_spec(layers, activation)
        metadata = {"format": "simreal-mlp"}

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:
        save_file(tensors, str(staging / WEIGHTS), metadata=metadata)
        deploy = _deploy_spec(env, spec, config, policy, network_spec, safety, run_dir)
        deploy["sha256"] = sha256_of(staging / WEIGHTS)
        text = yaml.safe_dump(deploy, sort_keys=False)
        (staging / DEPLOY_YAML).write_text(text)
        if policy.is_recurrent:
            _export_gru_onnx(FoldedGruPolicy(gru, folded_network(layers, activation)).eval(), staging / ONNX, text)
        else:
            _export_onnx(folded_network(layers, activation), layers[0].in_features, staging / ONNX, text)
        load_bundle(staging)  # never ship a bundle our own validator refuses
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def _layer_tensors(layers: list[torch.nn.Linear]) -> dict[str, np.ndarray]:
    tensors = {}
    for index, layer in enumerate(layers):
        tensors[f"layers.{index}.weight"] = layer.weight.detach().numpy().astype(np.float32)
        tensors[f"layers.{index}.bias"] = layer.bias.detach().numpy().astype(np.float32)
    return tensors


def _gru_tensors(gru: torch.nn.GRU) -> dict[str, np.ndarray]:
    """gru.{l}.{weight_ih,weight_hh,bias_ih,bias_hh}: torch's weight_ih_l{l} etc., gate rows r, z, n."""
    tensors = {}
    for layer in range(gru.num_layers):
        for field in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            value = getattr(gru, f"{field}_l{layer}")
            tensors[f"gru.{layer}.{field}"] = value.detach().numpy().astype(np.float32)
    return tensors


def _mlp_network_spec(layers: list[torch.nn.Linear], activation: str) -> dict:
    return {
        "type": "mlp",
        "input_dim": layers[0].in_features,
        "output_dim": layers[-1].out_features,
        "hidden_sizes": [layer.out_features for layer in layers[:-1]],
        "activation": activation,
        "normalizer": "folded into layers.0",
    }


def _gru_network_spec(gru: torch.nn.GRU, layers: list[torch.nn.Linear], activation: str) -> dict:
    return {
        "type": "gru",
        "input_dim": gru.input_size,
        "output_dim": layers[-1].out_features,
        "hidden_sizes": [layer.out_features for layer in layers[:-1]],
        "activation": activation,
        "rnn_hidden_dim": gru.hidden_size,
        "rnn_num_layers": gru.num_layers,
        "normalizer": "folded into gru.0.weight_ih",
    }


def _deploy_spec(env, spec, config, policy: LoadedPolicy, network: dict, safety: SafetyDefaults, run_dir: Path) -> dict:
    names = list(spec.joint_names)
    run = yaml.safe_load((run_dir / "run.yaml").read_text()) if (run_dir / "run.yaml").is_file() else {}

    def by_joint(values) -> dict:
        return {name: float(value) for name, value in zip(names, values, strict=True)}

    limits = {name: [float(low), float(high)] for name, (low, high) in zip(names, env.joint_range, strict=True)}
    return {
        "format_version": FORMAT_VERSION,
        "robot": spec.name,
        "joint_names": names,
        "default_joint_pos": by_joint(spec.default_joint_pos),
        "kp": by_joint(spec.kp),
        "kd": by_joint(spec.kd),
        "action": {"type": "joint_position_offset", "scale": spec.action_scale, "clip": config.env.action_clip},
        "control_dt": spec.control_dt,
        "observation": {
            "terms": [
                {"name": name, "dim": dim, "scale": scale, "clip": clip}
                for name, dim, scale, clip in env.observation_layout()
            ],
            "history": config.env.observations.history,
        },
        "network": network,
        "safety": {
            "joint_pos_limits_rad": limits,
            "velocity_limit_rad_s": by_joint(spec.velocity_limit),
            "torque_limit_nm": by_joint(spec.effort_limit),
            "tilt_limit_rad": config.env.terminations.max_tilt_rad,
            "state_timeout_s": safety.state_timeout_s,
            "standing_kp": by_joint(spec.kp),
            "standing_kd": by_joint(spec.kd),
            "damping_kd": safety.damping_kd,
        },
        "provenance": {
            "task": config.env.task,
            "run": run_dir.name,
            "checkpoint": policy.checkpoint.name,
            "iteration": policy.iteration,
            "git_commit": run.get("git_commit", "unknown"),
            "trained": run.get("date", "unknown"),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "randomization": env.randomizer.ranges(),
        },
    }


def _export_onnx(network: torch.nn.Sequential, input_dim: int, path: Path, deploy_yaml: str) -> None:
    example = torch.zeros(1, input_dim)
    torch.onnx.export(
        network,
        (example,),
        str(path),
        input_names=["obs"],
        output_names=["action"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=18,
        dynamo=True,
        verbose=False,
    )
    _finish_onnx(path, deploy_yaml)


def _export_gru_onnx(network: FoldedGruPolicy, path: Path, deploy_yaml: str) -> None:
    """One control tick with the hidden state passed in and out: batch 1, as on the robot."""
    gru = network.gru
    example = (torch.zeros(1, gru.input_size), torch.zeros(gru.num_layers, 1, gru.hidden_size))
    with warnings.catch_warnings():
        # nn.GRU re-caches its _flat_weights while being traced; the exported weights are the module's own
        warnings.filterwarnings("ignore", message="The tensor attributes self.gru._flat_weights", category=UserWarning)
        torch.onnx.export(
            network,
            example,
            str(path),
            input_names=["obs", "h_in"],
            output_names=["actions", "h_out"],
            opset_version=18,
            dynamo=True,
            verbose=False,
        )
    _finish_onnx(path, deploy_yaml)


def _finish_onnx(path: Path, deploy_yaml: str) -> None:
    """Attach deploy.yaml as metadata_props['deploy_yaml'] and make the model one self-contained file."""
    import onnx

    model = onnx.load(str(path))  # pulls in the weights the exporter may have written beside it
    entry = model.metadata_props.add()
    entry.key, entry.value = "deploy_yaml", deploy_yaml
    onnx.save(model, str(path), save_as_external_data=False)  # one self-contained file
    for extra in path.parent.glob(path.name + ".*"):
        extra.unlink()
