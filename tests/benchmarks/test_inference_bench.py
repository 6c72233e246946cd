"""`simreal bench inference`: one JSON object with all four runtimes; clean errors for bad input.

No timing assertions: only the shape of the result and the order p50 <= p99 <= max.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import inference_bench
from benchmarks.inference_bench import RUNTIMES, bench_inference, format_table
from simreal.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "policies" / "pretrained" / "quadruped-flat" / "bundle"
ITERATIONS = 300


def _check_latencies(row: dict) -> None:
    assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
    assert row["mean_us"] > 0 and row["calls"] == ITERATIONS


def _fake_cpp_tool(tmp_path: Path, script: str) -> Path:
    """A stand-in for the C++ tool: a shell script with the same command line."""
    tool = tmp_path / "bench_inference"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return tool


def test_bench_inference_json_has_all_four_runtimes(capsys):
    """The real thing: builds cpp_ext/ (incrementally, into build/cpp_ext) and runs every runtime."""
    assert main(["bench", "inference", "--bundle", str(SHIPPED), "--iterations", str(ITERATIONS), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["runtimes"]) == set(RUNTIMES)
    for row in result["runtimes"].values():
        _check_latencies(row)
    cpp = result["runtimes"]["cpp"]
    assert cpp["allocations_per_step"] == 0  # counted by a replaced operator new in the C++ tool
    assert result["onnxruntime_p99_over_cpp_p99"] > 0
    assert result["iterations"] == ITERATIONS and result["network"] == "mlp 45-256-128-128-12 elu"


def test_python_runtimes_and_table():
    result = bench_inference(SHIPPED, ITERATIONS, runtimes=("onnxruntime", "torch", "torchscript"))
    assert list(result["runtimes"]) == ["onnxruntime", "torch", "torchscript"]
    for row in result["runtimes"].values():
        _check_latencies(row)
    assert "onnxruntime_p99_over_cpp_p99" not in result  # no C++ numbers, no ratio
    table = format_table(result)
    assert all(name in table for name in ("onnxruntime", "torch", "torchscript", "p99_us"))


def test_cpp_entry_is_passed_through_with_the_documented_command_line(tmp_path, monkeypatch, capsys):
    # the stand-in echoes its arguments so the test can see what it was called with
    tool = _fake_cpp_tool(
        tmp_path,
        'printf \'{"p50_us": 2.5, "p99_us": 3.5, "max_us": 9.0, "mean_us": 2.7, "iterations": %s, '
        '"allocations_per_step": 0, "argv": "%s"}\' "$3" "$*"\n',
    )
    monkeypatch.setattr(inference_bench, "_cpp_binary", lambda build_dir: tool)
    assert main(["bench", "inference", "--bundle", str(SHIPPED), "--iterations", str(ITERATIONS), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    cpp = result["runtimes"]["cpp"]
    assert cpp["argv"] == f"{SHIPPED} --iterations {ITERATIONS} --json"
    assert cpp["allocations_per_step"] == 0 and cpp["calls"] == ITERATIONS
    expected = result["runtimes"]["onnxruntime"]["p99_us"] / 3.5
    assert result["onnxruntime_p99_over_cpp_p99"] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo 'bench_inference: error: bad bundle' >&2; exit 1\n", "bench_inference: error: bad bundle"),
        ("echo 'not json'\n", "printed no JSON object"),
        ("echo '{\"p50_us\": 1.0}'\n", "output lacks p99_us"),
    ],
)
def test_a_failing_cpp_tool_gives_a_clean_error(tmp_path, monkeypatch, capsys, script, message):
    tool = _fake_cpp_tool(tmp_path, script)
    monkeypatch.setattr(inference_bench, "_cpp_binary", lambda build_dir: tool)
    assert main(["bench", "inference", "--bundle", str(SHIPPED), "--iterations", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simreal bench: error: ") and message in err and "Traceback" not in err


def test_missing_bundle_is_a_clean_one_line_error(tmp_path, capsys):
    assert main(["bench", "inference", "--bundle", str(tmp_path / "nowhere"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "deploy.yaml is missing" in captured.err
