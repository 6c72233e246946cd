"""Gamepad teleop: evdev on Linux (the kernel's standard gamepad codes), pygame (SDL joystick) elsewhere or on request.

Mapping (positions of an Xbox pad; PlayStation names in brackets):

    control                  arm (end-effector delta)          quadruped (twist)
    left stick up / down     +x / -x  forward / back           +vx / -vx
    left stick left / right  +y / -y  left / right             +vy / -vy
    right stick up / down    +z / -z  up / down                -
    right stick left / right +yaw / -yaw  turn left / right    +yaw_rate / -yaw_rate
    D-pad right / left       +roll / -roll                     -
    D-pad up / down          +pitch / -pitch                   -
    right trigger [R2]       closes the gripper as far as it is pressed, and it stays there when released
    left trigger [L2]        opens the gripper as far as it is pressed, and it stays there when released
    A [Cross]                next episode          B [Circle]    re-record
    Y [Triangle]             mark success          X [Square]    toggle intervention
    Back / View [Share]      stop

Sticks are normalized from the device's own range (evdev absinfo min/max; SDL's -1..1 for pygame), then
a dead zone: stick centres drift by up to ~0.25 of full scale on worn pads (SDL documents ~8000 of
32767), and a drifting arm is worse than a slightly numb stick. Outside the dead zone the value is
rescaled so it still starts at 0 and reaches 1. Buttons report their `SessionEvents` on the press only.

evdev names buttons by position (BTN_SOUTH, BTN_EAST, BTN_NORTH, BTN_WEST); the xpad driver reports an
Xbox pad's X as BTN_NORTH (its alias BTN_X), so there X and Y swap roles. pygame's button and axis numbers
differ by pad and SDL driver: `PYGAME_LAYOUTS` holds pygame's documented Xbox 360, PS4 and PS5 layouts.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    import evdev
    from evdev import ecodes
except ImportError:  # evdev is Linux only; the pygame backend serves elsewhere
    evdev = ecodes = None

from robot_io.teleop.command import SessionEvents, TeleopReading
from robot_io.teleop.devices import TeleopDeviceError

DEAD_ZONE = 0.15  # of full stick deflection
TRIGGER_DEAD_ZONE = 0.05  # a resting trigger must not creep the gripper
STICKS = ("left_x", "left_y", "right_x", "right_y")  # x right +, y up +, in [-1, 1]
DPAD = ("dpad_x", "dpad_y")  # -1, 0, 1; right +, up +
TRIGGERS = ("left_trigger", "right_trigger")  # 0 released .. 1 pressed
BUTTON_EVENTS = {
    "south": "next_episode",
    "east": "rerecord",
    "north": "mark_success",
    "west": "toggle_intervention",
    "back": "stop",
}


@dataclass
class PadState:
    """The pad's controls, normalized, as the backends' events leave them; presses since the last poll."""

    controls: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STICKS + DPAD + TRIGGERS, 0.0))
    events: SessionEvents = field(default_factory=SessionEvents)

    def press(self, button: str) -> None:
        """A button went down (an edge: the backends call this on the press, never on holding or release)."""
        event = BUTTON_EVENTS.get(button)
        if event is not None:
            setattr(self.events, event, True)


def dead_zone(value: float, zone: float) -> float:
    """0 inside the zone; outside, rescaled so the output still runs continuously from 0 to +-1."""
    magnitude = abs(value)
    if magnitude <= zone:
        return 0.0
    return float(np.sign(value) * min(1.0, (magnitude - zone) / (1.0 - zone)))


class GamepadMapper:
    """Pad state -> `TeleopReading`; keeps the gripper where the triggers left it."""

    def __init__(self, dead_zone: float = DEAD_ZONE) -> None:
        self.dead_zone = dead_zone
        self.gripper = 0.0

    def reading(self, pad: PadState) -> TeleopReading:
        """The reading now; takes the pad's pending button events."""
        stick = {name: dead_zone(pad.controls[name], self.dead_zone) for name in STICKS}
        dpad_x, dpad_y = pad.controls["dpad_x"], pad.controls["dpad_y"]
        close_amount, open_amount = (dead_zone(pad.controls[name], TRIGGER_DEAD_ZONE) for name in TRIGGERS[::-1])
        if close_amount > open_amount:
            self.gripper = max(self.gripper, close_amount)
        elif open_amount > close_amount:
            self.gripper = min(self.gripper, 1.0 - open_amount)
        events, pad.events = pad.events, SessionEvents()
        # stick left / right is -y / +y in the ROS frame (y points left): hence the minus signs
        arm = [stick["left_y"], -stick["left_x"], stick["right_y"], dpad_x, dpad_y, -stick["right_x"]]
        twist = [stick["left_y"], -stick["left_x"], -stick["right_x"]]
        arm_delta, twist_array = np.array(arm) + 0.0, np.array(twist) + 0.0  # + 0.0: no -0.0 in logs
        return TeleopReading(arm_delta=arm_delta, gripper=self.gripper, twist=twist_array, events=events)

    def reset(self) -> None:
        self.gripper = 0.0


