"""MuJoCo Warp backend: every simulation stepped by Warp kernels on a CUDA device or Warp's CPU device.

State stays on the device: the env's tensors are `wp.to_torch` views of the
Warp arrays (float32), so nothing crosses to the host while training. Model
fields that vary per simulation get a leading `num_envs` dimension at
`put_model` (MuJoCo Warp indexes them by world). On CUDA the substeps of one
policy step, the reset and the forward pass are each captured once as a CUDA
graph and replayed. Warp works on its own stream of the device, which (a
blocking stream) is ordered with torch's default stream without host syncs; torch
work on another stream of the user's would need its own synchronisation.

Physics is single precision here and the constraint solver stops on its own
tolerances, so trajectories match the mujoco.batch backend only as closely as
the model's solver settings converge (tests/sim/test_backends.py).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import importlib
import time
from typing import Any

import mujoco
import numpy as np
import torch

from sim.backends.base import DATA_FIELDS, BackendError, SimBackend

# constants set_const derives from masses, inertias, sizes and poses: per simulation as well,
# or simulations would overwrite each other's
SET_CONST_OUTPUTS = (
    "body_subtreemass",
    "dof_invweight0",
    "body_invweight0",
    "tendon_invweight0",
    "actuator_acc0",
    "geom_aabb",
    "geom_rbound",
    "cam_pos0",
    "cam_poscom0",
    "cam_mat0",
    "light_pos0",
    "light_poscom0",
    "light_dir0",
)
INSTALL_HINT = "pip install 'simreal[warp]' (mujoco-warp 4.0.0, warp-lang 1.19.0)"


def import_warp() -> tuple[Any, Any]:
    """(warp, mujoco_warp), or a BackendError that says what is missing and how to install it."""
    try:
        wp = importlib.import_module("warp")
        # no banner, no line per kernel module loaded
        wp.config.quiet = True
        wp.config.log_level = wp.LOG_WARNING
        mjw = importlib.import_module("mujoco_warp")
    except ImportError as error:
        raise BackendError(
            f"--backend warp needs MuJoCo Warp, which is not installed ({error}): {INSTALL_HINT}"
        ) from None
    except Exception as error:  # a broken or mismatched install fails inside its own import
        raise BackendError(
            f"--backend warp: importing MuJoCo Warp failed ({type(error).__name__}: {error}); "
            f"reinstall with {INSTALL_HINT}"
        ) from None
    return wp, mjw


def warp_device(wp: Any, device: str) -> torch.device:
    """The torch device for `device` ('cpu', 'cuda', 'cuda:N'), checked against what Warp and torch see."""
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise BackendError(f"--device {device!r} is not a device: use cpu, cuda or cuda:N") from None
    if torch_device.type == "cpu":
        return torch_device
    if torch_device.type != "cuda":
        raise BackendError(f"--device {device!r}: the warp backend runs on cpu or cuda")
    wp.init()
    if wp.get_cuda_device_count() == 0:
        driver = wp.get_cuda_driver_version()
        reason = (
            "no usable CUDA driver: none is installed, or it is older than this Warp needs"
            if not driver
            else "no CUDA device is visible (CUDA_VISIBLE_DEVICES?)"
        )
        raise BackendError(
            f"--device {device}: Warp {wp.__version__} sees no GPU ({reason}); check `nvidia-smi`, "
            "or run on Warp's CPU device with --device cpu"
        )
    if torch.version.cuda is None:
        raise BackendError(
            f"--device {device}: Warp sees a GPU but this torch ({torch.__version__}) is a CPU build; "
            "install a CUDA build of torch (README, GPU section)"
        )
    if not torch.cuda.is_available():
        raise BackendError(
            f"--device {device}: torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use the GPU Warp "
            "sees: its CUDA is probably newer than the driver; install the torch build that matches the driver"
        )
    index = torch_device.index or 0
    visible = min(wp.get_cuda_device_count(), torch.cuda.device_count())
    if index >= visible:
        raise BackendError(f"--device {device}: only {visible} CUDA device(s) are visible to both Warp and torch")
    return torch.device("cuda", index)


class WarpBackend(SimBackend):
    """MuJoCo Warp simulation of `num_envs` worlds on `device` ('cpu' or 'cuda[:N]')."""

    name = "warp"

    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        per_env_fields: tuple[str, ...],
        device: str = "cpu",
        max_contacts_per_env: int = 64,
        max_constraints_per_env: int = 256,
        cuda_graph: bool = True,
    ) -> None:
        start = time.perf_counter()
        self.wp, self.mjw = import_warp()
        self.device = warp_device(self.wp, device)
        self.model = model
        self.num_envs = num_envs
        self.per_env_fields = tuple(per_env_fields)
        self._warp_device = "cpu" if self.device.type == "cpu" else f"cuda:{self.device.index}"
        with self.wp.ScopedDevice(self._warp_device):
            self.m = self._put_model(model)
            self.d = self.mjw.make_data(
                model, nworld=num_envs, nconmax=max_contacts_per_env, njmax=max_constraints_per_env
            )
        # the same shapes as mujoco.batch's views: (num_envs, *the MjData or MjModel field's shape)
        host_data = mujoco.MjData(model)
        self._data = {
            name: self.wp.to_torch(getattr(self.d, name)).reshape(num_envs, *np.shape(getattr(host_data, name)))
            for name in DATA_FIELDS
        }
        self._model_fields = {
            name: self.wp.to_torch(getattr(self.m, name)).reshape(num_envs, *getattr(model, name).shape)
            for name in self.per_env_fields
        }
        self._overflow = self.wp.to_torch(self.d.overflow)
        # buffers too small lose contacts or constraints: those worlds count as failed and are reset
        # (and Warp prints which buffer); a solver at its iteration limit is normal MuJoCo behaviour
        overflow = self.mjw.OverflowType
        self._failure_bits = int(
            overflow.NEFC
            | overflow.NJMAX_NNZ
            | overflow.BROADPHASE
            | overflow.NARROWPHASE
            | overflow.CCD
            | overflow.HFIELD
            | overflow.NVMAX
        )
        self.m.opt.warn_overflow = self._failure_bits
        # sensors of the acceleration stage (touch, force): step1 clears them, mj_step1 keeps them
        needstage = model.sensor_needstage
        acc_ids = [
            np.arange(model.sensor_adr[s], model.sensor_adr[s] + model.sensor_dim[s])
            for s in range(model.nsensor)
            if needstage[s] == mujoco.mjtStage.mjSTAGE_ACC
        ]
        self._acc_sensor_ids = torch.as_tensor(
            np.concatenate(acc_ids) if acc_ids else np.zeros(0, dtype=np.int64), device=self.device
        )
        self._reset_mask = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._reset_mask_wp = self.wp.from_torch(self._reset_mask)
        self._use_graph = cuda_graph and self._graphs_supported()
        if self.device.type == "cuda" and not self._use_graph:
            # without graphs the solver's convergence loop would wait on the GPU every iteration
            self.m.opt.graph_conditional = False
        self._graphs: dict[tuple, Any] = {}
        self._warm_up()
        self.startup_s = time.perf_counter() - start

    def _graphs_supported(self) -> bool:
        """CUDA graphs need a CUDA device, Warp's memory pool (allocations inside a capture) and, for the
        solver's convergence loop, conditional graph nodes (CUDA driver 12.4 or newer)."""
        wp = self.wp
        if self.device.type != "cuda":
            return False
        return bool(wp.is_mempool_enabled(self._warp_device) and wp.is_conditional_graph_supported())

    def _warm_up(self) -> None:
        """Compile (or load from Warp's kernel cache) every kernel the env uses, before any graph capture."""
        everything = torch.arange(self.num_envs, device=self.device)
        with self._scope():
            self.mjw.reset_data(self.m, self.d)
            self.mjw.set_const(self.m, self.d)
            self.mjw.step(self.m, self.d)
            self.mjw.step1(self.m, self.d)
        self.reset(everything)

    def _put_model(self, model: mujoco.MjModel) -> Any:
        batchable = _batchable_model_fields(self.mjw)
        fields = {name for name in (*self.per_env_fields, *SET_CONST_OUTPUTS) if name in batchable}
        unbatched = sorted(set(self.per_env_fields) - fields)
        if unbatched:
            raise BackendError(f"MuJoCo Warp cannot vary {unbatched} per simulation: disable their randomization")
        try:
            return self.mjw.put_model(model, batch_sizes={name: self.num_envs for name in sorted(fields)})
        except NotImplementedError as error:
            raise BackendError(f"MuJoCo Warp cannot simulate this model: {error}") from None

    def _scope(self) -> contextlib.AbstractContextManager:
        return self.wp.ScopedDevice(self._warp_device)

    def data(self, field: str) -> torch.Tensor:
        return self._data[field]

    def model_field(self, field: str) -> torch.Tensor:
        if field not in self._model_fields:
            raise BackendError(f"model field {field!r} was not declared per simulation (per_env_fields)")
        return self._model_fields[field]

    def _substeps(self, nstep: int) -> None:
        # whole mj_steps, each from its state: the env writes qvel (pushes) and qpos (resets) between
        # steps, and a step continued from the previous step1 would use their stale velocity stage
        for _ in range(nstep):
            self.mjw.step(self.m, self.d)

    def _step1(self) -> None:
        self.mjw.step1(self.m, self.d)

    def _step1_keeping_acc_sensors(self) -> None:
        """step1 at the current state; it clears every sensor, but (as with mj_step1) the
        acceleration-stage ones (touch, force) keep the values of the last step."""
        sensordata = self._data["sensordata"]
        acc_values = sensordata[:, self._acc_sensor_ids].clone()
        self._run(self._step1)
        sensordata[:, self._acc_sensor_ids] = acc_values

    def step(self, nstep: int) -> torch.Tensor:
        with self._scope():
            self._run(self._substeps, nstep)
            self._step1_keeping_acc_sensors()
        failed = (self._overflow & self._failure_bits) != 0
        self._overflow.zero_()
        return failed

    def _run(self, launches, *args) -> None:
        """Run the Warp launches of `launches(*args)`; on CUDA, as a graph captured on first use."""
        if not self._use_graph:
            launches(*args)
            return
        key = (launches.__name__, *args)
        if key not in self._graphs:
            # a garbage-collected Warp object freed during the capture would be recorded into the graph
            collecting = gc.isenabled()
            gc.disable()
            try:
                with self.wp.ScopedCapture(device=self._warp_device) as capture:
                    launches(*args)
            finally:
                if collecting:
                    gc.enable()
            self._graphs[key] = capture.graph
        self.wp.capture_launch(self._graphs[key])

    def _reset_masked(self) -> None:
        self.mjw.reset_data(self.m, self.d, reset=self._reset_mask_wp)

    def reset(self, ids: torch.Tensor) -> None:
        ids = ids.to(self.device)
        self._reset_mask.zero_()
        self._reset_mask[ids] = True
        with self._scope():
            self._run(self._reset_masked)
        self._overflow[ids] = 0

    def forward(self, ids: torch.Tensor) -> None:
        # step1 is a function of each world's state: the other worlds get the values they have, and
        # their touch sensors are kept (a reset world's were cleared by reset_data, as by mj_resetData)
        with self._scope():
            self._step1_keeping_acc_sensors()

    def set_const(self, ids: torch.Tensor) -> None:
        with self._scope():
            self.mjw.set_const(self.m, self.d)

    def copy_to_host(self, index: int, data: mujoco.MjData) -> mujoco.MjModel:
        host = copy.copy(self.model)
        for name, values in self._model_fields.items():
            target = getattr(host, name)
            target[...] = values[index].detach().cpu().numpy().reshape(target.shape)
        self.mjw.get_data_into(data, host, self.d, world_id=index)
        return host

    def describe(self) -> dict:
        # Warp's CPU device runs each kernel on one thread
        threads = 1 if self.device.type == "cpu" else None
        return {
            **super().describe(),
            "threads": threads,
            "warp": self.wp.__version__,
            "cuda_graph": self._use_graph,
            "startup_s": round(self.startup_s, 2),
            "kernel_cache": str(self.wp.config.kernel_cache_dir),
        }


def _batchable_model_fields(mjw: Any) -> set[str]:
    """Model fields whose array spec starts with `*`: MuJoCo Warp can give them one row per world."""
    return {field.name for field in dataclasses.fields(mjw.Model) if getattr(field.type, "shape", ())[:1] == ("*",)}
