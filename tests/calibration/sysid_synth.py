"""Synthetic sysid logs for the tests: a stand-alone re-implementation of the emulator's semantics (not the fit's code).

The robot hangs (sim/hanging.py), MuJoCo's actuators are off and a PD torque goes through qfrc_applied each 1 ms
physics step, as robot_io/sim_robot.py's EmulatorCore.step does: a command published at t arrives at
t + transport, takes effect at the first physics step at or after arrival + latency, and is held until the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from calibration.excitation import ExcitationConfig, excitation
from sim.hanging import hanging_model
from sim.robot_spec import RobotSpec, joint_dof_ids, joint_qpos_ids


@dataclass(frozen=True)
class Reality:
    kp_scale: float = 0.8
    kd_scale: float = 1.5
    latency_s: float = 0.010
    transport_s: float = 0.0003
    command_period_s: float = 0.02
    command_jitter_s: float = 0.0005  # publish-time jitter of the 50 Hz timer
    noise_rad: float = 2e-4
    noise_rad_s: float = 5e-3
    duration_s: float = 20.0
    seed: int = 3


def synth_log(spec: RobotSpec, reality: Reality) -> dict[str, np.ndarray]:
    """The arrays of an npz sysid log of the hung robot under `reality`."""
    rng = np.random.default_rng(reality.seed)
    model = hanging_model(spec, 0.001)
    model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
    data = mujoco.MjData(model)
    qpos_ids, dof_ids = joint_qpos_ids(model, spec), joint_dof_ids(model, spec)
    data.qpos[qpos_ids] = spec.default_joint_pos
    mujoco.mj_forward(model, data)
    start_s = 0.5  # the clock of the log does not start at 0
    pre_s = 0.3  # the robot hangs still this long before the first command
    config = ExcitationConfig(duration_s=reality.duration_s)
    count = int(config.total_s / reality.command_period_s) + 1
    publish_s = start_s + pre_s + reality.command_period_s * np.arange(count)
    publish_s += rng.uniform(-reality.command_jitter_s, reality.command_jitter_s, count)
    q_target, dq_target = excitation(spec, model, config, publish_s - publish_s[0])
    due_s = publish_s + reality.transport_s + reality.latency_s
    kp = np.tile(spec.kp, (count, 1))
    kd = np.tile(spec.kd, (count, 1))
    steps = int((publish_s[-1] + 0.1 - start_s) / model.opt.timestep)
    times, qs, dqs = np.empty(steps), np.empty((steps, spec.num_joints)), np.empty((steps, spec.num_joints))
    active = -1
    for k in range(steps):
        now = start_s + k * model.opt.timestep
        while active + 1 < count and due_s[active + 1] <= now + 1e-12:
            active += 1
        mujoco.mj_step1(model, data)
        q = data.qpos[qpos_ids].copy()
        dq = data.qvel[dof_ids].copy()
        if active < 0:
            tau = -2.0 * dq  # the drives damp before the first command
        else:
            tau = reality.kp_scale * kp[active] * (q_target[active] - q)
            tau += reality.kd_scale * kd[active] * (dq_target[active] - dq)
        data.qfrc_applied[dof_ids] = np.clip(tau, -spec.effort_limit, spec.effort_limit)
        mujoco.mj_step2(model, data)
        times[k], qs[k], dqs[k] = now, q, dq
    shape = qs.shape
    return {
        "format": np.array("simreal-sysid-log-1"),
        "robot": np.array(spec.name),
        "joint_names": np.array(spec.joint_names),
        "fixed_base": np.array(True),
        "state_time_s": times + rng.uniform(0.0, 2e-5, steps),  # stamped microseconds after the step
        "q_rad": qs + rng.normal(0.0, reality.noise_rad, shape),
        "dq_rad_s": dqs + rng.normal(0.0, reality.noise_rad_s, shape),
        "command_time_s": publish_s,
        "q_target_rad": q_target,
        "dq_target_rad_s": dq_target,
        "tau_ff_nm": np.zeros_like(q_target),
        "kp": kp,
        "kd": kd,
    }


def save_log(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path
