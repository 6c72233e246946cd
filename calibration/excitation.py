"""A safe excitation for system identification: per-joint chirps around the standing pose, within the limits.

Every joint sweeps a sine from f0_hz to f1_hz (a logarithmic chirp), each joint with its own phase so that no two
move in lockstep, faded in and out over `ramp_s`. The amplitude is cut where the standing pose is near a joint
limit (keeping `limit_margin_rad` clear), and falls as 1/f once the sweep would pass `max_speed_rad_s`: low
frequencies move far, high ones fast, and the target never outruns the policy node's per-tick step limit.

A second phase of `feedforward_s` holds the standing targets and sweeps only the velocity target dq* (the same
chirp, `feedforward_rad_s` peak). The drivers' kd multiplies (dq* - dq) while the joint's own damping multiplies
dq: while the position chirp runs, dq follows dq* and the two are nearly indistinguishable (a fit trades one for
the other); the velocity-only phase moves the joint through kd alone. Its torque is small (kd * dq*, under 2 N m
for the quadruped) and the position targets never leave the standing pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from sim.robot_spec import RobotSpec

from .errors import CalibrationError

MAX_PHASE_S = 300.0  # per phase; the node refuses tables over 900 s (it keeps the whole run in memory)


@dataclass(frozen=True)
class ExcitationConfig:
    duration_s: float = 20.0
    amplitude_rad: float = 0.3
    f0_hz: float = 0.3
    f1_hz: float = 3.0
    ramp_s: float = 1.0  # fade in and out: the targets start and end at the standing pose, at rest
    limit_margin_rad: float = 0.1
    max_speed_rad_s: float = 0.9  # the policy node's default step limit is 0.02 rad per 20 ms tick: 1 rad/s
    feedforward_s: float = 8.0  # the velocity-target-only phase after the position chirp; 0: none
    feedforward_rad_s: float = 2.0

    @property
    def total_s(self) -> float:
        return self.duration_s + self.feedforward_s

    def validate(self) -> None:
        checks = (
            ("duration_s", self.duration_s > 2.0 * self.ramp_s, f"must exceed twice ramp_s ({2 * self.ramp_s})"),
            ("duration_s", self.duration_s <= MAX_PHASE_S, f"must be at most {MAX_PHASE_S:.0f} s"),
            ("feedforward_s", self.feedforward_s <= MAX_PHASE_S, f"must be at most {MAX_PHASE_S:.0f} s"),
            ("amplitude_rad", 0.0 < self.amplitude_rad <= 0.6, "must be in (0, 0.6]"),
            ("f0_hz", 0.0 < self.f0_hz < self.f1_hz, "must be > 0 and below f1_hz"),
            ("f1_hz", self.f1_hz <= 10.0, "must be <= 10 (a policy period samples it)"),
            ("ramp_s", self.ramp_s > 0.0, "must be > 0"),
            ("limit_margin_rad", self.limit_margin_rad >= 0.0, "must be >= 0"),
            ("max_speed_rad_s", self.max_speed_rad_s > 0.0, "must be > 0"),
            (
                "feedforward_s",
                self.feedforward_s == 0.0 or self.feedforward_s > 2.0 * self.ramp_s,
                f"must be 0 or exceed twice ramp_s ({2 * self.ramp_s})",
            ),
            ("feedforward_rad_s", 0.0 <= self.feedforward_rad_s <= 5.0, "must be in [0, 5]"),
        )
        for name, ok, requirement in checks:
            if not ok:
                raise CalibrationError(f"excitation {name} {requirement}, got {getattr(self, name)!r}")


def joint_amplitudes_rad(spec: RobotSpec, model: mujoco.MjModel, config: ExcitationConfig) -> np.ndarray:
    """Per joint (spec order): the largest chirp amplitude that keeps the targets inside the joint limits."""
    amplitudes = np.full(spec.num_joints, config.amplitude_rad)
    for index, name in enumerate(spec.joint_names):
        joint = model.joint(name).id
        if model.jnt_limited[joint]:
            low, high = model.jnt_range[joint]
            standing = spec.default_joint_pos[index]
            room = min(standing - low, high - standing) - config.limit_margin_rad
            if room <= 0.0:
                raise CalibrationError(
                    f"joint {name}: the standing pose {standing:.3f} rad is within {config.limit_margin_rad} rad "
                    f"of its limits [{low:.3f}, {high:.3f}]; no room to excite it"
                )
            amplitudes[index] = min(amplitudes[index], room)
    return amplitudes


def excitation(
    spec: RobotSpec, model: mujoco.MjModel, config: ExcitationConfig, times_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Targets q* (T, J) in rad and dq* (T, J) in rad/s at `times_s` (from 0 to total_s), spec joint order."""
    config.validate()
    t = np.clip(np.asarray(times_s, dtype=float), 0.0, config.total_s)[:, None]
    limit = joint_amplitudes_rad(spec, model, config)[None, :]
    in_chirp = t <= config.duration_s
    t_chirp = np.minimum(t, config.duration_s)
    offsets, rates = _chirp(t_chirp, config.duration_s, limit, config.max_speed_rad_s, config)
    feedforward = np.zeros_like(rates)
    if config.feedforward_s > 0.0:
        t_feedforward = np.clip(t - config.duration_s, 0.0, config.feedforward_s)
        wave, _ = _chirp(t_feedforward, config.feedforward_s, np.ones_like(limit), math.inf, config)
        feedforward = config.feedforward_rad_s * wave
    targets = spec.default_joint_pos[None, :] + np.where(in_chirp, offsets, 0.0)
    return targets, np.where(in_chirp, rates, feedforward)


