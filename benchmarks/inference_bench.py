"""`simreal bench inference`: per-call policy latency of one bundle in four runtimes, measured in one run.

`cpp` is the C++ core timed in C++ (`cpp_ext/tools/bench_inference`); `onnxruntime`
runs the bundle's policy.onnx from Python; `torch` and `torchscript` run the
network rebuilt from the bundle (policies/bundle_torch.py). Every runtime is
single-threaded, batch 1, one call per control tick, as on the robot.
"""

from __future__ import annotations

import gc
import json
import math
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.cpp_build import CPP_EXT, build_cpp_ext
from policies.bundle import ONNX, load_bundle
from policies.bundle_torch import script_policy, torch_policy_from_bundle
from sim.errors import SimrealError

DEFAULT_ITERATIONS = 20_000
WARMUP_CALLS = 1_000
RUNTIMES = ("cpp", "onnxruntime", "torch", "torchscript")
CPP_TOOL = "bench_inference"
CPP_KEYS = ("p50_us", "p99_us", "max_us", "mean_us", "iterations", "allocations_per_step")
CPP_TIMEOUT_S = 600


class InferenceBenchError(SimrealError):
    """A runtime could not be measured (e.g. the C++ tool failed); the message says which and why."""


def bench_inference(
    bundle_dir: Path,
    iterations: int = DEFAULT_ITERATIONS,
    runtimes: Sequence[str] = RUNTIMES,
    build_dir: Path | None = None,
) -> dict:
    """Latency percentiles per runtime on the same bundle and the same kind of random observations."""
    if iterations < 1:
        raise InferenceBenchError(f"--iterations must be positive, got {iterations}")
    spec = load_bundle(bundle_dir)  # a bad bundle is refused here, before anything is built or timed
    network = spec["network"]
    generator = np.random.default_rng(0)
    # pre-generated so that drawing them is never timed; one fresh row per call
    observations = generator.standard_normal((iterations, 1, network["input_dim"]), dtype=np.float32)
    measure: dict[str, Callable[[], dict]] = {
        "cpp": lambda: _bench_cpp(bundle_dir, iterations, build_dir),
        "onnxruntime": lambda: _bench_onnxruntime(bundle_dir, network, observations),
        "torch": lambda: _bench_torch(bundle_dir, observations, script=False),
        "torchscript": lambda: _bench_torch(bundle_dir, observations, script=True),
    }
    unknown = sorted(set(runtimes) - set(measure))
    if unknown:
        raise InferenceBenchError(f"unknown runtime(s) {', '.join(unknown)}; known: {', '.join(RUNTIMES)}")
    results = {name: measure[name]() for name in RUNTIMES if name in runtimes}
    result: dict[str, Any] = {
        "bundle": str(bundle_dir),
        "network": _describe(network),
        "iterations": iterations,
        "warmup_calls": WARMUP_CALLS,
        "threads": 1,
        "runtimes": results,
    }
    if "cpp" in results and "onnxruntime" in results:
        # > 1 means the C++ core's tail latency is that many times lower than ONNX Runtime's
        ratio = results["onnxruntime"]["p99_us"] / results["cpp"]["p99_us"]
        result["onnxruntime_p99_over_cpp_p99"] = round(ratio, 2)
    return result


def _describe(network: dict) -> str:
    """E.g. `mlp 45-256-128-12 elu` or `gru 45->2x64, head 64-128-12 elu`."""
    head = [*network["hidden_sizes"], network["output_dim"]]
    if network["type"] == "gru":
        hidden = network["rnn_hidden_dim"]
        gru = f"{network['input_dim']}->{network['rnn_num_layers']}x{hidden}"
        return f"gru {gru}, head {'-'.join(map(str, [hidden, *head]))} {network['activation']}"
    return f"{network['type']} {'-'.join(map(str, [network['input_dim'], *head]))} {network['activation']}"


def _time_calls(call: Callable[[Any], object], inputs: Sequence[Any]) -> dict:
    """Warm up, then time each `call(inputs[i])` with perf_counter_ns; percentiles in microseconds."""
    for i in range(WARMUP_CALLS):
        call(inputs[i % len(inputs)])
    durations = np.empty(len(inputs), dtype=np.int64)
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one call would be Python's cost, not the runtime's (as timeit does)
    try:
        for i, x in enumerate(inputs):
            start = clock()
            call(x)
            durations[i] = clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return _summary(durations / 1000.0)


def _summary(us: np.ndarray) -> dict:
    p50, p99 = np.percentile(us, [50, 99])
    return {
        "p50_us": round(float(p50), 2),
        "p99_us": round(float(p99), 2),
        "max_us": round(float(us.max()), 2),
        "mean_us": round(float(us.mean()), 2),
        "calls": len(us),
    }


