"""Scripted devices: programmed pick-and-lift and reach experts, and the replay of recorded readings.

Both are `TeleopDevice`s: they emit the same normalized readings a person's device does, so their
demonstrations go through exactly the scaling, IK, limits and recorder a human's go through.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robot_io.teleop.command import SessionEvents, TeleopReading
from sim.arm_ik import ArmDeltaLimits, quat_to_matrix, rotation_error_vector, rotation_vector_matrix

PAD_REACH_BELOW_EE_M = 0.009  # the finger pads' lower edge is this far below the ee site
TABLE_CLEARANCE_M = 0.006  # ... and it stays this far above the table when grasping
FINGER_CLOSED_ON_NOTHING_M = 0.005  # a finger opening below this after closing: the cube was missed
CUBE_SLIPPED_M = 0.03  # the cube fell this far behind the hand while lifting: the grasp failed
DESCEND_XY_TOLERANCE_M = 0.005  # descend only while this well centred over the cube
SETTLED_SPEED_M_S = 0.05  # the ee has arrived once it is near its goal and this slow


@dataclass(frozen=True)
class LiftPlan:
    """One episode's waypoints and speeds; drawn anew at each reset so demonstrations differ."""

    approach_height_m: float  # ee above the cube's centre before descending
    grasp_offset_m: np.ndarray  # (3,) ee offset from the cube's centre when closing (z: below it, < 0)
    lift_height_m: float  # ee raised this far above the grasp height
    speed_m_s: float  # top ee speed in free space
    descend_speed_m_s: float  # top ee speed near the cube
    close_steps: int  # control steps the gripper closes for before lifting

    @staticmethod
    def sample(rng: np.random.Generator) -> LiftPlan:
        return LiftPlan(
            approach_height_m=float(rng.uniform(0.07, 0.11)),
            grasp_offset_m=np.array([*rng.uniform(-0.003, 0.003, 2), rng.uniform(-0.012, -0.004)]),
            lift_height_m=float(rng.uniform(0.14, 0.16)),
            speed_m_s=float(rng.uniform(0.3, 0.4)),
            descend_speed_m_s=float(rng.uniform(0.12, 0.18)),
            close_steps=int(rng.integers(12, 17)),
        )


def _yaw_of_x_axis(rotation: np.ndarray) -> float:
    return math.atan2(rotation[1, 0], rotation[0, 0])


def _wrap_quarter_turn(angle_rad: float) -> float:
    """The same angle within [-45, 45) degrees: a cube looks the same every quarter turn."""
    return (angle_rad + math.pi / 4) % (math.pi / 2) - math.pi / 4


def grasp_finger_yaw(finger_yaw_rad: float, cube_yaw_rad: float) -> float:
    """The finger yaw across one of the cube's face pairs that needs the smallest wrist turn from now."""
    return finger_yaw_rad + _wrap_quarter_turn(cube_yaw_rad - finger_yaw_rad)


