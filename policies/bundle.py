"""The deploy bundle (DESIGN.md §4): what `deploy.yaml` must hold, and its validation.

A bundle is untrusted input on the robot: every field is checked and a bad one
is refused with a message naming it. The C++ core (issue 3) checks the same.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from safetensors.numpy import load_file

from sim.errors import SimrealError
from sim.terms.observations import SIMULATION_ONLY_TERMS, term_dim

FORMAT_VERSION = 1
DEPLOY_YAML = "deploy.yaml"
WEIGHTS = "policy.safetensors"
ONNX = "policy.onnx"
ACTIVATIONS = ("elu", "relu", "tanh")
NETWORK_TYPES = ("mlp", "gru")
NETWORK_FIELDS = ("type", "input_dim", "output_dim", "hidden_sizes", "activation")
GRU_FIELDS = ("rnn_hidden_dim", "rnn_num_layers")
REQUIRED = (
    "format_version",
    "robot",
    "joint_names",
    "default_joint_pos",
    "kp",
    "kd",
    "action",
    "control_dt",
    "observation",
    "network",
    "safety",
    "provenance",
    "sha256",
)
SAFETY_FIELDS = (
    "joint_pos_limits_rad",
    "velocity_limit_rad_s",
    "torque_limit_nm",
    "tilt_limit_rad",
    "state_timeout_s",
    "standing_kp",
    "standing_kd",
    "damping_kd",
)
PER_JOINT_SAFETY = ("joint_pos_limits_rad", "velocity_limit_rad_s", "torque_limit_nm", "standing_kp", "standing_kd")
# Same ranges as the C++ core (cpp_ext/src/bundle.cpp): beyond them a bundle would switch a safety mechanism off.
MAX_JOINTS = 1024
MAX_CONTROL_DT_S = 0.1  # slower than 10 Hz is not closed-loop control
MAX_STATE_TIMEOUT_S = 1.0  # a watchdog that waits longer does not protect
MAX_TILT_LIMIT_RAD = math.pi / 2  # beyond 90 degrees the robot is already down
# (field, lowest allowed, lowest itself allowed): gains that must hold the robot are strictly positive
PER_JOINT_MINIMUM = (
    ("kp", 0.0, False),
    ("kd", 0.0, True),
    ("safety.velocity_limit_rad_s", 0.0, False),
    ("safety.torque_limit_nm", 0.0, False),
    ("safety.standing_kp", 0.0, False),
    ("safety.standing_kd", 0.0, True),
)


class BundleError(SimrealError):
    """A deploy bundle that fails validation; the message names the file and field."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_bundle(bundle_dir: Path) -> dict:
    """Read and validate `deploy.yaml` and the weights it names; returns the spec dict."""
    spec_path = bundle_dir / DEPLOY_YAML
    if not spec_path.is_file():
        raise BundleError(f"{spec_path} is missing: {bundle_dir} is not a deploy bundle")
    try:
        spec = yaml.safe_load(spec_path.read_text())
    except yaml.YAMLError as error:
        raise BundleError(f"{spec_path}: not valid YAML: {error}") from None
    validate_spec(spec, spec_path)
    weights = bundle_dir / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"{weights} is missing")
    if sha256_of(weights) != spec["sha256"]:
        raise BundleError(f"{spec_path}: sha256 does not match {WEIGHTS} (the weights changed after export)")
    _check_weights(load_file(str(weights)), spec, spec_path)
    return spec


