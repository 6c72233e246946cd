"""The simulation backend interface: `num_envs` copies of one MuJoCo model, stepped together.

The env, its terms and the randomizer see a backend only through this class:
state and per-simulation model fields are torch tensors on the backend's device
that alias the simulation's own memory (writes reach the simulation, reads cost
no copy), and every operation takes the simulations it acts on as a tensor of
indices. Two backends implement it: mujoco.batch on the CPU (sim/backends/batch.py)
and MuJoCo Warp on a CUDA device or Warp's CPU device (sim/backends/warp.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import mujoco
import torch

from sim.errors import SimrealError

# per-simulation state the env reads or writes (mjData names)
DATA_FIELDS = (
    "time",
    "qpos",
    "qvel",
    "act",
    "ctrl",
    "history",
    "qacc_warmstart",
    "sensordata",
    "actuator_force",
    "site_xpos",
    "xquat",
)
# what a physics step starts from: saved and restored by the env benchmark's replay
INTEGRATION_STATE = ("time", "qpos", "qvel", "act", "ctrl", "history", "qacc_warmstart")


class BackendError(SimrealError):
    """A backend that cannot run here (missing or mismatched install, unsupported model or device)."""


class SimBackend(ABC):
    """Batched simulation of one compiled model; tensors live on `device`."""

    name: str
    model: mujoco.MjModel  # the nominal model, on the host
    num_envs: int
    device: torch.device

    @abstractmethod
    def data(self, field: str) -> torch.Tensor:
        """(num_envs, ...) view of an mjData field (DATA_FIELDS); writes reach the simulation."""

    @abstractmethod
    def model_field(self, field: str) -> torch.Tensor:
        """(num_envs, ...) per-simulation view of an mjModel field given in the backend's `per_env_fields`
        (each simulation holds its own copy, starting at the nominal value); writes reach the simulation."""

    @abstractmethod
    def step(self, nstep: int) -> torch.Tensor:
        """`nstep` physics steps of every simulation, then position- and velocity-dependent fields and
        sensors at the new state (as mj_step1 computes them); returns (num_envs,) bool: the simulations
        whose step failed (a MuJoCo error or warning, a Warp buffer overflow)."""

    @abstractmethod
    def reset(self, ids: torch.Tensor) -> None:
        """The simulations `ids` back to the model's defaults (qpos0, at rest, time 0, cleared history)."""

    @abstractmethod
    def forward(self, ids: torch.Tensor) -> None:
        """Position- and velocity-dependent fields and sensors of the simulations `ids` at their state."""

    @abstractmethod
    def set_const(self, ids: torch.Tensor) -> None:
        """Recompute the constants derived from masses, inertias and armature (after randomizing them)."""

    @abstractmethod
    def copy_to_host(self, index: int, data: mujoco.MjData) -> mujoco.MjModel:
        """Simulation `index` as a host MjModel (with its randomized fields) and its state in `data`
        (rendering, teleop, replay)."""

    def describe(self) -> dict:
        """What runs the simulation, for logs and benchmarks."""
        return {"backend": self.name, "device": str(self.device)}

    def save_state(self) -> dict[str, torch.Tensor]:
        """A copy of what the next step starts from."""
        return {name: self.data(name).clone() for name in INTEGRATION_STATE}

    def restore_state(self, state: dict[str, torch.Tensor]) -> None:
        """Put back a save_state() copy; derived fields follow at the next step or forward."""
        for name, value in state.items():
            self.data(name).copy_(value)

    def close(self) -> None:  # noqa: B027 (optional hook: a backend with nothing to release keeps it)
        """Release the simulations."""
