"""`simreal export`: a trained run to a self-describing deploy bundle (DESIGN.md §4).

The observation normalizer is folded into the first layer, so the bundle's
network maps the raw (scaled, clipped) observation straight to the action.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.numpy import save_file

from policies.bundle import DEPLOY_YAML, FORMAT_VERSION, ONNX, WEIGHTS, load_bundle, sha256_of
from policies.inference import LoadedPolicy, open_run


@dataclass
class SafetyDefaults:
    """Robot-side safety values that training does not define."""

    state_timeout_s: float = 0.1  # stale /joint_states or /imu/data for this long -> DAMPING
    damping_kd: float = 2.0  # N m s/rad in DAMPING (kp = 0)


def folded_layers(policy: LoadedPolicy) -> list[torch.nn.Linear]:
    """The actor's linear layers with the observation normalizer folded into the first one."""
    actor = policy.actor
    linears = [module for module in actor.mlp if isinstance(module, torch.nn.Linear)]
    layers = [torch.nn.Linear(m.in_features, m.out_features) for m in linears]
    for source, target in zip(linears, layers, strict=True):
        target.load_state_dict(source.state_dict())
    normalizer = actor.obs_normalizer
    if isinstance(normalizer, torch.nn.Identity):
        return layers
    with torch.no_grad():
        mean = normalizer._mean.squeeze(0).double()
        inv_std = 1.0 / (normalizer._std.squeeze(0).double() + normalizer.eps)
        weight = linears[0].weight.double()
        layers[0].weight.copy_((weight * inv_std).float())
        layers[0].bias.copy_((linears[0].bias.double() - weight @ (mean * inv_std)).float())
    return layers


def folded_network(layers: list[torch.nn.Linear], activation: str) -> torch.nn.Sequential:
    act = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[activation]
    modules: list[torch.nn.Module] = []
    for index, layer in enumerate(layers):
        modules.append(layer)
        if index < len(layers) - 1:
            modules.append(act())
    return torch.nn.Sequential(*modules).eval()


def export_run(run_dir: Path, iteration: int | None, out: Path, safety: SafetyDefaults | None = None) -> Path:
    """Write deploy.yaml, policy.safetensors and policy.onnx into `out` (replaced atomically)."""
    safety = safety or SafetyDefaults()
    # randomized: the bundle's provenance records the ranges the policy was trained on
    env, policy = open_run(run_dir, iteration, num_envs=1, dynamics="randomized", seed=0)
    config = policy.config
    spec = env.spec
    activation = config.train.ppo.activation
    layers = folded_layers(policy)
    network = folded_network(layers, activation)

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:
        tensors = {}
        for index, layer in enumerate(layers):
            tensors[f"layers.{index}.weight"] = layer.weight.detach().numpy().astype(np.float32)
            tensors[f"layers.{index}.bias"] = layer.bias.detach().numpy().astype(np.float32)
        save_file(tensors, str(staging / WEIGHTS), metadata={"format": "simreal-mlp"})
        deploy = _deploy_spec(env, spec, config, policy, layers, activation, safety, run_dir)
        deploy["sha256"] = sha256_of(staging / WEIGHTS)
        text = yaml.safe_dump(deploy, sort_keys=False)
        (staging / DEPLOY_YAML).write_text(text)
        _export_onnx(network, layers[0].in_features, staging / ONNX, text)
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


def _deploy_spec(
    env, spec, config, policy: LoadedPolicy, layers, activation: str, safety: SafetyDefaults, run_dir: Path
) -> dict:
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
        "network": {
            "type": "mlp",
            "input_dim": layers[0].in_features,
            "output_dim": layers[-1].out_features,
            "hidden_sizes": [layer.out_features for layer in layers[:-1]],
            "activation": activation,
            "normalizer": "folded into layers.0",
        },
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
    import onnx

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
    model = onnx.load(str(path))  # pulls in the weights the exporter may have written beside it
    entry = model.metadata_props.add()
    entry.key, entry.value = "deploy_yaml", deploy_yaml
    onnx.save(model, str(path), save_as_external_data=False)  # one self-contained file
    for extra in path.parent.glob(path.name + ".*"):
        extra.unlink()
