"""`make_device`: each kind opens its device or says clearly why it cannot (unknown kind, no hardware, no library)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import pytest

from robot_io.teleop.command import TeleopReading
from robot_io.teleop.devices import DEVICE_KINDS, TeleopDeviceError, make_device
from robot_io.teleop.keyboard import KeyboardTeleop
from sim.errors import SimrealError


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_an_unknown_kind_names_itself_and_the_known_kinds():
    with pytest.raises(
        TeleopDeviceError, match="unknown teleop device 'joystick'; known kinds: keyboard, gamepad, spacemouse"
    ):
        make_device("joystick")


def test_device_errors_are_user_errors_the_cli_prints_as_one_line():
    assert issubclass(TeleopDeviceError, SimrealError)


def test_the_keyboard_on_a_terminal_polls_readings(terminal):
    device = make_device("keyboard", fd=terminal[1])
    try:
        assert isinstance(device, KeyboardTeleop)
        os.write(terminal[0], b"u ")
        reading = device.poll()
        assert isinstance(reading, TeleopReading)
        np.testing.assert_array_equal(reading.arm_delta, [0, 0, 1, 0, 0, 0])
        assert reading.events.toggle_intervention
    finally:
        device.close()


def test_the_keyboard_without_a_terminal():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(TeleopDeviceError, match="keyboard teleop reads a terminal"):
            make_device("keyboard", fd=read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_gamepad_without_input_devices(tmp_path):
    with pytest.raises(TeleopDeviceError, match=r"no gamepad: .*input does not exist"):
        make_device("gamepad", input_dir=str(tmp_path / "input"))


def test_a_gamepad_through_pygame_without_joysticks():
    with pytest.raises(TeleopDeviceError, match=r"no gamepad: pygame \(SDL\) sees 0 joysticks"):
        make_device("gamepad", backend="pygame")


def test_a_spacemouse_without_hardware_or_hidapi():
    with pytest.raises(TeleopDeviceError, match=r"hidapi|no SpaceMouse"):
        make_device("spacemouse", recorder_keys=False)


def test_every_known_kind_is_dispatched():
    assert DEVICE_KINDS == ("keyboard", "gamepad", "spacemouse")