def _bench_onnxruntime(bundle_dir: Path, network: dict, observations: np.ndarray) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(bundle_dir / ONNX), options, providers=["CPUExecutionProvider"])
    inputs = {node.name for node in session.get_inputs()}
    if "obs" not in inputs:
        raise InferenceBenchError(f"{bundle_dir / ONNX}: no input 'obs' (inputs: {', '.join(sorted(inputs))})")
    if "h_in" in inputs:
        step = _RecurrentOrtStep(session, network)
        return _time_calls(step, list(observations))
    run = session.run
    outputs = [node.name for node in session.get_outputs()]
    feeds = [{"obs": row} for row in observations]
    return _time_calls(lambda feed: run(outputs, feed), feeds)


class _RecurrentOrtStep:
    """One GRU step through ONNX Runtime: feeds `h_out` of the last call back as `h_in`."""

    def __init__(self, session: Any, network: dict) -> None:
        self.session = session
        self.outputs = [node.name for node in session.get_outputs()]
        if "h_out" not in self.outputs:
            raise InferenceBenchError(f"recurrent ONNX policy has no output 'h_out' (outputs: {self.outputs})")
        self.h_index = self.outputs.index("h_out")
        shape = (network["rnn_num_layers"], 1, network["rnn_hidden_dim"])
        self.hidden = np.zeros(shape, dtype=np.float32)

    def __call__(self, obs: np.ndarray) -> None:
        results = self.session.run(self.outputs, {"obs": obs, "h_in": self.hidden})
        self.hidden = results[self.h_index]


def _bench_torch(bundle_dir: Path, observations: np.ndarray, script: bool) -> dict:
    module = torch_policy_from_bundle(bundle_dir)
    if script:
        module = script_policy(module)
    inputs = [torch.from_numpy(row) for row in observations]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # intra-op threads: on a batch of one they only add hand-off latency
    try:
        with torch.inference_mode():
            return _time_calls(module, inputs)
    finally:
        torch.set_num_threads(threads)


def _cpp_binary(build_dir: Path | None) -> Path:
    """The C++ benchmark tool, built (incrementally) from cpp_ext/tools/bench_inference.cpp."""
    source = CPP_EXT / "tools" / f"{CPP_TOOL}.cpp"
    if not source.is_file():
        raise InferenceBenchError(f"the C++ benchmark is missing: no {source}")
    return build_cpp_ext(build_dir, targets=[CPP_TOOL]) / CPP_TOOL


def _bench_cpp(bundle_dir: Path, iterations: int, build_dir: Path | None) -> dict:
    """Run the C++ tool and check the JSON object it prints."""
    command = [str(_cpp_binary(build_dir)), str(bundle_dir), "--iterations", str(iterations), "--json"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CPP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise InferenceBenchError(f"{CPP_TOOL} did not finish within {CPP_TIMEOUT_S} s") from None
    if result.returncode != 0:
        message = result.stderr.strip() or f"no message on stderr, stdout: {result.stdout.strip()[:500]!r}"
        raise InferenceBenchError(f"{CPP_TOOL} failed (exit {result.returncode}): {message}")
    try:
        measured = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise InferenceBenchError(f"{CPP_TOOL} printed no JSON object: {result.stdout.strip()[:500]!r}") from None
    missing = [key for key in CPP_KEYS if not isinstance(measured, dict) or key not in measured]
    if missing:
        raise InferenceBenchError(f"{CPP_TOOL} output lacks {', '.join(missing)}: {result.stdout.strip()[:500]!r}")
    core = {key: measured[key] for key in ("p50_us", "p99_us", "max_us", "mean_us")}
    invalid = {key: value for key, value in core.items() if not _positive_number(value)}
    if invalid:
        raise InferenceBenchError(f"{CPP_TOOL} reported non-positive or non-numeric latencies: {invalid}")
    # same core keys as the Python runtimes first, then whatever else the tool reports
    return {**core, "calls": measured["iterations"], **measured}


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def format_table(result: dict) -> str:
    """The result as a readable table, one row per runtime."""
    lines = [
        f"bundle: {result['bundle']} ({result['network']})",
        f"{result['iterations']} timed calls per runtime after {result['warmup_calls']} warm-up calls, 1 thread",
        "",
        f"{'runtime':<12} {'p50_us':>9} {'p99_us':>9} {'max_us':>9} {'mean_us':>9} {'allocations/step':>17}",
    ]
    rows = list(result["runtimes"].items())
    cpp = result["runtimes"].get("cpp", {})
    if "tick_p50_us" in cpp:
        # the whole control tick (reorder, observation, network, action processing, state machine), same run
        tick = {key[len("tick_") :]: value for key, value in cpp.items() if key.startswith("tick_")}
        rows.insert(1, ("cpp tick", tick))
    for name, row in rows:
        allocations = row.get("allocations_per_step", "-")
        lines.append(
            f"{name:<12} {row['p50_us']:>9.2f} {row['p99_us']:>9.2f} {row['max_us']:>9.2f} {row['mean_us']:>9.2f} "
            f"{allocations!s:>17}"
        )
    if "onnxruntime_p99_over_cpp_p99" in result:
        lines += ["", f"onnxruntime p99 / cpp p99: {result['onnxruntime_p99_over_cpp_p99']}x"]
    return "\n".join(lines)
