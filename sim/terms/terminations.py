"""Termination terms: a failure ends an episode with a penalty; a time-out does not."""

from __future__ import annotations

import math

import torch

from sim.tasks.config import TerminationConfig
from sim.terms.state import RobotState


def trunk_contact(state: RobotState, cfg: TerminationConfig) -> torch.Tensor:
    return state.trunk_contact_force_n > cfg.trunk_contact_force_n


def tilt(state: RobotState, cfg: TerminationConfig) -> torch.Tensor:
    """The body z axis is more than max_tilt_rad away from world up."""
    return state.projected_gravity_b[:, 2] > -math.cos(cfg.max_tilt_rad)


FAILURE_TERMS = {"trunk_contact": trunk_contact, "tilt": tilt}
