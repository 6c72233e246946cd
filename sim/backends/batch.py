"""The default backend: mujoco.batch.Batch, threaded over the CPU cores with the GIL released.

Its fields are numpy views of the Batch's own memory (float64); torch.from_numpy
wraps them without a copy, so the env reads and writes the simulations directly.
"""

from __future__ import annotations

import os
import warnings

import mujoco
import mujoco.batch
import numpy as np
import torch

from sim.backends.base import SimBackend


class BatchBackend(SimBackend):
    """mujoco.batch.Batch of `num_envs` simulations on `num_threads` threads (0: one per core); each
    simulation gets its own copy of the model fields `per_env_fields`."""

    name = "batch"

    def __init__(
        self, model: mujoco.MjModel, num_envs: int, per_env_fields: tuple[str, ...], num_threads: int = 0
    ) -> None:
        self.model = model
        self.num_envs = num_envs
        self.device = torch.device("cpu")
        threads = num_threads or os.cpu_count() or 1
        self.batch = mujoco.batch.Batch(model, nsim=num_envs, nthread=threads, persistent=True)
        self._data: dict[str, torch.Tensor] = {}
        self._model_fields: dict[str, torch.Tensor] = {}
        self._time = self.data("time")
        for name in per_env_fields:
            self.model_field(name)

    def data(self, field: str) -> torch.Tensor:
        if field not in self._data:
            array = self.batch.bind(field)
            with warnings.catch_warnings():
                # derived fields (sensordata, site_xpos, ...) are read-only views: the env only reads them
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                self._data[field] = torch.from_numpy(array)
        return self._data[field]

    def model_field(self, field: str) -> torch.Tensor:
        if field not in self._model_fields:
            self._model_fields[field] = torch.from_numpy(self.batch.expand(field))
        return self._model_fields[field]

    def step(self, nstep: int) -> torch.Tensor:
        failed = torch.zeros(self.num_envs, dtype=torch.bool)
        expected_time = self._time + nstep * self.model.opt.timestep
        try:
            self.batch.step(nstep=nstep, stage=mujoco.mjtStage.mjSTAGE_VEL)
        except mujoco.batch.SimulationError as error:
            failed[torch.as_tensor(np.asarray(error.ids, dtype=np.int64))] = True
        # MuJoCo resets a diverging simulation by itself (time restarts at 0): count those too
        failed |= self._time < expected_time - 1e-9
        return failed

    def reset(self, ids: torch.Tensor) -> None:
        self.batch.reset(_indices(ids), stage=mujoco.mjtStage.mjSTAGE_NONE)

    def forward(self, ids: torch.Tensor) -> None:
        self.batch.forward(_indices(ids), stage=mujoco.mjtStage.mjSTAGE_VEL)

    def set_const(self, ids: torch.Tensor) -> None:
        self.batch.set_const(_indices(ids))

    def copy_to_host(self, index: int, data: mujoco.MjData) -> mujoco.MjModel:
        self.batch.get_data(index, data)
        return self.batch.get_model(index)

    def describe(self) -> dict:
        return {**super().describe(), "threads": self.batch.nthread}

    def save_state(self) -> dict[str, torch.Tensor]:
        # one memcpy of the Batch's integration state
        return {"state": torch.from_numpy(self.batch.state.copy())}

    def restore_state(self, state: dict[str, torch.Tensor]) -> None:
        self.batch.state[:] = state["state"].numpy()

    def close(self) -> None:
        self.batch = None


def _indices(ids: torch.Tensor) -> np.ndarray:
    return ids.detach().cpu().numpy().astype(np.int32)
