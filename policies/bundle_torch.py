"""A torch module rebuilt from a deploy bundle alone (deploy.yaml + policy.safetensors), no training code.

Used to time torch eager and TorchScript on exactly the network the robot runs,
and as an independent reading of the bundle format (DESIGN.md §4).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

from policies.bundle import WEIGHTS, BundleError, load_bundle

_ACTIVATIONS = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


class MlpPolicy(torch.nn.Module):
    """obs [B, in] -> actions [B, out]; stateless, so `reset()` does nothing."""

    def __init__(self, layers: torch.nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.layers(obs)

    @torch.jit.export
    def reset(self) -> None:
        pass


class GruPolicy(torch.nn.Module):
    """obs [1, in] -> actions [1, out] through a GRU and an MLP head; each call advances the hidden state."""

    def __init__(self, gru: torch.nn.GRU, head: torch.nn.Sequential) -> None:
        super().__init__()
        self.gru = gru
        self.head = head
        # a buffer, not an attribute: it follows .to() and survives torch.jit.script
        self.register_buffer("hidden", torch.zeros(gru.num_layers, 1, gru.hidden_size))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out, hidden = self.gru(obs.unsqueeze(0), self.hidden)  # one time step: [1, 1, in]
        self.hidden.copy_(hidden)
        return self.head(out.squeeze(0))

    @torch.jit.export
    def reset(self) -> None:
        self.hidden.zero_()


def torch_policy_from_bundle(bundle_dir: Path) -> torch.nn.Module:
    """The bundle's network as an eval-mode torch module (MLP or GRU + head), after full validation."""
    spec = load_bundle(bundle_dir)
    return torch_policy_from_spec(spec["network"], load_file(str(bundle_dir / WEIGHTS)))


def script_policy(module: torch.nn.Module) -> torch.nn.Module:
    """`torch.jit.script` of a policy module; `reset()` stays callable."""
    with warnings.catch_warnings():
        # TorchScript is deprecated in torch 2.x but still what many robot stacks load; we time it on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(module)


def torch_policy_from_spec(network: dict, tensors: dict[str, torch.Tensor]) -> torch.nn.Module:
    """Build from deploy.yaml's `network` mapping and the safetensors tensors (names as in DESIGN.md §4)."""
    if network["type"] == "mlp":
        return MlpPolicy(_head(tensors, network["activation"])).eval()
    if network["type"] == "gru":
        gru = _gru(tensors, int(network["rnn_hidden_dim"]), int(network["rnn_num_layers"]))
        return GruPolicy(gru, _head(tensors, network["activation"])).eval()
    raise BundleError(f"network.type {network['type']!r} is not supported (mlp, gru)")


def _head(tensors: dict[str, torch.Tensor], activation: str) -> torch.nn.Sequential:
    """Linear `layers.0..n-1` with the activation between layers, not after the last."""
    count = 0
    while f"layers.{count}.weight" in tensors:
        count += 1
    if count == 0:
        raise BundleError(f"{WEIGHTS} lacks tensor 'layers.0.weight'")
    modules: list[torch.nn.Module] = []
    for index in range(count):
        modules.append(_linear(tensors, f"layers.{index}"))
        if index < count - 1:
            modules.append(_ACTIVATIONS[activation]())
    return torch.nn.Sequential(*modules)


def _linear(tensors: dict[str, torch.Tensor], prefix: str) -> torch.nn.Linear:
    weight, bias = _tensor(tensors, f"{prefix}.weight"), _tensor(tensors, f"{prefix}.bias")
    if weight.dim() != 2 or tuple(bias.shape) != (weight.shape[0],):
        raise BundleError(f"{WEIGHTS}: '{prefix}' has weight {tuple(weight.shape)} and bias {tuple(bias.shape)}")
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    layer.load_state_dict({"weight": weight, "bias": bias})
    return layer


def _gru(tensors: dict[str, torch.Tensor], hidden: int, num_layers: int) -> torch.nn.GRU:
    """torch.nn.GRU from `gru.{l}.weight_ih/weight_hh/bias_ih/bias_hh` (torch's layout and gate order)."""
    input_size = _tensor(tensors, "gru.0.weight_ih").shape[1]
    gru = torch.nn.GRU(input_size, hidden, num_layers)
    state = {
        f"{kind}_l{layer}": _tensor(tensors, f"gru.{layer}.{kind}")
        for layer in range(num_layers)
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    try:
        gru.load_state_dict(state)
    except RuntimeError as error:  # a shape mismatch: name it in one line, not a torch traceback
        raise BundleError(f"{WEIGHTS}: GRU tensors do not match rnn_hidden_dim {hidden}: {error}") from None
    return gru


def _tensor(tensors: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    if name not in tensors:
        raise BundleError(f"{WEIGHTS} lacks tensor '{name}'")
    return tensors[name]