# ---- evdev ---------------------------------------------------------------------------------------------------


def _evdev_maps() -> tuple[dict[int, tuple[str, float]], dict[int, str]]:
    if ecodes is None:
        return {}, {}
    axes = {
        ecodes.ABS_X: ("left_x", 1.0),
        ecodes.ABS_Y: ("left_y", -1.0),  # evdev y grows downwards
        ecodes.ABS_RX: ("right_x", 1.0),
        ecodes.ABS_RY: ("right_y", -1.0),
        ecodes.ABS_Z: ("left_trigger", 1.0),
        ecodes.ABS_RZ: ("right_trigger", 1.0),
        ecodes.ABS_BRAKE: ("left_trigger", 1.0),  # Xbox pads over Bluetooth (hid-microsoft)
        ecodes.ABS_GAS: ("right_trigger", 1.0),
        ecodes.ABS_HAT0X: ("dpad_x", 1.0),
        ecodes.ABS_HAT0Y: ("dpad_y", -1.0),
    }
    buttons = {
        ecodes.BTN_SOUTH: "south",
        ecodes.BTN_EAST: "east",
        ecodes.BTN_NORTH: "north",
        ecodes.BTN_WEST: "west",
        ecodes.BTN_SELECT: "back",
    }
    return axes, buttons


EVDEV_AXES, EVDEV_BUTTONS = _evdev_maps()


def normalize_abs(value: int, info: Any, control: str) -> float:
    """A raw evdev axis value -> [-1, 1] (sticks, D-pad, centred in the absinfo range) or [0, 1] (triggers)."""
    span = info.max - info.min
    if span <= 0:
        return 0.0
    if control in TRIGGERS:
        return float(np.clip((value - info.min) / span, 0.0, 1.0))
    return float(np.clip((2.0 * value - info.min - info.max) / span, -1.0, 1.0))


def apply_evdev_event(pad: PadState, event: Any, ranges: Mapping[int, Any]) -> None:
    """One `evdev.InputEvent` into the pad state; `ranges` maps each ABS code to its `evdev.AbsInfo`."""
    if event.type == ecodes.EV_ABS and event.code in EVDEV_AXES and event.code in ranges:
        control, sign = EVDEV_AXES[event.code]
        pad.controls[control] = sign * normalize_abs(event.value, ranges[event.code], control)
    elif event.type == ecodes.EV_KEY and event.code in EVDEV_BUTTONS and event.value == 1:  # 0 release, 2 repeat
        pad.press(EVDEV_BUTTONS[event.code])


def is_gamepad(capabilities: Mapping[int, Any]) -> bool:
    """A device with a left stick and the south face button (what the kernel's gamepad spec requires)."""
    abs_codes = {code for code, _ in capabilities.get(ecodes.EV_ABS, [])}
    return ecodes.ABS_X in abs_codes and ecodes.BTN_SOUTH in capabilities.get(ecodes.EV_KEY, [])


