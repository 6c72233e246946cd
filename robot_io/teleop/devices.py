"""`make_device(kind)`: a keyboard, gamepad or SpaceMouse behind the one `TeleopDevice` interface.

The device modules (and their hardware libraries) are imported only when asked for, so a machine
without pygame, evdev or pyspacemouse can still use the others.
"""

from __future__ import annotations

from typing import Any

from robot_io.teleop.command import TeleopDevice
from sim.errors import SimrealError

DEVICE_KINDS = ("keyboard", "gamepad", "spacemouse")


class TeleopDeviceError(SimrealError):
    """A device that cannot be opened or read (unknown kind, missing hardware or library); the message says why."""


def make_device(kind: str, **options: Any) -> TeleopDevice:
    """Open the device of that kind; `options` go to its constructor or opener (see each module)."""
    if kind == "keyboard":
        from robot_io.teleop.keyboard import open_keyboard

        return open_keyboard(**options)
    if kind == "gamepad":
        from robot_io.teleop.gamepad import open_gamepad

        return open_gamepad(**options)
    if kind == "spacemouse":
        from robot_io.teleop.spacemouse import open_spacemouse

        return open_spacemouse(**options)
    raise TeleopDeviceError(f"unknown teleop device {kind!r}; known kinds: {', '.join(DEVICE_KINDS)}")
