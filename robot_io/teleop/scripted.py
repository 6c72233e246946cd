"""Scripted devices: a programmed pick-and-lift expert, and the replay of recorded readings.

Both are `TeleopDevice`s: they emit the same normalized readings a person's device does, so their
demonstrations go through exactly the IK, limits and recorder a human's go through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from robot_io.teleop.arm_ik import quat_to_matrix
from robot_io.teleop.command import ArmDeltaLimits, SessionEvents, TeleopReading

APPROACH_HEIGHT_M = 0.10  # above the cube's centre, before descending
LIFT_TO_Z_M = 0.19  # the cube's centre is lifted to this height above the table (the task asks 10 cm up)
GRIPPER_CLOSED_ON_CUBE_M = 0.03  # finger opening (0.04 open) below which the fingers hold the cube
PHASES = ("approach", "descend", "close", "lift", "hold")


def _yaw(quat_wxyz: np.ndarray) -> float:
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _wrap_quarter_turn(angle_rad: float) -> float:
    """The same grasp direction within (-45, 45] degrees: a cube looks the same every quarter turn."""
    return (angle_rad + math.pi / 4) % (math.pi / 2) - math.pi / 4


class ScriptedLiftExpert:
    """Above the cube with the fingers across two faces, down, close, lift, hold."""

    def __init__(self, limits: ArmDeltaLimits | None = None, speed_m_s: float = 0.35, control_dt_s: float = 0.02):
        self.limits = limits or ArmDeltaLimits()
        self.speed_m_s, self.dt_s = speed_m_s, control_dt_s
        self.rng = np.random.default_rng(0)
        self.reset(self.rng)

    def reset(self, rng: np.random.Generator) -> None:
        """A new episode; small random variations of the waypoints and speed make demonstrations differ."""
        self.rng = rng
        self.phase, self.phase_steps = "approach", 0
        self.finger_opening_m = 0.04
        self.grasp_offset_m = np.array([*rng.uniform(-0.004, 0.004, 2), rng.uniform(-0.004, 0.004)])
        self.speed_scale = rng.uniform(0.85, 1.15)
        self.finger_yaw_goal_rad: float | None = None  # chosen once: a goal near +-45 degrees must not flip
        self._state: tuple[np.ndarray, ...] | None = None

    def observe(self, ee_pos_b, ee_quat_b, object_pos_b, object_quat_b, finger_opening_m: float = 0.04) -> None:
        """The state the expert decides from; everything it uses is in the task's policy observation, so a
        policy cloned from it is not asked to guess hidden state (phase timers, remembered positions)."""
        self._state = tuple(np.asarray(v, dtype=np.float64) for v in (ee_pos_b, ee_quat_b, object_pos_b, object_quat_b))
        self.finger_opening_m = float(finger_opening_m)

    def poll(self) -> TeleopReading:
        if self._state is None:
            return TeleopReading()
        ee_pos, ee_quat, object_pos, object_quat = self._state
        target, gripper = self._waypoint(object_pos)
        rotation_error = self._orientation_error(ee_quat, object_quat)
        gain = 0.3 if self.phase in ("approach", "descend") else 0.0  # hold the grasp orientation once closing
        rotation = np.clip(gain * rotation_error, -0.1, 0.1)
        position_error = target - ee_pos
        self._advance(float(np.linalg.norm(position_error)), float(np.linalg.norm(rotation_error)))
        step_m = self.speed_m_s * self.speed_scale * self.dt_s
        distance = np.linalg.norm(position_error)
        move = position_error if distance <= step_m else position_error * (step_m / distance)
        delta = np.concatenate([move / self.limits.max_translation_m, rotation / self.limits.max_rotation_rad])
        return TeleopReading(arm_delta=np.clip(delta, -1.0, 1.0), gripper=gripper, events=SessionEvents())

    def close(self) -> None:
        """Nothing to give back."""

    # ---- the plan ------------------------------------------------------------------------------------------

    def _waypoint(self, object_pos: np.ndarray) -> tuple[np.ndarray, float]:
        grasp = object_pos + self.grasp_offset_m
        if self.phase == "approach":
            return grasp + np.array([0.0, 0.0, APPROACH_HEIGHT_M]), 0.0
        if self.phase == "descend":
            return grasp, 0.0
        if self.phase == "close":
            return grasp, 1.0
        return np.array([grasp[0], grasp[1], LIFT_TO_Z_M]), 1.0

    def _advance(self, position_error_m: float, rotation_error_rad: float) -> None:
        self.phase_steps += 1
        arrived = position_error_m < 0.008 and rotation_error_rad < 0.08
        if self.phase == "approach" and arrived:
            self._next("descend")
        elif self.phase == "descend" and position_error_m < 0.006:
            self._next("close")
        elif self.phase == "close" and self.finger_opening_m < GRIPPER_CLOSED_ON_CUBE_M and self.phase_steps >= 5:
            self._next("lift")
        elif self.phase == "lift" and position_error_m < 0.01:
            self._next("hold")

    def _next(self, phase: str) -> None:
        self.phase, self.phase_steps = phase, 0

    def _orientation_error(self, ee_quat: np.ndarray, object_quat: np.ndarray) -> np.ndarray:
        """Rotation vector (base frame, rad) that points the fingers down and across two faces of the cube."""
        rotation = quat_to_matrix(ee_quat)
        down_error = np.cross(rotation[:, 2], [0.0, 0.0, -1.0])  # the ee z axis (along the fingers) points down
        finger_axis = rotation[:, 1]
        finger_yaw = math.atan2(finger_axis[1], finger_axis[0])
        if self.finger_yaw_goal_rad is None:  # the face pair needing the smallest turn
            self.finger_yaw_goal_rad = finger_yaw + _wrap_quarter_turn(_yaw(object_quat) - finger_yaw)
        yaw_error = (self.finger_yaw_goal_rad - finger_yaw + math.pi) % (2 * math.pi) - math.pi
        return down_error + np.array([0.0, 0.0, yaw_error])


class ReplayDevice:
    """Plays back recorded readings (rows of [dx, dy, dz, droll, dpitch, dyaw, gripper]), then stops."""

    def __init__(self, actions: Sequence[Sequence[float]] | np.ndarray) -> None:
        self.actions = np.asarray(actions, dtype=np.float64).reshape(-1, 7)
        self.step = 0

    def poll(self) -> TeleopReading:
        if self.step >= len(self.actions):
            return TeleopReading(events=SessionEvents(next_episode=True))
        row = self.actions[self.step]
        self.step += 1
        return TeleopReading(arm_delta=row[:6].copy(), gripper=float(row[6]))

    def close(self) -> None:
        """Nothing to give back."""
