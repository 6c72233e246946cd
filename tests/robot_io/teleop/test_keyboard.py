"""Keyboard teleop: real key bytes written into a pseudo-terminal, `TeleopReading`s polled from its other side."""

from __future__ import annotations

import contextlib
import os
import termios
import time
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np
import pytest

from robot_io.teleop.devices import TeleopDeviceError
from robot_io.teleop.keyboard import HOLD_S, KEY_MAP, REPEAT_GAP_S, KeyboardTeleop, key_map_table, split_keys

KEY_BYTES = {"up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D"}  # what a terminal sends
RECORDER_KEYS = {"n": "next_episode", "r": "rerecord", "q": "stop", " ": "toggle_intervention", "s": "mark_success"}


class ManualClock:
    """A monotonic time the test sets, so hold times are exact and the test never sleeps."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    """(master, slave) of a fresh pseudo-terminal: the test types into master, the device reads slave."""
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):  # a test closed it on purpose
            os.close(fd)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def keyboard(terminal, clock) -> Iterator[KeyboardTeleop]:
    device = KeyboardTeleop(terminal[1], clock=clock)
    yield device
    device.close()


def type_keys(terminal: tuple[int, int], data: bytes) -> None:
    os.write(terminal[0], data)


def pressed_events(reading) -> set[str]:
    return {name for name, value in asdict(reading.events).items() if value}


def test_cbreak_while_open_and_the_mode_restored_on_close(terminal):
    before = termios.tcgetattr(terminal[1])
    assert before[3] & termios.ICANON and before[3] & termios.ECHO
    device = KeyboardTeleop(terminal[1])
    during = termios.tcgetattr(terminal[1])
    assert not during[3] & termios.ICANON and not during[3] & termios.ECHO  # key by key, nothing echoed
    assert during[3] & termios.ISIG  # Ctrl-C still interrupts
    device.close()
    assert termios.tcgetattr(terminal[1]) == before
    device.close()  # idempotent
    assert termios.tcgetattr(terminal[1]) == before


def test_the_mode_restored_when_the_with_block_raises(terminal):
    before = termios.tcgetattr(terminal[1])
    with pytest.raises(RuntimeError, match="operator error"), KeyboardTeleop(terminal[1]) as device:
        type_keys(terminal, b"i")
        assert device.poll().arm_delta[0] == 1.0
        raise RuntimeError("operator error")
    assert termios.tcgetattr(terminal[1]) == before


MOTION = [b for b in KEY_MAP if b.arm_axis is not None or b.twist_axis is not None]


@pytest.mark.parametrize("binding", MOTION, ids=[b.key for b in MOTION])
def test_each_motion_key_moves_its_axes_and_nothing_else(terminal, keyboard, binding):
    type_keys(terminal, KEY_BYTES.get(binding.key, binding.key.encode()))
    reading = keyboard.poll()
    expected_arm, expected_twist = np.zeros(6), np.zeros(3)
    if binding.arm_axis is not None:
        expected_arm[binding.arm_axis] = binding.sign
    if binding.twist_axis is not None:
        expected_twist[binding.twist_axis] = binding.sign
    np.testing.assert_array_equal(reading.arm_delta, expected_arm)
    np.testing.assert_array_equal(reading.twist, expected_twist)
    assert reading.gripper == 0.0 and not reading.events.any()


def test_the_documented_axes_in_ros_convention(terminal, keyboard):
    """i forward (+x), j left (+y), u up (+z), left arrow turns left (+yaw); the quadruped likewise."""
    type_keys(terminal, b"iju\x1b[D")
    reading = keyboard.poll()
    np.testing.assert_array_equal(reading.arm_delta, [1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(reading.twist, [1, 1, 1])
    type_keys(terminal, b"klo\x1b[C.\x1b[A")
    reading = keyboard.poll()
    np.testing.assert_array_equal(reading.arm_delta, [-1, -1, -1, 1, 1, -1])
    np.testing.assert_array_equal(reading.twist, [-1, -1, -1])


def test_a_press_holds_for_the_hold_time_and_key_repeats_renew_it(terminal, keyboard, clock):
    type_keys(terminal, b"i")
    assert keyboard.poll().arm_delta[0] == 1.0
    clock.now_s += 0.6 * HOLD_S
    assert keyboard.poll().arm_delta[0] == 1.0  # still held
    type_keys(terminal, b"i")  # the terminal's key repeat, read at this poll
    assert keyboard.poll().arm_delta[0] == 1.0
    clock.now_s += 0.6 * HOLD_S  # 1.2 hold times after the press
    assert keyboard.poll().arm_delta[0] == 1.0  # renewed by the repeat
    clock.now_s += 0.6 * HOLD_S
    np.testing.assert_array_equal(keyboard.poll().arm_delta, np.zeros(6))  # released: no repeat came


def test_the_latest_of_two_opposite_keys_wins_and_other_axes_combine(terminal, keyboard, clock):
    type_keys(terminal, b"ik")
    assert keyboard.poll().arm_delta[0] == -1.0
    clock.now_s += 0.01
    type_keys(terminal, b"i")
    assert keyboard.poll().arm_delta[0] == 1.0
    type_keys(terminal, b"j")
    np.testing.assert_array_equal(keyboard.poll().arm_delta[:2], [1.0, 1.0])  # a diagonal


def test_magnitude_scales_a_held_key(terminal, clock):
    with KeyboardTeleop(terminal[1], magnitude=0.25, clock=clock) as device:
        type_keys(terminal, b"l")
        assert device.poll().arm_delta[1] == -0.25


def test_g_toggles_the_gripper_once_per_press(terminal, keyboard, clock):
    type_keys(terminal, b"g")
    assert keyboard.poll().gripper == 1.0
    for _ in range(10):  # holding g: repeats every 40 ms must not flip it back and forth
        clock.now_s += 0.04
        type_keys(terminal, b"g")
        assert keyboard.poll().gripper == 1.0
    clock.now_s += REPEAT_GAP_S + 0.01
    type_keys(terminal, b"g")  # a new press
    assert keyboard.poll().gripper == 0.0


@pytest.mark.parametrize("key", list(RECORDER_KEYS), ids=lambda key: repr(key))
def test_each_recorder_key_reports_its_event_once_and_moves_nothing(terminal, keyboard, clock, key):
    type_keys(terminal, key.encode())
    reading = keyboard.poll()
    assert pressed_events(reading) == {RECORDER_KEYS[key]}
    np.testing.assert_array_equal(reading.arm_delta, np.zeros(6))
    np.testing.assert_array_equal(reading.twist, np.zeros(3))
    assert reading.gripper == 0.0
    assert not keyboard.poll().events.any()  # an edge, not a level


def test_a_held_recorder_key_is_one_press_and_a_later_press_is_another(terminal, keyboard, clock):
    type_keys(terminal, b"nn")
    assert keyboard.poll().events.next_episode
    for _ in range(20):  # auto-repeat while held
        clock.now_s += 0.035
        type_keys(terminal, b"n")
        assert not keyboard.poll().events.next_episode
    clock.now_s += REPEAT_GAP_S + 0.01
    type_keys(terminal, b"N")  # letters are case-insensitive
    assert keyboard.poll().events.next_episode


def test_several_keys_in_one_poll(terminal, keyboard):
    type_keys(terminal, b"s i q")
    reading = keyboard.poll()
    assert pressed_events(reading) == {"mark_success", "toggle_intervention", "stop"}
    assert reading.arm_delta[0] == 1.0


def test_an_arrow_split_across_two_reads(terminal, keyboard):
    type_keys(terminal, b"\x1b[")
    np.testing.assert_array_equal(keyboard.poll().arm_delta, np.zeros(6))
    type_keys(terminal, b"D")
    assert keyboard.poll().arm_delta[5] == 1.0


def test_other_escape_sequences_are_consumed_not_read_as_keys(terminal, keyboard):
    type_keys(terminal, b"\x1b[15~\x1b[6~\x1bOP")  # F5, Page Down, F1: nothing of them may leak as 'q', 's', ...
    reading = keyboard.poll()
    assert not reading.events.any() and not reading.arm_delta.any()


def test_split_keys():
    assert split_keys(b"ik") == (["i", "k"], b"")
    assert split_keys(b"\x1b[A\x1bOB\x1b[1;5C") == (["up", "down", "right"], b"")  # CSI, SS3, with a modifier
    assert split_keys(b"I\x1b") == (["i"], b"\x1b")  # an ESC that may start a sequence waits
    assert split_keys(b"\x1b[1;5") == ([], b"\x1b[1;5")
    assert split_keys(b"\x1bq") == (["q"], b"")  # Alt+q, or ESC then q
    assert split_keys(b"") == ([], b"")


def test_a_closed_terminal_says_stop(terminal, keyboard):
    os.close(terminal[0])  # the operator's terminal goes away (ssh hang-up)
    assert keyboard.poll().events.stop
    reading = keyboard.poll()  # and no busy loop or error afterwards
    assert not reading.events.any() and not reading.arm_delta.any()


def test_poll_does_not_block(terminal, keyboard):
    start_s = time.perf_counter()
    for _ in range(100):
        keyboard.poll()
    assert (time.perf_counter() - start_s) / 100 < 0.005


def test_real_time_hold_and_release(terminal):
    with KeyboardTeleop(terminal[1]) as device:
        type_keys(terminal, b"o")
        assert device.poll().arm_delta[2] == -1.0
        time.sleep(HOLD_S + 0.05)
        assert device.poll().arm_delta[2] == 0.0


def test_reset_opens_the_gripper_and_releases_held_keys(terminal, keyboard):
    type_keys(terminal, b"gi")
    reading = keyboard.poll()
    assert reading.gripper == 1.0 and reading.arm_delta[0] == 1.0
    keyboard.reset(np.random.default_rng(0))
    reading = keyboard.poll()
    assert reading.gripper == 0.0 and not reading.arm_delta.any()


def test_not_a_terminal_is_a_clear_error():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(TeleopDeviceError, match="not one"):
            KeyboardTeleop(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_the_key_map_table_names_every_key_and_recorder_keys_move_nothing():
    table = key_map_table()
    for binding in KEY_MAP:
        assert ("space" if binding.key == " " else binding.key) in table
    for binding in KEY_MAP:
        if binding.key in RECORDER_KEYS:
            assert binding.event == RECORDER_KEYS[binding.key]
            assert binding.arm_axis is None and binding.twist_axis is None and not binding.toggles_gripper
    assert len({b.key for b in KEY_MAP}) == len(KEY_MAP)
