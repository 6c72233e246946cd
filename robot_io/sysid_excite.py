"""`simreal sysid excite` on the emulator: hang the robot, stand it up, play the excitation, collect the node's log.

The emulator runs with `fixed_base` (the robot on a test stand) and any hidden reality (kp_scale, kd_scale,
latency_ms, ...); the policy node runs the robot's bundle with `excitation_file` and `sysid_log`. The operator
does what a person at the stand would: ~/stand_up, wait for STANDING, ~/excite, wait for the log, ~/sit_down.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from robot_io.excitation import write_log
from robot_io.sim2sim import Sim2SimConfig, Sim2SimError, ros_nodes

LOG_WAIT_MARGIN_S = 15.0  # beyond the table's duration: stand-up, the log write, DDS start-up


def write_excitation_table(path: Path, joint_names: list[str], time_s: np.ndarray, q_rad, dq_rad_s) -> None:
    """The table the policy node plays (robot_io/excitation.py), written atomically."""
    arrays = {
        "time_s": np.asarray(time_s, dtype=float),
        "joint_names": np.array(joint_names),
        "q_target_rad": np.asarray(q_rad, dtype=float),
        "dq_target_rad_s": np.asarray(dq_rad_s, dtype=float),
    }
    write_log(path, arrays)


def excite_on_emulator(config: Sim2SimConfig, table: Path, log: Path, duration_s: float) -> dict[str, object]:
    """Run the excitation through the policy node on a hung emulated robot; a summary of the run."""
    log.unlink(missing_ok=True)  # a stale log must not pass for this run's
    files = {"excitation_file": table.resolve(), "sysid_log": log.resolve()}
    config = dataclasses.replace(
        config,
        reality={**config.reality, "fixed_base": True},
        policy_overrides={**config.policy_overrides, **files},
    )
    started = time.monotonic()
    with ros_nodes(config) as operator:
        operator.await_ready(config.startup_timeout_s)
        operator.call("stand_up")
        operator.await_state("STANDING", 15.0)
        operator.call("excite")
        status = _await_excitation_end(operator, duration_s + LOG_WAIT_MARGIN_S)
        sat_down = operator.sit_down()
    if not status.endswith("log written") or not log.is_file():
        raise Sim2SimError(f"the excitation did not complete: {status}")
    return {"log": str(log), "excitation": status, "sat_down": sat_down, "wall_s": round(time.monotonic() - started, 1)}


def _await_excitation_end(operator, timeout_s: float) -> str:
    """The policy node's `excitation` diagnostic once it is no longer playing or writing."""
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        status = operator.await_diagnostics("excitation", timeout_s).get("excitation", "")
        if status not in ("idle", "playing", "writing"):
            return status
        time.sleep(0.2)
    raise Sim2SimError(f"the excitation did not end within {timeout_s:.0f} s (last status {status!r})")