def _chirp(
    t: np.ndarray, duration_s: float, limit: np.ndarray, max_speed_rad_s: float, config: ExcitationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The faded log chirp over duration_s (amplitude min(limit, speed cap)) and its time derivative."""
    phases = 2.0 * math.pi * np.arange(limit.shape[1])[None, :] / limit.shape[1]
    rate = math.log(config.f1_hz / config.f0_hz) / duration_s
    # logarithmic chirp: frequency f0 e^{rate t}, phase 2 pi f0 (e^{rate t} - 1) / rate
    phase = 2.0 * math.pi * config.f0_hz * (np.exp(rate * t) - 1.0) / rate + phases
    phase_rate = 2.0 * math.pi * config.f0_hz * np.exp(rate * t)
    # 1/f above the speed cap (the 1.3 leaves room for the fade's and the phase offset's share of the speed)
    speed_capped = max_speed_rad_s / (1.3 * phase_rate)
    amplitude = np.minimum(limit, speed_capped)
    amplitude_rate = np.where(speed_capped < limit, -rate * speed_capped, 0.0)
    fade, fade_rate = _fade(t, duration_s, config.ramp_s)
    wave = np.sin(phase)  # the fade starts and ends it at 0
    wave_rate = np.cos(phase) * phase_rate
    values = amplitude * fade * wave
    rates = amplitude_rate * fade * wave + amplitude * (fade_rate * wave + fade * wave_rate)
    return values, rates


def _fade(t: np.ndarray, duration_s: float, ramp_s: float) -> tuple[np.ndarray, np.ndarray]:
    """A smooth 0 -> 1 -> 0 envelope (cosine ramps of ramp_s) and its time derivative."""
    up = np.clip(t / ramp_s, 0.0, 1.0)
    down = np.clip((duration_s - t) / ramp_s, 0.0, 1.0)
    ramp = np.minimum(up, down)
    fade = 0.5 - 0.5 * np.cos(math.pi * ramp)
    slope = np.where(up < down, 1.0, -1.0) / ramp_s * ((ramp > 0.0) & (ramp < 1.0))
    return fade, 0.5 * math.pi * np.sin(math.pi * ramp) * slope
