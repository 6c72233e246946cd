"""`simreal bench env` prints the documented keys; the ratio follows from the two rates."""

from __future__ import annotations

import json

import pytest

from simreal.cli import main


def test_bench_env_json_keys_and_ratio(capsys):
    assert main(["bench", "env", "--num-envs", "16", "--steps", "10", "--repeats", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"env_steps_per_s", "raw_physics_steps_per_s", "ratio"} <= set(result)
    assert result["env_steps_per_s"] > 0 and result["raw_physics_steps_per_s"] > 0
    expected = result["env_steps_per_s"] * result["decimation"] / result["raw_physics_steps_per_s"]
    assert result["ratio"] == pytest.approx(expected, rel=1e-3)
    assert result["decimation"] == 4 and result["num_envs"] == 16