class EvdevGamepad:
    """A `TeleopDevice` reading an `evdev.InputDevice` without blocking."""

    def __init__(self, device: Any, dead_zone: float = DEAD_ZONE) -> None:
        self.device = device
        self.pad = PadState()
        self.mapper = GamepadMapper(dead_zone)
        present = {code for code, _ in device.capabilities().get(ecodes.EV_ABS, [])}
        self.ranges = {code: device.absinfo(code) for code in EVDEV_AXES if code in present}
        self._resync()

    def poll(self) -> TeleopReading:
        try:
            for event in self.device.read():
                if event.type == ecodes.EV_SYN and event.code == ecodes.SYN_DROPPED:
                    self._resync()  # the kernel's queue overflowed: the current values beat the lost events
                else:
                    apply_evdev_event(self.pad, event, self.ranges)
        except BlockingIOError:
            pass  # no events since the last poll
        except OSError as error:
            if error.errno == errno.ENODEV:
                raise TeleopDeviceError(f"gamepad {self.device.path} was disconnected") from error
            raise
        return self.mapper.reading(self.pad)

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """A new episode: the gripper open."""
        self.mapper.reset()

    def close(self) -> None:
        self.device.close()

    def _resync(self) -> None:
        """The axes' current values (at start, triggers may already rest anywhere in their range)."""
        for code, info in self.ranges.items():
            control, sign = EVDEV_AXES[code]
            self.ranges[code] = info = self.device.absinfo(code)
            self.pad.controls[control] = sign * normalize_abs(info.value, info, control)


def open_evdev_gamepad(path: str | None = None, input_dir: str = "/dev/input", dead_zone: float = DEAD_ZONE):
    """The gamepad at `path`, or the first gamepad among `input_dir`'s event devices."""
    if evdev is None:
        raise TeleopDeviceError("the evdev gamepad backend needs the evdev package (Linux only): pip install evdev")
    if path is not None:
        try:
            return EvdevGamepad(evdev.InputDevice(path), dead_zone)
        except OSError as error:
            raise TeleopDeviceError(f"cannot open the gamepad {path}: {error.strerror} (the 'input' group?)") from error
    if not os.path.isdir(input_dir):
        raise TeleopDeviceError(
            f"no gamepad: {input_dir} does not exist (no input devices here; in a container pass the "
            "device in, e.g. docker run --device /dev/input/eventN)"
        )
    paths = sorted(evdev.list_devices(input_dir, writable=False))
    if not paths:
        raise TeleopDeviceError(
            f"no gamepad: no readable event devices in {input_dir} (is one plugged in? is your user "
            "in the 'input' group?)"
        )
    names = []
    for candidate in paths:
        device = evdev.InputDevice(candidate)
        if is_gamepad(device.capabilities()):
            return EvdevGamepad(device, dead_zone)
        names.append(f"{device.name} ({candidate})")
        device.close()
    raise TeleopDeviceError(f"no gamepad among the input devices in {input_dir}: {', '.join(names)}")


# ---- pygame --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PygameLayout:
    """SDL joystick numbers of one pad type: axis -> (control, sign), button -> role, D-pad buttons if no hat."""

    axes: dict[int, tuple[str, float]]
    buttons: dict[int, str]
    dpad_buttons: dict[int, tuple[str, float]] = field(default_factory=dict)


_SDL_XBOX_AXES = {0: ("left_x", 1.0), 1: ("left_y", -1.0), 2: ("left_trigger", 1.0)}
_SDL_XBOX_AXES |= {3: ("right_x", 1.0), 4: ("right_y", -1.0), 5: ("right_trigger", 1.0)}
PYGAME_LAYOUTS = {  # pygame 2 documentation, "Common Controller Axis Mappings"
    "xbox": PygameLayout(_SDL_XBOX_AXES, {0: "south", 1: "east", 2: "west", 3: "north", 6: "back"}),
    "playstation4": PygameLayout(
        {0: ("left_x", 1.0), 1: ("left_y", -1.0), 2: ("right_x", 1.0), 3: ("right_y", -1.0)}
        | {4: ("left_trigger", 1.0), 5: ("right_trigger", 1.0)},
        {0: "south", 1: "east", 2: "west", 3: "north", 4: "back"},
        {11: ("dpad_y", 1.0), 12: ("dpad_y", -1.0), 13: ("dpad_x", -1.0), 14: ("dpad_x", 1.0)},
    ),
    "playstation5": PygameLayout(_SDL_XBOX_AXES, {0: "south", 1: "east", 2: "west", 3: "north", 8: "back"}),
}


def layout_for(joystick_name: str) -> str:
    """The layout of a pad by the name SDL gives it (pygame's docs list these names); Xbox otherwise."""
    name = joystick_name.lower()
    if "ps4" in name:
        return "playstation4"
    if "sony" in name or "ps5" in name or "dualsense" in name:
        return "playstation5"
    return "xbox"