def validate_spec(spec: Any, where: Path) -> None:
    """Every field present, of the right kind and length; raises BundleError naming the field."""
    if not isinstance(spec, dict):
        raise BundleError(f"{where}: expected a mapping at the top level")
    missing = [field for field in REQUIRED if field not in spec]
    if missing:
        raise BundleError(f"{where}: missing field(s) {', '.join(missing)}")
    if spec["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{where}: format_version {spec['format_version']!r} is not {FORMAT_VERSION}")
    joints = spec["joint_names"]
    if not isinstance(joints, list) or not joints or len(set(joints)) != len(joints) or len(joints) > MAX_JOINTS:
        raise BundleError(f"{where}: joint_names must be a non-empty list of at most {MAX_JOINTS} distinct names")
    for field in ("default_joint_pos", "kp", "kd"):
        _by_joint(spec[field], joints, field, where)
    action = _mapping(spec["action"], "action", where, ("type", "scale", "clip"))
    if action["type"] != "joint_position_offset":
        raise BundleError(f"{where}: action.type {action['type']!r} is not 'joint_position_offset'")
    if not _positive(spec["control_dt"]) or spec["control_dt"] > MAX_CONTROL_DT_S:
        raise BundleError(f"{where}: control_dt must be in (0, {MAX_CONTROL_DT_S}] seconds, got {spec['control_dt']!r}")
    observation = _mapping(spec["observation"], "observation", where, ("terms", "history"))
    width = 0
    for index, term in enumerate(observation["terms"]):
        term = _mapping(term, f"observation.terms[{index}]", where, ("name", "dim", "scale", "clip"))
        if term["name"] in SIMULATION_ONLY_TERMS:
            raise BundleError(
                f"{where}: observation.terms[{index}]: {term['name']!r} is a simulation-only term "
                "(no robot source in the C++ core yet)"
            )
        try:
            expected = term_dim(term["name"], len(joints))
        except SimrealError:
            raise BundleError(f"{where}: observation.terms[{index}]: unknown term {term['name']!r}") from None
        if term["dim"] != expected:
            raise BundleError(f"{where}: observation.terms[{index}] ({term['name']}): dim {term['dim']} != {expected}")
        width += expected
    if not isinstance(observation["history"], int) or observation["history"] < 1:
        raise BundleError(f"{where}: observation.history must be a positive integer")
    _check_network(spec["network"], width * observation["history"], len(joints), where)
    safety = _mapping(spec["safety"], "safety", where, SAFETY_FIELDS)
    for field in PER_JOINT_SAFETY:
        _by_joint(safety[field], joints, f"safety.{field}", where)
    _check_safety_values(spec, where)
    _mapping(spec["provenance"], "provenance", where, ("task", "run", "iteration", "git_commit", "date"))


def _check_safety_values(spec: dict, where: Path) -> None:
    """Gains, limits and timeouts in ranges that keep the robot's safety mechanisms working."""
    safety = spec["safety"]
    for path, lowest, inclusive in PER_JOINT_MINIMUM:
        values = safety[path.split(".")[1]] if path.startswith("safety.") else spec[path]
        for joint, value in values.items():
            if not _finite_number(value) or (value < lowest if inclusive else value <= lowest):
                raise BundleError(
                    f"{where}: {path}.{joint} must be {'>=' if inclusive else '>'} {lowest}, got {value!r}"
                )
    for field, highest in (("tilt_limit_rad", MAX_TILT_LIMIT_RAD), ("state_timeout_s", MAX_STATE_TIMEOUT_S)):
        if not _positive(safety[field]) or safety[field] > highest:
            raise BundleError(f"{where}: safety.{field} must be in (0, {highest:g}], got {safety[field]!r}")
    if not _positive(safety["damping_kd"]):
        raise BundleError(f"{where}: safety.damping_kd must be > 0, got {safety['damping_kd']!r}")
    for joint, limits in safety["joint_pos_limits_rad"].items():
        if not (isinstance(limits, list) and len(limits) == 2 and all(_finite_number(v) for v in limits)):
            raise BundleError(f"{where}: safety.joint_pos_limits_rad.{joint} must be [lower, upper]")
        lower, upper = limits
        if lower > upper:
            raise BundleError(f"{where}: safety.joint_pos_limits_rad.{joint}: lower limit is above the upper limit")
        default = spec["default_joint_pos"][joint]
        if not _finite_number(default) or not lower <= default <= upper:
            # the standing pose is commanded verbatim in STAND_UP and STANDING
            raise BundleError(
                f"{where}: default_joint_pos.{joint} {default!r} is outside "
                f"safety.joint_pos_limits_rad [{lower}, {upper}]"
            )


