"""The launch files parse and name only modules and parameters that exist; the params YAML loads through rclpy.

There are no launch wheels on PyPI, so the launch files are checked as source (their ExecuteProcess
commands and launch arguments), and the YAML is loaded by rclpy's own --params-file handling.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import rclpy
import yaml

from robot_io import topics

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ROOT / "launch"
PARAMS = LAUNCH / "params" / "quadruped.yaml"
NODE_OF_MODULE = {"robot_io.policy_node": topics.POLICY_NODE, "robot_io.sim_robot": topics.SIM_ROBOT_NODE}


def _commands(path: Path) -> list[list[ast.expr]]:
    """The `cmd` lists of every ExecuteProcess in a launch file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    commands = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ExecuteProcess":
            for keyword in node.keywords:
                if keyword.arg == "cmd":
                    assert isinstance(keyword.value, ast.List), f"{path.name}: cmd must be a literal list"
                    commands.append(keyword.value.elts)
    return commands


def _launch_arguments(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "DeclareLaunchArgument",
            "LaunchConfiguration",
        ):
            names.add(node.args[0].value)
    return names


@pytest.mark.parametrize(
    ("launch_file", "modules"),
    [
        ("deploy.launch.py", ["robot_io.policy_node"]),
        ("sim2sim.launch.py", ["robot_io.sim_robot", "robot_io.policy_node"]),
    ],
)
def test_launch_file_starts_existing_modules_with_the_params_file(launch_file, modules):
    path = LAUNCH / launch_file
    commands = _commands(path)
    started = []
    for command in commands:
        words = [element.value if isinstance(element, ast.Constant) else None for element in command]
        assert words[:2] == ["python3", "-m"], words
        module = importlib.import_module(words[2])
        assert callable(module.main), f"{words[2]} has no main()"
        assert words[3:5] == ["--ros-args", "--params-file"] and words[5] is None  # the `params` argument
        started.append(words[2])
    assert started == modules
    assert _launch_arguments(path) == {"params"}  # declared and used, nothing else
    default = yaml.safe_load(PARAMS.read_text())
    assert set(default) >= {NODE_OF_MODULE[module] for module in modules}


def test_params_yaml_loads_through_rclpy_params_file():
    """rclpy parses the file as a robot would (--params-file) and every value arrives typed as written."""
    expected = yaml.safe_load(PARAMS.read_text())
    for node_name, section in expected.items():
        context = rclpy.Context()
        rclpy.init(args=["--ros-args", "--params-file", str(PARAMS)], context=context)
        try:
            node = rclpy.create_node(
                node_name,
                context=context,
                allow_undeclared_parameters=True,
                automatically_declare_parameters_from_overrides=True,
            )
            loaded = {name: node.get_parameter(name).value for name in section["ros__parameters"]}
            assert loaded == {name: _as_loaded(value) for name, value in section["ros__parameters"].items()}
            node.destroy_node()
        finally:
            rclpy.shutdown(context=context)


def _as_loaded(value):
    return list(value) if isinstance(value, list) else value