def import_pygame():
    """pygame without its banner, and with an event queue but no window (a headless video driver)."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame's event queue needs video initialized
    os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")  # the operator looks at the sim, not us
    import pygame

    pygame.display.init()
    pygame.joystick.init()
    return pygame


def apply_pygame_event(pad: PadState, event: Any, layout: PygameLayout) -> None:
    """One `pygame.event.Event` (JOYAXISMOTION, JOYBUTTONDOWN / UP, JOYHATMOTION) into the pad state."""
    import pygame

    if event.type == pygame.JOYAXISMOTION and event.axis in layout.axes:
        control, sign = layout.axes[event.axis]
        value = float(np.clip(event.value, -1.0, 1.0))
        pad.controls[control] = (value + 1.0) / 2.0 if control in TRIGGERS else sign * value  # triggers rest at -1
    elif event.type == pygame.JOYHATMOTION and event.hat == 0:
        pad.controls["dpad_x"], pad.controls["dpad_y"] = (float(v) for v in event.value)  # SDL: up is +1
    elif event.type in (pygame.JOYBUTTONDOWN, pygame.JOYBUTTONUP) and event.button in layout.dpad_buttons:
        control, sign = layout.dpad_buttons[event.button]
        pad.controls[control] = sign if event.type == pygame.JOYBUTTONDOWN else 0.0
    elif event.type == pygame.JOYBUTTONDOWN and event.button in layout.buttons:
        pad.press(layout.buttons[event.button])


class PygameGamepad:
    """A `TeleopDevice` reading one SDL joystick's events from pygame's queue."""

    def __init__(self, instance_id: int, layout: PygameLayout, dead_zone: float = DEAD_ZONE, joystick=None) -> None:
        self.pygame = import_pygame()
        self.instance_id, self.layout, self.joystick = instance_id, layout, joystick
        self.pad = PadState()  # triggers released: SDL reports an axis only once it moves
        self.mapper = GamepadMapper(dead_zone)

    def poll(self) -> TeleopReading:
        pygame = self.pygame
        kinds = [pygame.JOYAXISMOTION, pygame.JOYBUTTONDOWN, pygame.JOYBUTTONUP, pygame.JOYHATMOTION]
        for event in pygame.event.get([*kinds, pygame.JOYDEVICEREMOVED]):
            if getattr(event, "instance_id", None) != self.instance_id:
                continue  # another joystick's
            if event.type == pygame.JOYDEVICEREMOVED:
                raise TeleopDeviceError(f"gamepad (SDL joystick {self.instance_id}) was disconnected")
            apply_pygame_event(self.pad, event, self.layout)
        return self.mapper.reading(self.pad)

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """A new episode: the gripper open."""
        self.mapper.reset()

    def close(self) -> None:
        if self.joystick is not None:
            self.joystick.quit()
            self.joystick = None


def open_pygame_gamepad(index: int = 0, layout: str | None = None, dead_zone: float = DEAD_ZONE) -> PygameGamepad:
    """SDL joystick number `index`; its layout from its name unless given ("xbox", "playstation4", ...)."""
    pygame = import_pygame()
    count = pygame.joystick.get_count()
    if index >= count:
        raise TeleopDeviceError(f"no gamepad: pygame (SDL) sees {count} joysticks, asked for number {index}")
    joystick = pygame.joystick.Joystick(index)
    name = layout or layout_for(joystick.get_name())
    if name not in PYGAME_LAYOUTS:
        raise TeleopDeviceError(f"unknown gamepad layout {name!r}; known: {', '.join(PYGAME_LAYOUTS)}")
    return PygameGamepad(joystick.get_instance_id(), PYGAME_LAYOUTS[name], dead_zone, joystick)


def open_gamepad(backend: str = "auto", **options: Any) -> EvdevGamepad | PygameGamepad:
    """A gamepad through evdev (default on Linux) or pygame; `options` go to that backend's opener."""
    if backend == "auto":
        backend = "evdev" if sys.platform.startswith("linux") else "pygame"
    if backend == "evdev":
        return open_evdev_gamepad(**options)
    if backend == "pygame":
        return open_pygame_gamepad(**options)
    raise TeleopDeviceError(f"unknown gamepad backend {backend!r}; known: auto, evdev, pygame")
