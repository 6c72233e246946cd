"""Keyboard teleop from a terminal: cbreak mode on a tty file descriptor, so it works over SSH and headless.

Key map (`key_map_table()` prints it; arm axes in the robot base frame, ROS convention x forward, y left, z up):

    key        arm (end-effector delta)           quadruped (twist)
    i / k      +x / -x   forward / back           +vx / -vx  forward / back
    j / l      +y / -y   left / right             +vy / -vy  left / right
    u / o      +z / -z   up / down                -
    . / ,      +roll / -roll  (about x)           -
    Up / Down  +pitch / -pitch  (about y)         -
    Left/Right +yaw / -yaw  (about z, + = ccw)    +yaw_rate / -yaw_rate  turn left / right
    g          gripper: toggle open / closed      -
    n          next episode (commit this one)
    r          re-record this episode
    s          mark this episode a success
    space      toggle intervention (human / policy)
    q          stop

The recorder keys (n, r, s, space, q) are left free of motion on purpose. Letters are case-insensitive.

Terminals send key repeats, never key releases, so a key press holds its axis at +-1 for `HOLD_S` and
every repeat renews it: holding a key moves continuously, releasing it stops within `HOLD_S`. 0.15 s is
about four repeat intervals at common repeat rates (25-30 Hz), so SSH jitter does not make a held key
stutter, and short enough that releasing a key stops the arm within ~5 control steps at 30 fps. The
terminal's initial repeat delay (250-660 ms) is longer than that: the first moment of a held key moves,
pauses, then moves continuously (`xset r rate 200 30` or `kbdrate` shortens the pause).
Toggles and recorder keys fire once per press: a repeat of the same key within `REPEAT_GAP_S` (longer
than any common initial repeat delay) is the key still being held, not a new press.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import select
import sys
import termios
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import IO, Any

import numpy as np

from robot_io.teleop.command import SessionEvents, TeleopReading
from robot_io.teleop.devices import TeleopDeviceError

HOLD_S = 0.15  # a press holds its axis this long; each key repeat renews it
REPEAT_GAP_S = 0.7  # a toggle or recorder key fires again only after this much silence from it
MAX_READS_PER_POLL = 64  # bounds one poll even if the terminal is flooded
ARROWS = {ord("A"): "up", ord("B"): "down", ord("C"): "right", ord("D"): "left"}  # final byte of ESC [ A etc.


@dataclass(frozen=True)
class KeyBinding:
    """What one key does: an arm axis, a twist axis (both with `sign`), the gripper toggle or a recorder event."""

    key: str  # the character, or up / down / left / right for the arrow keys
    arm: str  # what it does to the arm, for the table
    quadruped: str = "-"  # what it does to the quadruped, for the table
    arm_axis: int | None = None  # index into TeleopReading.arm_delta
    twist_axis: int | None = None  # index into TeleopReading.twist
    sign: float = 1.0
    toggles_gripper: bool = False
    event: str | None = None  # a SessionEvents field

    @property
    def moves(self) -> bool:
        return self.arm_axis is not None or self.twist_axis is not None


KEY_MAP: tuple[KeyBinding, ...] = (
    KeyBinding("i", "+x forward", "+vx forward", arm_axis=0, twist_axis=0),
    KeyBinding("k", "-x back", "-vx back", arm_axis=0, twist_axis=0, sign=-1.0),
    KeyBinding("j", "+y left", "+vy left", arm_axis=1, twist_axis=1),
    KeyBinding("l", "-y right", "-vy right", arm_axis=1, twist_axis=1, sign=-1.0),
    KeyBinding("u", "+z up", arm_axis=2),
    KeyBinding("o", "-z down", arm_axis=2, sign=-1.0),
    KeyBinding(".", "+roll (about x)", arm_axis=3),
    KeyBinding(",", "-roll (about x)", arm_axis=3, sign=-1.0),
    KeyBinding("up", "+pitch (about y)", arm_axis=4),
    KeyBinding("down", "-pitch (about y)", arm_axis=4, sign=-1.0),
    KeyBinding("left", "+yaw (about z, turn left)", "+yaw_rate turn left", arm_axis=5, twist_axis=2),
    KeyBinding("right", "-yaw (about z, turn right)", "-yaw_rate turn right", arm_axis=5, twist_axis=2, sign=-1.0),
    KeyBinding("g", "gripper: toggle open / closed", toggles_gripper=True),
    KeyBinding("n", "next episode (commit this one)", "", event="next_episode"),
    KeyBinding("r", "re-record this episode", "", event="rerecord"),
    KeyBinding("s", "mark this episode a success", "", event="mark_success"),
    KeyBinding(" ", "toggle intervention (human / policy)", "", event="toggle_intervention"),
    KeyBinding("q", "stop", "stop", event="stop"),
)
BINDINGS = {binding.key: binding for binding in KEY_MAP}
assert {f.name for f in fields(SessionEvents)} == {b.event for b in KEY_MAP if b.event}, "a recorder key is unmapped"


def key_map_table() -> str:
    """The key map as a plain-text table for the session to print."""
    rows = [("key", "arm", "quadruped")]
    rows += [("space" if b.key == " " else b.key, b.arm, b.quadruped) for b in KEY_MAP]
    key_width, arm_width = (max(len(row[i]) for row in rows) for i in (0, 1))
    return "\n".join(f"{key:<{key_width}}  {arm:<{arm_width}}  {quad}".rstrip() for key, arm, quad in rows)


def split_keys(data: bytes) -> tuple[list[str], bytes]:
    """The keys in `data` (characters, arrows as up/down/left/right) and an unfinished escape sequence at its end.

    Arrows arrive as CSI `ESC [ A` (or SS3 `ESC O A` in application cursor mode, or `ESC [ 1 ; 5 A` with a
    modifier); any other escape sequence (F keys, Page Up) is consumed and ignored. A lone ESC, or ESC then
    an ordinary key (Alt+key), drops the ESC. The unfinished tail is kept for the next read.
    """
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i] != 0x1B:
            keys.append(chr(data[i]).lower())
            i += 1
            continue
        if i + 1 == len(data):
            return keys, data[i:]
        if data[i + 1] not in b"[O":
            i += 1
            continue
        end = i + 2
        while end < len(data) and not 0x40 <= data[end] <= 0x7E:  # parameter and intermediate bytes
            end += 1
        if end == len(data):
            return keys, data[i:]
        if data[end] in ARROWS:
            keys.append(ARROWS[data[end]])
        i = end + 1
    return keys, b""


class KeyboardTeleop:
    """A `TeleopDevice` reading keys from a terminal file descriptor (default: stdin) in cbreak mode.

    Restores the terminal mode on `close()`, on leaving a `with` block (also by an exception) and at
    interpreter exit. Ctrl-C still interrupts: cbreak mode keeps signals.
    """

    def __init__(
        self,
        fd: int | IO | None = None,
        hold_s: float = HOLD_S,
        repeat_gap_s: float = REPEAT_GAP_S,
        magnitude: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fd = _file_descriptor(sys.stdin if fd is None else fd)
        if not os.isatty(self.fd):
            raise TeleopDeviceError(
                f"keyboard teleop reads a terminal, and file descriptor {self.fd} is not one "
                "(run it in a terminal, or over `ssh -t`)"
            )
        self.hold_s, self.repeat_gap_s, self.magnitude, self.clock = hold_s, repeat_gap_s, magnitude, clock
        self._saved_mode: list | None = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)  # no line buffering, no echo; signals (Ctrl-C) still work
        atexit.register(self.close)
        self._pending = b""  # an escape sequence split across reads
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (time of its last byte, sequence number)
        self._sequence = 0
        self._gripper_closed = False
        self._events = SessionEvents()
        self._eof = False

    def __enter__(self) -> KeyboardTeleop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def poll(self) -> TeleopReading:
        now_s = self.clock()
        for key in self._read_keys():
            self._press(key, now_s)
        events, self._events = self._events, SessionEvents()
        return TeleopReading(
            arm_delta=self._held_axes("arm_axis", 6, now_s),
            gripper=1.0 if self._gripper_closed else 0.0,
            twist=self._held_axes("twist_axis", 3, now_s),
            events=events,
        )

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """A new episode: gripper open, no key held (toggle and recorder keys keep their once-per-press memory)."""
        self._gripper_closed = False
        self._seen = {key: seen for key, seen in self._seen.items() if not BINDINGS[key].moves}

    def close(self) -> None:
        """Give the terminal its mode back (idempotent)."""
        atexit.unregister(self.close)
        if self._saved_mode is None:
            return
        mode, self._saved_mode = self._saved_mode, None
        with contextlib.suppress(termios.error, OSError):  # a terminal already gone (ssh hang-up) needs nothing
            termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)

    # ---- internals ---------------------------------------------------------------------------------------

    def _read_keys(self) -> list[str]:
        """The keys typed since the last poll, without blocking."""
        chunks = [self._pending]
        for _ in range(MAX_READS_PER_POLL):
            if self._eof or not select.select([self.fd], [], [], 0)[0]:
                break
            chunk = self._read_chunk()
            if not chunk:
                self._eof = True
                self._events.stop = True  # the terminal closed: nobody can command any more
                break
            chunks.append(chunk)
        keys, self._pending = split_keys(b"".join(chunks))
        return keys

    def _read_chunk(self) -> bytes:
        try:
            return os.read(self.fd, 1024)
        except OSError as error:
            if error.errno == errno.EIO:  # a pty whose other side closed reads as EIO, not end of file
                return b""
            raise

    def _press(self, key: str, now_s: float) -> None:
        binding = BINDINGS.get(key)
        if binding is None:
            return
        previous = self._seen.get(key)
        self._sequence += 1
        self._seen[key] = (now_s, self._sequence)
        if previous is not None and now_s - previous[0] < self.repeat_gap_s:
            return  # the key is being held (auto-repeat): toggles and events fire once per press
        if binding.toggles_gripper:
            self._gripper_closed = not self._gripper_closed
        if binding.event:
            setattr(self._events, binding.event, True)

    def _held_axes(self, axis_field: str, size: int, now_s: float) -> np.ndarray:
        """Each axis at +-magnitude while one of its keys was seen within `hold_s`; the latest key wins."""
        values = np.zeros(size)
        latest: dict[int, tuple[float, int]] = {}
        for key, seen in self._seen.items():
            axis = getattr(BINDINGS[key], axis_field)
            if axis is None or now_s - seen[0] >= self.hold_s or seen <= latest.get(axis, (-np.inf, -1)):
                continue
            latest[axis] = seen
            values[axis] = BINDINGS[key].sign * self.magnitude
        return values


def _file_descriptor(stream: int | IO) -> int:
    return stream if isinstance(stream, int) else stream.fileno()


def open_keyboard(**options: Any) -> KeyboardTeleop:
    """The keyboard on this process's terminal (stdin unless `fd` is given); see `KeyboardTeleop`."""
    return KeyboardTeleop(**options)
