"""Gamepad mapping from the event streams the libraries hand over: real `evdev.InputEvent`s and `pygame.event.Event`s.

No evdev end-to-end test through a virtual device (`evdev.UInput`): this machine has no /dev/uinput (and no
/dev/input), so `EvdevGamepad`'s read loop around `apply_evdev_event` is not exercised here.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from evdev import AbsInfo, InputEvent, ecodes

from robot_io.teleop.devices import TeleopDeviceError
from robot_io.teleop.gamepad import (
    DEAD_ZONE,
    PYGAME_LAYOUTS,
    GamepadMapper,
    PadState,
    PygameGamepad,
    apply_evdev_event,
    apply_pygame_event,
    dead_zone,
    import_pygame,
    is_gamepad,
    layout_for,
    normalize_abs,
    open_evdev_gamepad,
    open_gamepad,
    open_pygame_gamepad,
)

# absinfo ranges as the kernel drivers report them
XPAD_STICK = AbsInfo(value=0, min=-32768, max=32767, fuzz=16, flat=128, resolution=0)
XPAD_TRIGGER = AbsInfo(value=0, min=0, max=1023, fuzz=0, flat=0, resolution=0)
HAT = AbsInfo(value=0, min=-1, max=1, fuzz=0, flat=0, resolution=0)
XBOX_RANGES = {code: XPAD_STICK for code in (ecodes.ABS_X, ecodes.ABS_Y, ecodes.ABS_RX, ecodes.ABS_RY)}
XBOX_RANGES |= {ecodes.ABS_Z: XPAD_TRIGGER, ecodes.ABS_RZ: XPAD_TRIGGER, ecodes.ABS_HAT0X: HAT, ecodes.ABS_HAT0Y: HAT}
PS_BYTE = AbsInfo(value=128, min=0, max=255, fuzz=0, flat=0, resolution=0)  # hid-playstation: sticks and triggers
PS_CODES = (ecodes.ABS_X, ecodes.ABS_Y, ecodes.ABS_RX, ecodes.ABS_RY, ecodes.ABS_Z, ecodes.ABS_RZ)
PS_RANGES = dict.fromkeys(PS_CODES, PS_BYTE)


class EvdevPad:
    """Feeds real evdev events, each followed by the kernel's SYN_REPORT, through the device's own function."""

    def __init__(self, ranges=XBOX_RANGES) -> None:
        self.pad, self.mapper, self.ranges, self.usec = PadState(), GamepadMapper(), ranges, 0

    def send(self, event_type: int, code: int, value: int) -> None:
        for event in (InputEvent(1, self.usec, event_type, code, value), InputEvent(1, self.usec, ecodes.EV_SYN, 0, 0)):
            apply_evdev_event(self.pad, event, self.ranges)
        self.usec += 1000

    def axis(self, code: int, value: int) -> None:
        self.send(ecodes.EV_ABS, code, value)

    def poll(self):
        return self.mapper.reading(self.pad)


def events_of(reading) -> set[str]:
    return {name for name, value in asdict(reading.events).items() if value}


# ---- normalization and dead zone ------------------------------------------------------------------------------


def test_normalize_from_the_devices_absinfo():
    assert normalize_abs(-32768, XPAD_STICK, "left_x") == -1.0
    assert normalize_abs(32767, XPAD_STICK, "left_x") == 1.0
    assert abs(normalize_abs(0, XPAD_STICK, "left_x")) < 1e-4
    assert normalize_abs(0, PS_BYTE, "left_x") == -1.0 and normalize_abs(255, PS_BYTE, "left_x") == 1.0
    assert normalize_abs(0, XPAD_TRIGGER, "right_trigger") == 0.0
    assert normalize_abs(1023, XPAD_TRIGGER, "right_trigger") == 1.0
    assert normalize_abs(255, PS_BYTE, "left_trigger") == 1.0
    assert normalize_abs(-1, HAT, "dpad_x") == -1.0


def test_dead_zone_is_continuous_and_reaches_full_scale():
    assert dead_zone(0.1, 0.15) == 0.0 and dead_zone(-0.15, 0.15) == 0.0
    assert dead_zone(0.15 + 0.85 / 2, 0.15) == pytest.approx(0.5)
    assert dead_zone(-1.0, 0.15) == -1.0 and dead_zone(1.0, 0.15) == 1.0
    assert dead_zone(0.1501, 0.15) == pytest.approx(0.0, abs=1e-3)


# ---- evdev: sticks, D-pad, triggers, buttons ------------------------------------------------------------------


def test_at_rest_everything_is_zero():
    pad = EvdevPad()
    pad.axis(ecodes.ABS_X, 900)  # a drifting stick centre, inside the dead zone
    pad.axis(ecodes.ABS_RY, -2000)
    reading = pad.poll()
    assert not reading.arm_delta.any() and not reading.twist.any()
    assert reading.gripper == 0.0 and not reading.events.any()


@pytest.mark.parametrize(
    ("code", "value", "arm", "twist"),
    [
        (ecodes.ABS_Y, -32768, [1, 0, 0, 0, 0, 0], [1, 0, 0]),  # left stick pushed forward (up): +x, +vx
        (ecodes.ABS_Y, 32767, [-1, 0, 0, 0, 0, 0], [-1, 0, 0]),
        (ecodes.ABS_X, -32768, [0, 1, 0, 0, 0, 0], [0, 1, 0]),  # left stick left: +y (ROS y is left), +vy
        (ecodes.ABS_X, 32767, [0, -1, 0, 0, 0, 0], [0, -1, 0]),
        (ecodes.ABS_RY, -32768, [0, 0, 1, 0, 0, 0], [0, 0, 0]),  # right stick up: +z
        (ecodes.ABS_RX, -32768, [0, 0, 0, 0, 0, 1], [0, 0, 1]),  # right stick left: turn left, +yaw / +yaw_rate
        (ecodes.ABS_RX, 32767, [0, 0, 0, 0, 0, -1], [0, 0, -1]),
        (ecodes.ABS_HAT0X, 1, [0, 0, 0, 1, 0, 0], [0, 0, 0]),  # D-pad right: +roll
        (ecodes.ABS_HAT0Y, -1, [0, 0, 0, 0, 1, 0], [0, 0, 0]),  # D-pad up (evdev: -1): +pitch
        (ecodes.ABS_HAT0Y, 1, [0, 0, 0, 0, -1, 0], [0, 0, 0]),
    ],
)
def test_each_axis_in_ros_convention(code, value, arm, twist):
    pad = EvdevPad()
    pad.axis(code, value)
    reading = pad.poll()
    np.testing.assert_allclose(reading.arm_delta, arm, atol=1e-4)
    np.testing.assert_allclose(reading.twist, twist, atol=1e-4)


def test_a_playstation_pads_byte_ranges():
    pad = EvdevPad(PS_RANGES)
    pad.axis(ecodes.ABS_Y, 0)  # forward
    pad.axis(ecodes.ABS_X, 128)  # centre
    pad.axis(ecodes.ABS_RX, 255)  # right
    reading = pad.poll()
    np.testing.assert_allclose(reading.arm_delta, [1, 0, 0, 0, 0, -1], atol=1e-4)
    pad.axis(ecodes.ABS_RZ, 255)  # R2 fully
    assert pad.poll().gripper == 1.0


def test_a_half_deflected_stick_past_the_dead_zone():
    pad = EvdevPad()
    pad.axis(ecodes.ABS_Y, round(-(DEAD_ZONE + (1 - DEAD_ZONE) / 2) * 32767))
    assert pad.poll().arm_delta[0] == pytest.approx(0.5, abs=1e-3)


def test_a_stick_returning_to_centre_stops():
    pad = EvdevPad()
    pad.axis(ecodes.ABS_X, 32767)
    assert pad.poll().arm_delta[1] == -1.0
    pad.axis(ecodes.ABS_X, 120)
    assert pad.poll().arm_delta[1] == 0.0


def test_triggers_move_the_gripper_and_it_stays_where_they_leave_it():
    pad = EvdevPad()
    pad.axis(ecodes.ABS_RZ, 512)  # right trigger half way
    assert pad.poll().gripper == pytest.approx((0.5 - 0.05) / 0.95, abs=2e-3)
    pad.axis(ecodes.ABS_RZ, 1023)
    assert pad.poll().gripper == 1.0
    pad.axis(ecodes.ABS_RZ, 0)  # released: still closed (no holding a trigger through a whole lift)
    assert pad.poll().gripper == 1.0
    pad.axis(ecodes.ABS_Z, 1023)  # left trigger fully: open
    assert pad.poll().gripper == 0.0
    pad.axis(ecodes.ABS_Z, 0)
    assert pad.poll().gripper == 0.0
    pad.axis(ecodes.ABS_RZ, 20)  # a resting trigger's noise does not creep
    assert pad.poll().gripper == 0.0


def test_xbox_over_bluetooth_triggers_are_gas_and_brake():
    ranges = {ecodes.ABS_GAS: XPAD_TRIGGER, ecodes.ABS_BRAKE: XPAD_TRIGGER}
    pad = EvdevPad(ranges)
    pad.axis(ecodes.ABS_GAS, 1023)
    assert pad.poll().gripper == 1.0
    pad.axis(ecodes.ABS_BRAKE, 1023)  # both triggers fully in: neither wins, the gripper stays
    assert pad.poll().gripper == 1.0
    pad.axis(ecodes.ABS_GAS, 0)
    assert pad.poll().gripper == 0.0


@pytest.mark.parametrize(
    ("code", "event"),
    [
        (ecodes.BTN_SOUTH, "next_episode"),
        (ecodes.BTN_EAST, "rerecord"),
        (ecodes.BTN_NORTH, "mark_success"),
        (ecodes.BTN_WEST, "toggle_intervention"),
        (ecodes.BTN_SELECT, "stop"),
    ],
)
def test_each_button_reports_its_event_on_the_press_only(code, event):
    pad = EvdevPad()
    pad.send(ecodes.EV_KEY, code, 1)
    assert events_of(pad.poll()) == {event}
    pad.send(ecodes.EV_KEY, code, 2)  # held (autorepeat, if the driver sends it)
    assert not pad.poll().events.any()
    pad.send(ecodes.EV_KEY, code, 0)  # released
    assert not pad.poll().events.any()
    pad.send(ecodes.EV_KEY, code, 1)  # pressed again
    assert events_of(pad.poll()) == {event}


def test_a_press_and_release_between_two_polls_still_counts_once():
    pad = EvdevPad()
    for value in (1, 0, 1, 0):
        pad.send(ecodes.EV_KEY, ecodes.BTN_SOUTH, value)
    reading = pad.poll()
    assert events_of(reading) == {"next_episode"}
    assert not pad.poll().events.any()


def test_unmapped_buttons_and_axes_do_nothing():
    pad = EvdevPad()
    pad.send(ecodes.EV_KEY, ecodes.BTN_MODE, 1)  # the guide button
    pad.send(ecodes.EV_KEY, ecodes.BTN_THUMBL, 1)
    pad.axis(ecodes.ABS_MISC, 5)
    pad.send(ecodes.EV_MSC, ecodes.MSC_SCAN, 589825)
    reading = pad.poll()
    assert not reading.events.any() and not reading.arm_delta.any()


def test_an_axis_the_device_does_not_report_is_ignored():
    pad = EvdevPad({ecodes.ABS_X: XPAD_STICK})
    pad.axis(ecodes.ABS_Y, -32768)  # not in this device's ranges
    assert not pad.poll().arm_delta.any()


def test_reset_opens_the_gripper():
    pad = EvdevPad()
    pad.axis(ecodes.ABS_RZ, 1023)
    assert pad.poll().gripper == 1.0
    pad.mapper.reset()
    pad.axis(ecodes.ABS_RZ, 0)
    assert pad.poll().gripper == 0.0


def test_is_gamepad_from_capabilities():
    pad = {ecodes.EV_ABS: [(ecodes.ABS_X, XPAD_STICK), (ecodes.ABS_Y, XPAD_STICK)], ecodes.EV_KEY: [ecodes.BTN_SOUTH]}
    keyboard = {ecodes.EV_KEY: [ecodes.KEY_A, ecodes.KEY_B]}
    touchpad = {ecodes.EV_ABS: [(ecodes.ABS_X, XPAD_STICK)], ecodes.EV_KEY: [ecodes.BTN_LEFT, ecodes.BTN_TOUCH]}
    assert is_gamepad(pad) and not is_gamepad(keyboard) and not is_gamepad(touchpad)


def test_no_input_directory_is_a_clear_error(tmp_path):
    with pytest.raises(TeleopDeviceError, match=r"no gamepad: .* does not exist"):
        open_evdev_gamepad(input_dir=str(tmp_path / "input"))


def test_no_event_devices_is_a_clear_error(tmp_path):
    (tmp_path / "by-id").mkdir()
    (tmp_path / "event0").write_text("")  # not a character device
    with pytest.raises(TeleopDeviceError, match="no readable event devices"):
        open_evdev_gamepad(input_dir=str(tmp_path))


def test_a_gamepad_path_that_is_not_there(tmp_path):
    with pytest.raises(TeleopDeviceError, match=r"cannot open the gamepad .*event7: No such file"):
        open_evdev_gamepad(path=str(tmp_path / "event7"))


def test_unknown_backend():
    with pytest.raises(TeleopDeviceError, match="unknown gamepad backend 'sdl3'; known: auto, evdev, pygame"):
        open_gamepad(backend="sdl3")


# ---- pygame ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pygame():
    return import_pygame()


def joy_axis(pygame, axis: int, value: float, instance_id: int = 0):
    return pygame.event.Event(pygame.JOYAXISMOTION, joy=instance_id, instance_id=instance_id, axis=axis, value=value)


def joy_button(pygame, button: int, down: bool = True, instance_id: int = 0):
    kind = pygame.JOYBUTTONDOWN if down else pygame.JOYBUTTONUP
    return pygame.event.Event(kind, joy=instance_id, instance_id=instance_id, button=button)


def joy_hat(pygame, value: tuple[int, int], instance_id: int = 0):
    return pygame.event.Event(pygame.JOYHATMOTION, joy=instance_id, instance_id=instance_id, hat=0, value=value)


def feed(pad: PadState, layout_name: str, events) -> None:
    for event in events:
        apply_pygame_event(pad, event, PYGAME_LAYOUTS[layout_name])


@pytest.mark.parametrize("layout", ["xbox", "playstation5"])
def test_pygame_xbox_style_axes(pygame, layout):
    pad, mapper = PadState(), GamepadMapper()
    feed(pad, layout, [joy_axis(pygame, 1, -1.0), joy_axis(pygame, 0, -1.0), joy_axis(pygame, 4, -1.0)])
    feed(pad, layout, [joy_axis(pygame, 3, 1.0)])  # right stick right
    reading = mapper.reading(pad)
    np.testing.assert_allclose(reading.arm_delta, [1, 1, 1, 0, 0, -1])
    np.testing.assert_allclose(reading.twist, [1, 1, -1])
    feed(pad, layout, [joy_axis(pygame, 2, -1.0), joy_axis(pygame, 5, -1.0)])  # SDL: a released trigger is -1
    assert mapper.reading(pad).gripper == 0.0
    feed(pad, layout, [joy_axis(pygame, 5, 1.0)])  # right trigger in
    assert mapper.reading(pad).gripper == 1.0
    feed(pad, layout, [joy_axis(pygame, 5, -1.0), joy_axis(pygame, 2, 1.0)])  # left trigger in
    assert mapper.reading(pad).gripper == 0.0


def test_pygame_playstation4_axes_and_dpad_buttons(pygame):
    pad, mapper = PadState(), GamepadMapper()
    feed(pad, "playstation4", [joy_axis(pygame, 3, -1.0), joy_axis(pygame, 2, -1.0)])  # right stick up and left
    feed(pad, "playstation4", [joy_button(pygame, 14), joy_button(pygame, 11)])  # D-pad right and up
    reading = mapper.reading(pad)
    np.testing.assert_allclose(reading.arm_delta, [0, 0, 1, 1, 1, 1])
    assert not reading.events.any()
    feed(pad, "playstation4", [joy_button(pygame, 14, down=False), joy_button(pygame, 11, down=False)])
    feed(pad, "playstation4", [joy_axis(pygame, 5, 1.0)])  # R2
    reading = mapper.reading(pad)
    assert not reading.arm_delta[3:5].any() and reading.gripper == 1.0


def test_pygame_hat_is_the_dpad(pygame):
    pad, mapper = PadState(), GamepadMapper()
    feed(pad, "xbox", [joy_hat(pygame, (-1, 1))])  # left and up (SDL: up is +1)
    np.testing.assert_allclose(mapper.reading(pad).arm_delta, [0, 0, 0, -1, 1, 0])
    feed(pad, "xbox", [joy_hat(pygame, (0, 0))])
    assert not mapper.reading(pad).arm_delta.any()


@pytest.mark.parametrize(
    ("layout", "buttons"),
    [
        ("xbox", {0: "next_episode", 1: "rerecord", 2: "toggle_intervention", 3: "mark_success", 6: "stop"}),
        ("playstation4", {0: "next_episode", 1: "rerecord", 2: "toggle_intervention", 3: "mark_success", 4: "stop"}),
        ("playstation5", {0: "next_episode", 1: "rerecord", 2: "toggle_intervention", 3: "mark_success", 8: "stop"}),
    ],
)
def test_pygame_buttons_report_their_event_on_the_press_only(pygame, layout, buttons):
    for button, event in buttons.items():
        pad, mapper = PadState(), GamepadMapper()
        feed(pad, layout, [joy_button(pygame, button)])
        assert events_of(mapper.reading(pad)) == {event}
        feed(pad, layout, [joy_button(pygame, button, down=False)])
        assert not mapper.reading(pad).events.any()


def test_pygame_device_reads_its_own_joysticks_events_from_pygames_queue(pygame):
    pygame.event.clear()
    device = PygameGamepad(instance_id=3, layout=PYGAME_LAYOUTS["xbox"])
    for event in (joy_axis(pygame, 1, -1.0, 3), joy_button(pygame, 0, True, 3), joy_axis(pygame, 0, 1.0, 4)):
        pygame.event.post(event)  # the last is another joystick's: not ours
    reading = device.poll()
    np.testing.assert_allclose(reading.arm_delta, [1, 0, 0, 0, 0, 0])
    assert events_of(reading) == {"next_episode"}
    assert not device.poll().events.any()
    np.testing.assert_allclose(device.poll().arm_delta, [1, 0, 0, 0, 0, 0])  # the stick is still forward
    pygame.event.post(pygame.event.Event(pygame.JOYDEVICEREMOVED, instance_id=3))
    with pytest.raises(TeleopDeviceError, match="disconnected"):
        device.poll()
    device.close()


def test_layout_from_the_name_sdl_gives_the_pad():
    assert layout_for("Xbox 360 Controller") == "xbox"
    assert layout_for("PS4 Controller") == "playstation4"
    assert layout_for("Sony Interactive Entertainment Wireless Controller") == "playstation5"
    assert layout_for("Generic USB Joystick") == "xbox"


def test_pygame_without_a_joystick_is_a_clear_error(pygame):
    if pygame.joystick.get_count() > 0:
        pytest.fail("this test expects a machine without joysticks")
    with pytest.raises(TeleopDeviceError, match="no gamepad: pygame \\(SDL\\) sees 0 joysticks"):
        open_pygame_gamepad()
