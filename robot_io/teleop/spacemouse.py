"""SpaceMouse teleop through pyspacemouse (raw HID via easyhid and the system's hidapi; no 3Dconnexion driver).

pyspacemouse is opened in its HID convention (the USB HID usage tables: +x right, +y toward the user, +z down,
roll / pitch / yaw right-handed about x / y / z), and turned into the ROS base frame here, with the
operator behind the robot facing its +x (pushing the cap away from you moves the gripper forward):

    ROS                              HID (pyspacemouse AxisConvention.HID)
    dx      forward (push away)      -y
    dy      left    (push left)      -x
    dz      up      (pull up)        -z
    droll   about x (tilt right)     -pitch  (rotation about HID y, which points backwards)
    dpitch  about y (tilt forward)   -roll   (rotation about HID x, which points right)
    dyaw    about z (twist ccw)      -yaw    (rotation about HID z, which points down)

This is pyspacemouse's own AxisConvention.ROS (its default, LEGACY, swaps roll and pitch and has yaw
inverted); doing it here keeps the frame change in our code and tests. Quadruped: vx = dx, vy = dy,
yaw_rate = dyaw. Button `gripper_button` (default 0, LEFT on a SpaceNavigator / Compact / Wireless)
toggles the gripper; `intervention_button` (default 1, RIGHT) toggles intervention, each once per press.
The other recorder keys (n, r, s, q) come from the terminal when stdin is one (`open_spacemouse`).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

import numpy as np

from robot_io.teleop.command import SessionEvents, TeleopReading
from robot_io.teleop.devices import TeleopDeviceError
from robot_io.teleop.gamepad import dead_zone

DEAD_ZONE = 0.05  # of full scale: the cap's rest noise is a few raw counts of ~350
MAX_REPORTS_PER_POLL = 64  # HID reports arrive at up to ~125 Hz, one axis group each; drain them all per poll
# HID axis each ROS axis reads, and its sign (see the module docstring)
HID_TO_ROS = (("y", -1.0), ("x", -1.0), ("z", -1.0), ("pitch", -1.0), ("roll", -1.0), ("yaw", -1.0))


class SpaceMouseReader(Protocol):
    """What `SpaceMouseTeleop` needs of a pyspacemouse device: `read()` one report's state, `close()`."""

    def read(self) -> Any: ...

    def close(self) -> None: ...


def arm_delta_from_hid(state: Any, zone: float = DEAD_ZONE) -> np.ndarray:
    """[dx, dy, dz, droll, dpitch, dyaw] in the ROS frame from a pyspacemouse state in the HID convention."""
    return np.array([dead_zone(sign * getattr(state, axis), zone) for axis, sign in HID_TO_ROS]) + 0.0


class SpaceMouseTeleop:
    """A `TeleopDevice` from a pyspacemouse device opened in the HID convention (see `open_spacemouse`)."""

    def __init__(
        self,
        mouse: SpaceMouseReader,
        dead_zone: float = DEAD_ZONE,
        gripper_button: int = 0,
        intervention_button: int = 1,
        recorder_keys: Any = None,
    ) -> None:
        self.mouse, self.dead_zone = mouse, dead_zone
        self.gripper_button, self.intervention_button = gripper_button, intervention_button
        self.recorder_keys = recorder_keys  # a KeyboardTeleop whose events (not motion) join ours, or None
        self._buttons_down: list[int] = []
        self._gripper_closed = False
        self._events = SessionEvents()

    def poll(self) -> TeleopReading:
        state = self._drain()
        arm_delta = arm_delta_from_hid(state, self.dead_zone)
        events, self._events = self._events, SessionEvents()
        if self.recorder_keys is not None:
            events = _either(events, self.recorder_keys.poll().events)
        return TeleopReading(
            arm_delta=arm_delta,
            gripper=1.0 if self._gripper_closed else 0.0,
            twist=arm_delta[[0, 1, 5]],
            events=events,
        )

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """A new episode: the gripper open."""
        self._gripper_closed = False

    def close(self) -> None:
        self.mouse.close()
        if self.recorder_keys is not None:
            self.recorder_keys.close()

    def _drain(self) -> Any:
        """Read every report waiting (each updates part of the state), noting button presses as they come."""
        state = self.mouse.read()
        self._note_presses(list(state.buttons))
        for _ in range(MAX_REPORTS_PER_POLL):
            before_s = state.t
            state = self.mouse.read()
            if state.t == before_s:  # no new report: pyspacemouse stamps t only when one is processed
                break
            self._note_presses(list(state.buttons))
        return state

    def _note_presses(self, buttons: list[int]) -> None:
        """Button edges 0 -> 1 since the previous report: toggles fire once per press, not while held."""
        previous = self._buttons_down + [0] * (len(buttons) - len(self._buttons_down))
        for index, (was, now) in enumerate(zip(previous, buttons, strict=False)):
            if now and not was:
                self._press(index)
        self._buttons_down = buttons

    def _press(self, index: int) -> None:
        if index == self.gripper_button:
            self._gripper_closed = not self._gripper_closed
        elif index == self.intervention_button:
            self._events.toggle_intervention = True


def _either(a: SessionEvents, b: SessionEvents) -> SessionEvents:
    return SessionEvents(**{name: getattr(a, name) or getattr(b, name) for name in vars(a)})


def open_spacemouse(device: str | None = None, recorder_keys: bool = True, **options: Any) -> SpaceMouseTeleop:
    """The first connected SpaceMouse (or the pyspacemouse device name given), in the HID convention.

    With `recorder_keys` and a terminal on stdin, the terminal's n / r / s / q / space keys are read too.
    """
    try:
        import pyspacemouse
    except ImportError as error:
        raise TeleopDeviceError(
            "the SpaceMouse needs pyspacemouse: pip install pyspacemouse==2.1.0 "
            "(and the system's hidapi: apt install libhidapi-hidraw0)"
        ) from error
    try:
        connected = pyspacemouse.get_connected_devices()
    except RuntimeError as error:  # easyhid found no hidapi library to call
        raise TeleopDeviceError(
            "the SpaceMouse needs the system's hidapi library (pyspacemouse reads raw HID through it): "
            "apt install libhidapi-hidraw0"
        ) from error
    if not connected:
        raise TeleopDeviceError(
            "no SpaceMouse: no supported 3Dconnexion device among the HID devices (plugged in? readable "
            "/dev/hidraw*? a udev rule or the 'plugdev' group gives access)"
        )
    try:
        mouse = pyspacemouse.open(device=device or connected[0], axis_convention=pyspacemouse.AxisConvention.HID)
    except (RuntimeError, ValueError) as error:
        raise TeleopDeviceError(f"cannot open the SpaceMouse {device or connected[0]!r}: {error}") from error
    keys = None
    if recorder_keys and sys.stdin.isatty():
        from robot_io.teleop.keyboard import KeyboardTeleop

        keys = KeyboardTeleop()
    return SpaceMouseTeleop(mouse, recorder_keys=keys, **options)
