"""The deployed loop end to end over real DDS: emulator process + policy node process + an operator here."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from robot_io.sim2sim import Sim2SimConfig, ros_nodes
from simreal.cli import main

pytestmark = pytest.mark.slow
POLICY_PERIOD_S = 0.02  # the shipped bundle's control_dt
STATE_TIMEOUT_S = 0.1  # the shipped bundle's safety.state_timeout_s


def test_shipped_policy_walks_at_the_commanded_speed_in_sim2sim(ros_domain, capsys):
    assert main(["sim2sim", "--cmd-vx", "0.5", "--seconds", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print(result)
    assert result["fell"] is False
    assert abs(result["mean_forward_velocity_m_s"] - 0.5) <= 0.1
    assert result["controller_states"][:4] == ["ZERO_TORQUE", "STAND_UP", "STANDING", "POLICY"]
    assert "SIT_DOWN" in result["controller_states"] and result["sat_down"] is True


def _walking(operator) -> None:
    operator.await_ready(30.0)
    operator.call("stand_up")
    operator.await_state("STANDING", 10.0)
    operator.call("start_policy")
    operator.await_state("POLICY", 2.0)
    operator.drive(0.3, 0.0, 0.0, 1.0)


def _seconds_until(operator, state: str, timeout_s: float = 2.0) -> float:
    started = time.monotonic()
    operator.await_state(state, timeout_s)
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_emulator_lost_brings_the_policy_node_to_damping_in_time(ros_domain, how):
    with ros_nodes(Sim2SimConfig(domain_id=ros_domain)) as operator:
        _walking(operator)
        _, emulator, _ = operator.children[0]
        operator.expected_exits.add("sim_robot")
        os.kill(emulator.pid, signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        try:
            took = _seconds_until(operator, "DAMPING")
        finally:
            if how == "frozen":
                os.kill(emulator.pid, signal.SIGCONT)
        print(f"emulator {how}: DAMPING after {took * 1000:.0f} ms")
        # two policy periods plus the state timeout, plus the ~/state message's own trip (< 10 ms on loopback)
        assert took <= 2 * POLICY_PERIOD_S + STATE_TIMEOUT_S + 0.01


def test_emulator_damps_when_commands_stop(ros_domain):
    with ros_nodes(Sim2SimConfig(domain_id=ros_domain)) as operator:
        _walking(operator)
        assert operator.await_diagnostics("mode", 3.0)["mode"] == "pd"
        _, policy_node, _ = operator.children[1]
        operator.expected_exits.add("policy_node")
        policy_node.send_signal(signal.SIGKILL)
        stopped = time.monotonic()
        deadline = stopped + 3.0
        while time.monotonic() < deadline:
            if operator.await_diagnostics("mode", 3.0)["mode"] == "damping":
                break
            time.sleep(0.05)
        # the emulator's diagnostics come about once a second: the bound is its command timeout plus one period
        assert operator.await_diagnostics("mode", 3.0)["mode"] == "damping"
        assert time.monotonic() - stopped <= 0.1 + 1.2


def test_sim2sim_never_joins_this_shells_domain_or_inherited_dds_settings(monkeypatch):
    """A robot may listen on the shell's domain: the simulated policy must not reach it."""
    from robot_io import sim2sim

    monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    monkeypatch.setenv("ROS_STATIC_PEERS", "192.168.1.10")
    chosen = set()
    for _ in range(300):
        sim2sim._use_private_ros_environment(None)
        chosen.add(os.environ["ROS_DOMAIN_ID"])
        assert "ROS_STATIC_PEERS" not in os.environ
        monkeypatch.setenv("ROS_DOMAIN_ID", "42")
    assert "42" not in chosen and "0" not in chosen and len(chosen) > 50
    with pytest.raises(sim2sim.Sim2SimError, match="0 is where robots talk"):
        sim2sim._use_private_ros_environment(0)
