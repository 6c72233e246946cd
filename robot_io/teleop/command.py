"""What every teleop device produces, whatever its hardware: one `TeleopReading` per poll.

Arm: a normalized end-effector delta [dx, dy, dz, droll, dpitch, dyaw] in [-1, 1] (robot base frame,
ROS axis convention: x forward, y left, z up; rotations about those axes) plus a gripper command in
[0, 1] (0 open, 1 closed). `sim.arm_ik.ArmDeltaLimits` turns it into metres and radians per control step.
Quadruped: a normalized twist [vx, vy, yaw_rate] in [-1, 1], scaled by `TwistLimits` for /cmd_vel.
Recorder keys (`n`, `r`, `q`, space, `s`) arrive as `SessionEvents`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class SessionEvents:
    """Recorder controls pressed since the previous poll."""

    next_episode: bool = False  # `n`: commit this episode, start the next
    rerecord: bool = False  # `r`: discard this episode, record it again
    stop: bool = False  # `q`: commit nothing more, stop
    toggle_intervention: bool = False  # space: a human takes over from (or hands back to) the policy
    mark_success: bool = False  # `s`: the operator declares this episode a success

    def any(self) -> bool:
        return self.next_episode or self.rerecord or self.stop or self.toggle_intervention or self.mark_success


@dataclass
class TeleopReading:
    """One poll of a device: arm delta, gripper, twist and recorder events."""

    arm_delta: np.ndarray = field(default_factory=lambda: np.zeros(6))  # [dx, dy, dz, droll, dpitch, dyaw] in [-1, 1]
    gripper: float = 0.0  # 0 open .. 1 closed
    twist: np.ndarray = field(default_factory=lambda: np.zeros(3))  # [vx, vy, yaw_rate] in [-1, 1]
    events: SessionEvents = field(default_factory=SessionEvents)

    def clipped(self) -> TeleopReading:
        """The same reading with every axis inside its range (devices may overshoot, e.g. diagonal keys)."""
        return TeleopReading(
            arm_delta=np.clip(self.arm_delta, -1.0, 1.0),
            gripper=float(np.clip(self.gripper, 0.0, 1.0)),
            twist=np.clip(self.twist, -1.0, 1.0),
            events=self.events,
        )


class TeleopDevice(Protocol):
    """Anything that can be polled at the control rate: keyboard, gamepad, SpaceMouse, a scripted expert."""

    def poll(self) -> TeleopReading:
        """The device's state now (never blocks longer than a few ms)."""
        ...

    def close(self) -> None:
        """Give the hardware (terminal mode, device handle) back."""
        ...


@dataclass
class TwistLimits:
    """Normalized twist -> /cmd_vel (m/s, m/s, rad/s)."""

    max_vx_m_s: float = 1.0
    max_vy_m_s: float = 0.5
    max_yaw_rate_rad_s: float = 1.0

    def scale(self, twist: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(twist, dtype=np.float64), -1.0, 1.0)
        return clipped * np.array([self.max_vx_m_s, self.max_vy_m_s, self.max_yaw_rate_rad_s])
