"""Task configs round-trip through YAML and overrides name what they do not know."""

from __future__ import annotations

import pytest
import yaml

from sim.config_io import ConfigError, apply_overrides, from_dict, load_yaml_overrides, parse_set_option, to_dict
from sim.tasks import make_task_config
from sim.tasks.config import EnvConfig


def test_round_trip_through_yaml_keeps_every_field():
    cfg = make_task_config("quadruped-flat")
    text = yaml.safe_dump(to_dict(cfg))
    back = from_dict(EnvConfig, yaml.safe_load(text))
    assert back == cfg
    assert back.commands.lin_vel_x_m_s == (-1.0, 1.0)  # tuples come back as tuples
    assert back.observations.policy[0].name == "base_ang_vel"


def test_yaml_file_overrides_nested_fields(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("env:\n  num_envs: 64\n  randomization:\n    foot_friction: {low: 0.5, high: 1.0}\n")
    cfg = make_task_config("quadruped-flat")
    apply_overrides(cfg, load_yaml_overrides(path)["env"], "env")
    assert cfg.num_envs == 64
    assert (cfg.randomization.foot_friction.low, cfg.randomization.foot_friction.high) == (0.5, 1.0)
    assert cfg.randomization.foot_friction.enabled  # untouched fields keep their values


def test_set_option_parses_values_as_yaml():
    cfg = make_task_config("quadruped-flat")
    apply_overrides(cfg, parse_set_option("randomization.push_velocity_m_s.enabled=false"))
    apply_overrides(cfg, parse_set_option("rewards.torques=-1e-4"))
    assert cfg.randomization.push_velocity_m_s.enabled is False
    assert cfg.rewards.torques == pytest.approx(-1e-4)


def test_bad_overrides_name_the_key():
    cfg = make_task_config("quadruped-flat")
    with pytest.raises(ConfigError, match=r"unknown config key 'env\.terminations\.max_tilt'"):
        apply_overrides(cfg, {"terminations": {"max_tilt": 1.0}}, "env")
    with pytest.raises(ConfigError, match="config key 'num_envs' expects int"):
        apply_overrides(cfg, {"num_envs": "many"})
    with pytest.raises(ConfigError, match="expects key=value"):
        parse_set_option("num_envs")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rewards": 5}, "config key 'rewards' is a group"),
        ({"randomization": {"foot_friction": 0.5}}, "config key 'randomization.foot_friction' is a group"),
        ({"observations": {"policy": ["base_ang_vel"]}}, r"config key 'observations.policy\[0\]' is a group"),
        ({"commands": {"lin_vel_x_m_s": [1.0]}}, "expects a list of 2 values"),
        ({"commands": {"lin_vel_x_m_s": [-1.0, "fast"]}}, "expects a number"),
    ],
)
def test_malformed_values_are_named_not_crashed(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(make_task_config("quadruped-flat"), override)
