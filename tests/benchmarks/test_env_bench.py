"""`simreal bench env` prints the documented keys, the same for both backends; the ratio follows from the rates."""

from __future__ import annotations

import json

import pytest

from simreal.cli import main

KEYS = {
    "task",
    "backend",
    "device",
    "num_envs",
    "threads",
    "decimation",
    "startup_s",
    "env_steps_per_s",
    "raw_physics_steps_per_s",
    "ratio",
    "repeats",
    "steps_per_repeat",
}


def _bench(capsys, *flags: str) -> dict:
    assert main(["bench", "env", "--num-envs", "16", "--steps", "10", "--repeats", "3", "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("flags", [(), ("--backend", "warp", "--device", "cpu")], ids=["batch", "warp"])
def test_bench_env_json_keys_and_ratio(capsys, flags):
    result = _bench(capsys, *flags)
    assert set(result) == KEYS
    assert result["backend"] == (flags[1] if flags else "batch") and result["device"] == "cpu"
    assert result["env_steps_per_s"] > 0 and result["raw_physics_steps_per_s"] > 0 and result["startup_s"] > 0
    expected = result["env_steps_per_s"] * result["decimation"] / result["raw_physics_steps_per_s"]
    assert result["ratio"] == pytest.approx(expected, rel=1e-3)
    assert result["decimation"] == 4 and result["num_envs"] == 16