def _check_network(value: Any, observation_width: int, num_joints: int, where: Path) -> None:
    """network: type mlp|gru, sizes that fit the observation and joints, and the gru fields for a GRU."""
    network = _mapping(value, "network", where, NETWORK_FIELDS)
    if network["type"] not in NETWORK_TYPES:
        raise BundleError(f"{where}: network.type {network['type']!r} is not supported {NETWORK_TYPES}")
    if network["activation"] not in ACTIVATIONS:
        raise BundleError(f"{where}: network.activation {network['activation']!r} is not one of {ACTIVATIONS}")
    for field in ("input_dim", "output_dim"):
        if not _positive_int(network[field]):
            raise BundleError(f"{where}: network.{field} must be a positive integer, got {network[field]!r}")
    hidden = network["hidden_sizes"]
    if not isinstance(hidden, list) or not all(_positive_int(size) for size in hidden):
        raise BundleError(f"{where}: network.hidden_sizes must be a list of positive integers, got {hidden!r}")
    if network["input_dim"] != observation_width:
        raise BundleError(
            f"{where}: network.input_dim {network['input_dim']} != observation width x history {observation_width}"
        )
    if network["output_dim"] != num_joints:
        raise BundleError(f"{where}: network.output_dim {network['output_dim']} != {num_joints} joints")
    if network["type"] == "gru":
        _mapping(network, "network", where, GRU_FIELDS)
        for field in GRU_FIELDS:
            if not _positive_int(network[field]):
                raise BundleError(f"{where}: network.{field} must be a positive integer, got {network[field]!r}")


def _expected_tensors(network: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every tensor the network needs: name -> (shape, the deploy.yaml fields that set it, with their values)."""

    def fields(*names: str) -> str:
        return ", ".join(f"network.{name} {network[name]}" for name in names)

    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    head_in, head_source = network["input_dim"], "input_dim"
    if network["type"] == "gru":
        hidden = network["rnn_hidden_dim"]
        recurrent = fields("rnn_hidden_dim", "rnn_num_layers")
        for layer in range(network["rnn_num_layers"]):
            fan_in = network["input_dim"] if layer == 0 else hidden
            input_why = fields("input_dim", "rnn_hidden_dim", "rnn_num_layers") if layer == 0 else recurrent
            expected[f"gru.{layer}.weight_ih"] = ((3 * hidden, fan_in), input_why)
            expected[f"gru.{layer}.weight_hh"] = ((3 * hidden, hidden), recurrent)
            expected[f"gru.{layer}.bias_ih"] = ((3 * hidden,), recurrent)
            expected[f"gru.{layer}.bias_hh"] = ((3 * hidden,), recurrent)
        head_in, head_source = hidden, "rnn_hidden_dim"
    sizes = [head_in, *network["hidden_sizes"], network["output_dim"]]
    why = fields(head_source, "hidden_sizes", "output_dim")
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        expected[f"layers.{layer}.weight"] = ((fan_out, fan_in), why)
        expected[f"layers.{layer}.bias"] = ((fan_out,), why)
    return expected


def _check_weights(tensors: dict, spec: dict, where: Path) -> None:
    """Exactly the tensors deploy.yaml's network describes, each of its shape, float32."""
    expected = _expected_tensors(spec["network"])
    for name, (shape, why) in expected.items():
        if name not in tensors:
            raise BundleError(f"{where}: {WEIGHTS} lacks tensor '{name}' (needed by {why})")
        if tuple(tensors[name].shape) != shape or tensors[name].dtype.name != "float32":
            raise BundleError(
                f"{where}: {WEIGHTS} tensor '{name}' is {tensors[name].shape} {tensors[name].dtype.name}, "
                f"expected {shape} float32 ({why})"
            )
    for name in expected:
        if not np.isfinite(tensors[name]).all():
            raise BundleError(f"{where}: {WEIGHTS} tensor '{name}' holds a non-finite value")
    # a runtime that reads every layers.* / gru.* present would run another network than deploy.yaml states
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise BundleError(f"{where}: {WEIGHTS} holds tensor(s) {extra} that deploy.yaml's network does not describe")


def _mapping(value: Any, field: str, where: Path, keys: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise BundleError(f"{where}: {field} must be a mapping")
    missing = [key for key in keys if key not in value]
    if missing:
        raise BundleError(f"{where}: {field} lacks {', '.join(missing)}")
    return value


def _by_joint(value: Any, joints: list[str], field: str, where: Path) -> None:
    if not isinstance(value, dict):
        raise BundleError(f"{where}: {field} must map joint names to values (never by index)")
    absent = [name for name in joints if name not in value]
    extra = sorted(set(value) - set(joints))
    if absent or extra:
        raise BundleError(f"{where}: {field}: missing {absent or 'none'}, not in joint_names {extra or 'none'}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive(value: Any) -> bool:
    return _finite_number(value) and value > 0


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
