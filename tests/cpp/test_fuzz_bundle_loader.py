"""100,000 fuzzed bundles through the C++ loader: no crash, every rejection a clean BundleError naming the file."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_bundle_loader.py")
RUNS = 100_000

pytestmark = pytest.mark.slow


def test_bundle_loader_survives_100k_fuzzed_inputs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(HARNESS), f"-runs={RUNS}", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert f"Done {RUNS} runs" in log
    assert not list(tmp_path.glob("crash-*")), log[-4000:]
    reports = [line for line in result.stdout.splitlines() if line.startswith("simreal-fuzz:")]
    assert len(reports) == RUNS // 25_000
    outcomes = dict(ast.literal_eval(reports[-1].split(" inputs ")[1].split(" distinct_rejections=")[0]))
    # every target was exercised, and the mutations both pass and fail validation, so they reach deep checks
    for target in ("safetensors", "spec", "yaml", "weights"):
        assert outcomes.get(f"{target}:rejected", 0) > 1000, outcomes
    assert outcomes.get("weights:accepted", 0) > 1000 and outcomes.get("spec:accepted", 0) > 100, outcomes
    assert int(reports[-1].rsplit("=", 1)[1]) > 500  # distinct rejection messages


def test_harness_flags_an_unclean_rejection(monkeypatch):
    """The harness's own check bites: a BundleError that does not name the file is a failure."""
    sys.path.insert(0, str(HARNESS.parent))
    try:
        import fuzz_bundle_loader as harness
    finally:
        sys.path.pop(0)
    import simreal_rt

    def nameless(*_args):
        raise simreal_rt.BundleError("something went wrong")

    monkeypatch.setattr(simreal_rt, "load_bundle_from_memory", nameless)
    with pytest.raises(AssertionError, match="unclean rejection"):
        harness.one_input(b"\x02" + harness.BUNDLES[0][0].encode())
