"""SpaceMouse mapping from pyspacemouse's own state objects (`pyspacemouse.SpaceMouseState`, pyspacemouse 2.1.0).

Raw HID reports go through pyspacemouse's real report parser (`SpaceMouseDevice._process`, the point where
the library turns the device's bytes into its state) with the device specs it ships; only the USB device
itself is absent (no SpaceMouse, and no hidapi library, on this machine).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from pyspacemouse import AxisConvention, SpaceMouseDevice, SpaceMouseState, apply_axis_convention, get_device_specs

from robot_io.teleop.devices import TeleopDeviceError
from robot_io.teleop.keyboard import KeyboardTeleop
from robot_io.teleop.spacemouse import DEAD_ZONE, SpaceMouseTeleop, arm_delta_from_hid, open_spacemouse

AXIS_SCALE = 350.0  # pyspacemouse's full scale for these devices, raw counts


def hid_device(name: str = "SpaceNavigator", convention: AxisConvention = AxisConvention.HID) -> SpaceMouseDevice:
    """pyspacemouse's device object for that model and convention, with no USB device behind it."""
    return SpaceMouseDevice(info=apply_axis_convention(get_device_specs()[name], convention))


def axes_report(channel: int, a: int, b: int, c: int) -> bytes:
    """A SpaceNavigator HID report: channel 1 translation (x, y, z), channel 2 rotation (rx, ry, rz), int16 LE."""
    return struct.pack("<Bhhh", channel, a, b, c)


def buttons_report(left: bool, right: bool) -> bytes:
    return bytes([3, int(left) | int(right) << 1])


@pytest.mark.parametrize(
    ("hid", "ros"),
    [
        ({"y": -1.0}, [1, 0, 0, 0, 0, 0]),  # pushed away from the operator: forward, +x
        ({"y": 1.0}, [-1, 0, 0, 0, 0, 0]),
        ({"x": -1.0}, [0, 1, 0, 0, 0, 0]),  # pushed left: +y (ROS y points left)
        ({"z": -1.0}, [0, 0, 1, 0, 0, 0]),  # pulled up (HID z points down): +z
        ({"pitch": -1.0}, [0, 0, 0, 1, 0, 0]),  # about HID y (backwards) negative = about ROS x positive
        ({"roll": -1.0}, [0, 0, 0, 0, 1, 0]),  # about HID x (right) negative = about ROS y (left) positive
        ({"yaw": -1.0}, [0, 0, 0, 0, 0, 1]),  # about HID z (down) negative = counter-clockwise from above
        ({"yaw": 1.0}, [0, 0, 0, 0, 0, -1]),
    ],
)
def test_each_hid_axis_to_ros(hid, ros):
    np.testing.assert_array_equal(arm_delta_from_hid(SpaceMouseState(**hid)), ros)


def test_dead_zone_and_range():
    assert not arm_delta_from_hid(SpaceMouseState(x=0.04, y=-0.05, z=0.02, roll=-0.01, yaw=0.03)).any()
    assert arm_delta_from_hid(SpaceMouseState(y=-(DEAD_ZONE + (1 - DEAD_ZONE) / 2)))[0] == pytest.approx(0.5)
    assert arm_delta_from_hid(SpaceMouseState(y=-1.3))[0] == 1.0  # pyspacemouse values can pass 1 (raw > 350)


@pytest.mark.parametrize("model", ["SpaceNavigator", "SpaceMouseCompact", "SpaceMousePro", "SpaceMouseWireless"])
def test_our_hid_to_ros_agrees_with_pyspacemouses_ros_convention(model):
    """Random raw reports through pyspacemouse's parser in both conventions: our frame change is its ROS one."""
    rng = np.random.default_rng(0)
    hid, ros = hid_device(model, AxisConvention.HID), hid_device(model, AxisConvention.ROS)
    channels = sorted({spec.channel for spec in hid.info.mappings.values()})
    length = hid.info.bytes_to_read
    for _ in range(20):
        for channel in channels:
            report = bytes([channel]) + rng.integers(0, 256, length - 1, dtype=np.uint8).tobytes()
            hid._process(report)
            ros._process(report)
        state = ros.read()
        expected = [state.x, state.y, state.z, state.roll, state.pitch, state.yaw]
        np.testing.assert_allclose(arm_delta_from_hid(hid.read(), zone=0.0), np.clip(expected, -1, 1))


def test_raw_reports_to_a_reading():
    mouse = hid_device()
    device = SpaceMouseTeleop(mouse)
    mouse._process(axes_report(1, 0, -350, -175))  # pushed away fully, lifted half way (HID y, z)
    mouse._process(axes_report(2, 0, 0, -350))  # twisted counter-clockwise fully
    reading = device.poll()
    half = (0.5 - DEAD_ZONE) / (1 - DEAD_ZONE)
    np.testing.assert_allclose(reading.arm_delta, [1, 0, half, 0, 0, 1])
    np.testing.assert_allclose(reading.twist, [1, 0, 1])  # vx, vy, yaw_rate
    assert reading.gripper == 0.0 and not reading.events.any()
    mouse._process(axes_report(1, 0, 0, 0))
    mouse._process(axes_report(2, 3, -4, 2))  # rest noise
    assert not device.poll().arm_delta.any()


def test_buttons_toggle_once_per_press():
    mouse = hid_device()
    device = SpaceMouseTeleop(mouse)
    mouse._process(buttons_report(left=True, right=False))
    assert device.poll().gripper == 1.0
    assert device.poll().gripper == 1.0  # still held: no second toggle
    mouse._process(buttons_report(left=False, right=False))
    assert device.poll().gripper == 1.0
    mouse._process(buttons_report(left=True, right=False))
    assert device.poll().gripper == 0.0
    mouse._process(buttons_report(left=False, right=True))
    reading = device.poll()
    assert reading.events.toggle_intervention and reading.gripper == 0.0
    assert not device.poll().events.any()  # an edge, not a level
    device.reset()
    mouse._process(buttons_report(left=True, right=False))
    assert device.poll().gripper == 1.0
    device.reset()  # a new episode opens the gripper
    assert device.poll().gripper == 0.0
    device.close()


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_recorder_keys_from_the_terminal_join_the_spacemouses_reading(terminal):
    mouse = hid_device()
    device = SpaceMouseTeleop(mouse, recorder_keys=KeyboardTeleop(terminal[1]))
    os.write(terminal[0], b"ni")  # n: next episode; i (keyboard motion) is not the SpaceMouse's
    mouse._process(axes_report(1, -350, 0, 0))  # pushed left
    reading = device.poll()
    assert reading.events.next_episode and not reading.events.toggle_intervention
    np.testing.assert_allclose(reading.arm_delta, [0, 1, 0, 0, 0, 0])
    device.close()


def test_no_spacemouse_or_no_hidapi_is_a_clear_error():
    with pytest.raises(TeleopDeviceError, match=r"hidapi|no SpaceMouse"):
        open_spacemouse(recorder_keys=False)