def fingers_down_rotation(finger_yaw_rad: float) -> np.ndarray:
    """ee rotation (base frame) with the fingers pointing down (ee z = -z) and closing along yaw (ee y)."""
    finger_axis = np.array([math.cos(finger_yaw_rad), math.sin(finger_yaw_rad), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    return np.column_stack([np.cross(finger_axis, down), finger_axis, down])


def _limited(vector: np.ndarray, max_norm: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector if norm <= max_norm else vector * (max_norm / norm)


class LookAheadServo:
    """The experts' pose controller: each step asks for `gain` of the remaining ee error (at most a top
    speed), measured from where the lagging arm is already heading, `lead_s` along its observed velocity.

    The IK integrates these deltas on its joint targets and the servo lags the targets by 0.1-0.15 s:
    without the lead the lag made the hand overshoot by centimetres, and the wrist pitch (turned by the
    slow shoulder and elbow too) settled into a 0.4-s limit cycle.
    """

    def __init__(
        self,
        limits: ArmDeltaLimits | None = None,
        control_dt_s: float = 0.02,
        gain: float = 0.2,
        rotation_gain: float = 0.2,
        lead_s: float = 0.1,
        max_rotation_rad: float = 0.08,
    ) -> None:
        self.limits = limits or ArmDeltaLimits()
        self.control_dt_s, self.lead_s = control_dt_s, lead_s
        self.gain, self.rotation_gain, self.max_rotation_rad = gain, rotation_gain, max_rotation_rad

    def servo_delta(
        self,
        ee_pos_m: np.ndarray,
        ee_rotation: np.ndarray,
        velocity_m_s: np.ndarray,
        angular_velocity_rad_s: np.ndarray,
        goal_m: np.ndarray,
        goal_rotation: np.ndarray,
        speed_m_s: float,
    ) -> np.ndarray:
        """The normalized [dx, dy, dz, droll, dpitch, dyaw] toward the goal pose (base frame)."""
        ahead_m = ee_pos_m + self.lead_s * velocity_m_s
        translation_m = _limited(self.gain * (goal_m - ahead_m), speed_m_s * self.control_dt_s)
        ahead_rotation = rotation_vector_matrix(self.lead_s * angular_velocity_rad_s) @ ee_rotation
        rotation_error = rotation_error_vector(goal_rotation, ahead_rotation)
        rotation_rad = _limited(self.rotation_gain * rotation_error, self.max_rotation_rad)
        arm_delta = np.concatenate(
            [translation_m / self.limits.max_translation_m, rotation_rad / self.limits.max_rotation_rad]
        )
        return np.clip(arm_delta, -1.0, 1.0)


class ScriptedLiftExpert(LookAheadServo):
    """Above the cube with the fingers across two faces, down, close, lift about 15 cm, hold.

    The `LookAheadServo` on the observed ee pose, toward each phase's waypoint at the plan's speeds.
    A missed or slipped grasp opens the gripper and starts over from above the cube.
    """

    def __init__(self, rng: np.random.Generator | None = None, **servo) -> None:
        super().__init__(**servo)
        self.reset(rng or np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        """A new episode: a fresh plan from `rng`, back to the approach."""
        self.plan = LiftPlan.sample(rng)
        self.phase, self.phase_steps, self.attempts = "approach", 0, 1
        self.finger_yaw_goal_rad: float | None = None  # chosen once per attempt: near +-45 deg it must not flip
        self.grasp_ee_m: np.ndarray | None = None  # where the hand closed; the lift goes straight up from it
        self.cube_below_ee_m = 0.0  # the cube centre's height below the ee at the grasp
        self._observation: tuple[np.ndarray, ...] | None = None
        self._ee_velocity_m_s = np.zeros(3)
        self._ee_angular_velocity_rad_s = np.zeros(3)
        self._finger_opening_m: float | None = None
        self._object_size_m: float | None = None

    def observe(
        self,
        ee_pos_b: np.ndarray,
        ee_quat_b: np.ndarray,
        object_pos_b: np.ndarray | None,
        object_quat_b: np.ndarray | None,
        finger_opening_m: float | None = None,
        object_size_m: float | None = None,
    ) -> None:
        """The state the next poll decides from (robot base frame; quaternions w, x, y, z); once per step.

        finger_opening_m (the finger joint, 0 closed .. 0.04 open) lets it notice a missed grasp early;
        object_size_m (edge length) sets the grasp depth; without them it waits and grasps by the centre.
        """
        if object_pos_b is None or object_quat_b is None:
            self._observation = None
            return
        previous = self._observation
        arrays = (ee_pos_b, ee_quat_b, object_pos_b, object_quat_b)
        self._observation = tuple(np.asarray(value, dtype=np.float64).copy() for value in arrays)
        if previous is not None:
            self._ee_velocity_m_s = (self._observation[0] - previous[0]) / self.control_dt_s
            turned = rotation_error_vector(quat_to_matrix(self._observation[1]), quat_to_matrix(previous[1]))
            self._ee_angular_velocity_rad_s = turned / self.control_dt_s
        self._finger_opening_m = None if finger_opening_m is None else float(finger_opening_m)
        self._object_size_m = None if object_size_m is None else float(object_size_m)

    def poll(self) -> TeleopReading:
        if self._observation is None:  # nothing to pick: stand still, gripper open
            return TeleopReading()
        ee_pos, ee_quat, object_pos, object_quat = self._observation
        ee_rotation, object_rotation = quat_to_matrix(ee_quat), quat_to_matrix(object_quat)
        if self.finger_yaw_goal_rad is None:
            self.finger_yaw_goal_rad = self._grasp_yaw(ee_rotation, object_rotation)
        self._advance(ee_pos, object_pos)
        if self.finger_yaw_goal_rad is None:  # a retry chooses it again
            self.finger_yaw_goal_rad = self._grasp_yaw(ee_rotation, object_rotation)
        goal_m, gripper, speed_m_s = self._waypoint(ee_pos, object_pos)
        arm_delta = self.servo_delta(
            ee_pos,
            ee_rotation,
            self._ee_velocity_m_s,
            self._ee_angular_velocity_rad_s,
            goal_m,
            fingers_down_rotation(self.finger_yaw_goal_rad),
            speed_m_s,
        )
        return TeleopReading(arm_delta=arm_delta, gripper=gripper, events=SessionEvents())

    def close(self) -> None:
        """Nothing to give back."""

    # ---- the plan ------------------------------------------------------------------------------------------

    def _grasp_yaw(self, ee_rotation: np.ndarray, object_rotation: np.ndarray) -> float:
        finger_yaw_rad = math.atan2(ee_rotation[1, 1], ee_rotation[0, 1])  # ee y: the axis the fingers close along
        return grasp_finger_yaw(finger_yaw_rad, _yaw_of_x_axis(object_rotation))

    def _grasp_point(self, object_pos: np.ndarray) -> np.ndarray:
        """ee position to close at: below the cube's centre (deeper for a known size), pads off the table."""
        offset = self.plan.grasp_offset_m.copy()
        if self._object_size_m is not None:
            offset[2] = min(offset[2], -0.25 * self._object_size_m)
        grasp = object_pos + offset
        grasp[2] = max(grasp[2], PAD_REACH_BELOW_EE_M + TABLE_CLEARANCE_M)
        return grasp

    def _waypoint(self, ee_pos: np.ndarray, object_pos: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(ee goal m, gripper command, top speed m/s) of the current phase."""
        plan = self.plan
        if self.phase == "approach":
            above = self._grasp_point(object_pos) + np.array([0.0, 0.0, plan.approach_height_m])
            return above, 0.0, plan.speed_m_s
        if self.phase == "descend":
            grasp = self._grasp_point(object_pos)
            if np.linalg.norm(grasp[:2] - ee_pos[:2]) > DESCEND_XY_TOLERANCE_M:  # a pad would land on the cube
                grasp[2] = max(grasp[2], ee_pos[2])
            return grasp, 0.0, plan.descend_speed_m_s
        assert self.grasp_ee_m is not None
        if self.phase == "close":
            return self.grasp_ee_m, 1.0, plan.descend_speed_m_s
        return self.grasp_ee_m + np.array([0.0, 0.0, plan.lift_height_m]), 1.0, plan.speed_m_s  # lift, hold

    def _advance(self, ee_pos: np.ndarray, object_pos: np.ndarray) -> None:
        """Move to the next phase when this one's goal is reached; start over when the grasp failed."""
        self.phase_steps += 1
        goal_m, _, _ = self._waypoint(ee_pos, object_pos)
        error_m = float(np.linalg.norm(goal_m - ee_pos))
        settled = float(np.linalg.norm(self._ee_velocity_m_s)) < SETTLED_SPEED_M_S
        if self.phase == "approach" and error_m < 0.008 and settled and self._yaw_aligned(self._observation[1]):
            self._next("descend")
        elif self.phase == "descend" and (error_m < 0.005 or (self.phase_steps > 60 and error_m < 0.012)):
            self.grasp_ee_m = self._grasp_point(object_pos)
            self.cube_below_ee_m = float(ee_pos[2] - object_pos[2])
            self._next("close")
        elif self.phase == "descend" and self.phase_steps > 90:  # stuck on the cube's top: try again
            self._retry()
        elif self.phase == "close" and self.phase_steps >= self.plan.close_steps:
            if self._finger_opening_m is not None and self._finger_opening_m < FINGER_CLOSED_ON_NOTHING_M:
                self._retry()  # closed on nothing
            else:
                self._next("lift")
        elif self.phase in ("lift", "hold") and ee_pos[2] - object_pos[2] - self.cube_below_ee_m > CUBE_SLIPPED_M:
            self._retry()
        elif self.phase == "lift" and error_m < 0.01:
            self._next("hold")

    def _yaw_aligned(self, ee_quat: np.ndarray) -> bool:
        goal = fingers_down_rotation(self.finger_yaw_goal_rad)
        return float(np.linalg.norm(rotation_error_vector(goal, quat_to_matrix(ee_quat)))) < 0.05

    def _retry(self) -> None:
        """Open, back above the cube, with the grasp yaw chosen again (the cube may have turned)."""
        self.attempts += 1
        self.finger_yaw_goal_rad = None
        self._next("approach")

    def _next(self, phase: str) -> None:
        self.phase, self.phase_steps = phase, 0


class ScriptedReachExpert(LookAheadServo):
    """Moves the end effector to the task's target pose (arm-reach) with the `LookAheadServo`, gripper open.
    `observe` takes the target where the lift expert takes the cube."""

    def __init__(self, speed_m_s: float = 0.35, **servo) -> None:
        super().__init__(**servo)
        self.speed_m_s = speed_m_s
        self.reset(np.random.default_rng(0))

    def reset(self, rng: np.random.Generator) -> None:
        """A new episode (the reach plan has nothing random: `rng` is for the device interface)."""
        self._pose: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def observe(
        self,
        ee_pos_b: np.ndarray,
        ee_quat_b: np.ndarray,
        target_pos_b: np.ndarray | None,
        target_quat_b: np.ndarray | None,
        finger_opening_m: float | None = None,
    ) -> None:
        """The ee and target poses (base frame; quaternions w, x, y, z); once per step."""
        self._previous = None if self._pose is None else self._pose[:2]
        if target_pos_b is None or target_quat_b is None:
            self._pose = None
            return
        self._pose = tuple(
            np.asarray(v, dtype=np.float64).copy() for v in (ee_pos_b, ee_quat_b, target_pos_b, target_quat_b)
        )

    def poll(self) -> TeleopReading:
        if self._pose is None:
            return TeleopReading()
        ee_pos, ee_quat, target_pos, target_quat = self._pose
        ee_rotation = quat_to_matrix(ee_quat)
        velocity, angular_velocity = np.zeros(3), np.zeros(3)
        if self._previous is not None:
            velocity = (ee_pos - self._previous[0]) / self.control_dt_s
            turned = rotation_error_vector(ee_rotation, quat_to_matrix(self._previous[1]))
            angular_velocity = turned / self.control_dt_s
        arm_delta = self.servo_delta(
            ee_pos, ee_rotation, velocity, angular_velocity, target_pos, quat_to_matrix(target_quat), self.speed_m_s
        )
        return TeleopReading(arm_delta=arm_delta, gripper=0.0, events=SessionEvents())

    def close(self) -> None:
        """Nothing to give back."""


def scripted_expert(task: str) -> ScriptedLiftExpert | ScriptedReachExpert:
    """The programmed demonstrator of an arm task."""
    return ScriptedReachExpert() if task == "arm-reach" else ScriptedLiftExpert()


class ReplayDevice:
    """Plays back recorded readings, one per poll; past the end it asks for the next episode.

    `readings`: TeleopReadings, or rows of [dx, dy, dz, droll, dpitch, dyaw, gripper] (a dataset's `action`).
    """

    def __init__(self, readings: Sequence[TeleopReading] | Sequence[Sequence[float]] | np.ndarray) -> None:
        self.readings = [_as_reading(reading) for reading in readings]
        self.index = 0

    @property
    def finished(self) -> bool:
        return self.index >= len(self.readings)

    def rewind(self) -> None:
        """Play from the first reading again."""
        self.index = 0

    def poll(self) -> TeleopReading:
        if self.finished:
            return TeleopReading(gripper=self._last_gripper(), events=SessionEvents(next_episode=True))
        reading = self.readings[self.index]
        self.index += 1
        return TeleopReading(arm_delta=reading.arm_delta.copy(), gripper=reading.gripper, events=SessionEvents())

    def close(self) -> None:
        """Nothing to give back."""

    def _last_gripper(self) -> float:
        """Past the end the gripper stays as it was: a held cube must not be dropped."""
        return self.readings[-1].gripper if self.readings else 0.0


def _as_reading(reading: TeleopReading | Sequence[float] | np.ndarray) -> TeleopReading:
    if isinstance(reading, TeleopReading):
        return TeleopReading(arm_delta=np.asarray(reading.arm_delta, dtype=np.float64), gripper=reading.gripper)
    row = np.asarray(reading, dtype=np.float64)
    if row.shape != (7,):
        raise ValueError(f"a replayed action is [dx, dy, dz, droll, dpitch, dyaw, gripper], got shape {row.shape}")
    return TeleopReading(arm_delta=row[:6].copy(), gripper=float(row[6]))
