"""The shipped quadruped policy meets the issue's bar under randomized dynamics."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.evaluate import evaluate_run
from policies.run_dir import find_checkpoint, load_checkpoint

PRETRAINED = Path(__file__).resolve().parents[2] / "policies" / "pretrained" / "quadruped-flat"
pytestmark = pytest.mark.slow


def test_shipped_policy_walks_under_randomized_dynamics():
    # 512 episodes: the policy falls in 1-2 % of them, and 64 episodes measured that to +-3 % (4 of 64 with one
    # draw of the randomization, 1 of 64 with another, for the same policy)
    result = evaluate_run(PRETRAINED, None, episodes=512, dynamics="randomized", seed=2024)
    assert result["num_episodes"] == 512
    assert result["fall_rate"] <= 0.05
    assert result["lin_vel_error_m_s"] <= 0.2
    assert result["yaw_rate_error_rad_s"] <= 0.3


def test_shipped_checkpoint_carries_its_training_ranges():
    content = load_checkpoint(find_checkpoint(PRETRAINED))
    assert content["task"] == "quadruped-flat"
    assert content["randomization"]["foot_friction"]["low"] == 0.3
    assert (PRETRAINED / "summary.yaml").is_file() and (PRETRAINED / "learning_curve.png").is_file()
