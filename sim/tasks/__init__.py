"""Task registry: task name -> function returning its EnvConfig."""

from __future__ import annotations

from collections.abc import Callable

from sim.errors import SimrealError
from sim.tasks.arm_lift import arm_lift
from sim.tasks.arm_reach import arm_reach
from sim.tasks.config import EnvConfig
from sim.tasks.quadruped_flat import quadruped_flat

TASKS: dict[str, Callable[[], EnvConfig]] = {
    "quadruped-flat": quadruped_flat,
    "arm-reach": arm_reach,
    "arm-lift": arm_lift,
}


class UnknownTaskError(SimrealError):
    """A task name that is not registered; the message lists the known ones."""


def make_task_config(name: str) -> EnvConfig:
    """The default config of a registered task; an unknown name lists the known ones."""
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task '{name}'; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]()
