"""Fit the simulator to a sysid log: PD gain scales, actuation delay and the joints' damping, armature, friction loss.

What is fitted: six global scalars (one value for all joints, not per joint): kp_scale and kd_scale (multiplying the
commanded gains), delay_s (commands take effect this long after their logged time), and the MJCF joint damping,
armature and frictionloss of every joint.

The model is the robot hung on a stand (`sim.hanging.hanging_model`) at 1 kHz, replaying the logged commands. The
emulator (and a real drive) applies tau = clip(kp (q* - q) + kd (dq* - dq) + tau_ff, +-effort) through
qfrc_applied; here the MJCF's own position actuators carry the same law so that `mujoco.rollout` (C++, no Python
per step) can run it: gain kp', bias (0, -kp', -kd') and the control
u = q* + (kd' dq* + tau_ff) / kp' give kp' (u - q) - kd' dq = kp' (q* - q) + kd' (dq* - dq) + tau_ff exactly, and
the actuator's forcerange is the spec's effort limit (the clamp acts on the whole PD torque, as in the emulator;
ctrllimited is switched off since u is not a position). The quadruped's integrator is Euler with eulerdamp
disabled, so the actuator's kv is explicit like the emulator's qfrc_applied. This needs constant gains per joint
through the log (what `simreal sysid excite` sends); a log whose kp/kd change is refused.

The delay is in the controls: step k at time t_k holds the newest command with t_cmd + delay <= t_k (zero-order
hold). On a 1 ms grid that makes the error a staircase in delay_s, which a gradient method cannot follow; the step
at which a command switches in is therefore blended, weight clip((t_k + dt - t_cmd - delay) / dt, 0, 1) of the new
command, which is exact on the grid points and linear between them. Even so the error has a local minimum near
every multiple of the command period, so the fit first scans delay_s (0 to delay_max_s, 1 ms steps) with the
other parameters nominal, then refines all six from the best delay.

mujoco.sysid is used for what fits this setup: `Parameter` / `ParameterDict` (values, nominals, bounds),
`create_initial_state` (the FULLPHYSICS start state of each segment), `sysid_rollout` (mujoco.rollout over all
segments and finite-difference columns in one call) and `optimize` (its "mujoco" Levenberg-Marquardt backend with
box bounds and x_scale). Its `build_residual_fn` / `model_residual` pipeline is not used: it rebuilds an MjModel
from an MjSpec per evaluation, treats controls as parameter-independent (our delay and gain scales change them)
and resamples controls linearly (our commands are a zero-order hold); the residual here is our own.

Segments: the log is cut into `segment_s` windows, each re-initialised from the logged (q, dq) at its start, so
a model error does not accumulate over 20 s and the fit stays cheap; the fit uses `fit_segments` of them spread
over the log (the chirp's frequency rises with time), the reported RMS errors use all of them.
"""

from __future__ import annotations

import copy
import io
import math
from dataclasses import dataclass
from pathlib import Path

import mujoco
import mujoco.sysid as mjsysid
import numpy as np

from sim.hanging import hanging_model
from sim.robot_params import existing_or_empty
from sim.robot_params import write_robot_params as write_params_file
from sim.robot_spec import RobotSpec, SpecError, actuator_ids, joint_dof_ids, joint_qpos_ids

from .errors import CalibrationError
from .sysid_log import SysidLog

PARAMETER_NAMES = ("kp_scale", "kd_scale", "delay_s", "damping", "armature", "frictionloss")
DELAY = PARAMETER_NAMES.index("delay_s")
# bounds wide enough for a real robot, tight enough that the model stays stable at 1 kHz
BOUNDS = {
    "kp_scale": (0.2, 3.0),
    "kd_scale": (0.1, 5.0),
    "delay_s": (0.0, 0.05),
    "damping": (0.0, 2.0),
    "armature": (0.0005, 0.2),
    "frictionloss": (0.0, 3.0),
}
# the optimizer works on x / X_SCALE, about 1 for every parameter
X_SCALE = np.array([1.0, 1.0, 0.01, 0.1, 0.01, 0.2])


@dataclass(frozen=True)
class SysidFitConfig:
    physics_dt_s: float = 0.001  # the emulator's rate; the delay is resolved to this grid (then blended)
    segment_s: float = 1.0
    fit_segments: int = 8  # segments the optimizer rolls out per evaluation (the RMS uses all)
    delay_max_s: float = 0.04  # the delay scan's range
    delay_scan_step_s: float = 0.001
    max_iters: int = 25
    residual_stride: int = 5  # compare every n-th physics step (consecutive 1 kHz samples add little)

    def validate(self) -> None:
        checks = (
            ("physics_dt_s", 0.0 < self.physics_dt_s <= 0.005, "must be in (0, 0.005]"),
            ("segment_s", self.segment_s >= 10 * self.physics_dt_s, "must span at least 10 physics steps"),
            ("fit_segments", self.fit_segments >= 1, "must be >= 1"),
            ("delay_max_s", 0.0 <= self.delay_max_s <= BOUNDS["delay_s"][1], f"must be in [0, {BOUNDS['delay_s'][1]}]"),
            ("delay_scan_step_s", self.delay_scan_step_s > 0.0, "must be > 0"),
            ("max_iters", self.max_iters >= 1, "must be >= 1"),
            ("residual_stride", self.residual_stride >= 1, "must be >= 1"),
        )
        for name, ok, requirement in checks:
            if not ok:
                raise CalibrationError(f"sysid fit {name} {requirement}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SysidParams:
    """One value of the six fitted parameters (global: the same for every joint)."""

    kp_scale: float
    kd_scale: float
    delay_s: float
    damping: float
    armature: float
    frictionloss: float

    def as_vector(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in PARAMETER_NAMES])

    @classmethod
    def from_vector(cls, x: np.ndarray) -> SysidParams:
        return cls(**{name: float(value) for name, value in zip(PARAMETER_NAMES, x, strict=True)})


@dataclass(frozen=True)
class FitResult:
    nominal: SysidParams  # scales 1, delay 0, the MJCF's joint properties
    fitted: SysidParams
    rms_nominal_rad: float  # joint-angle RMS error over all segments and joints
    rms_fitted_rad: float
    segment_s: float
    num_segments: int


def fit_sysid(log: SysidLog, spec: RobotSpec, config: SysidFitConfig | None = None) -> FitResult:
    """Fit kp/kd scales, delay and joint damping/armature/frictionloss to the log (see the module docstring)."""
    config = config or SysidFitConfig()
    config.validate()
    replay = Replay(log, spec, config)
    nominal = replay.nominal
    objective = _Objective(replay, config)
    # Wrong gains bias a delay scan, and from a biased delay the full refinement can trade delay against armature
    # and damping (seen on a noisier emulator log: 15.9 ms with damping 0.005, a higher cost than the truth). So:
    # scan the delay with the rest nominal, fit the gains alone at that delay (they are well determined), scan
    # the delay again with those gains, then refine all six from there.
    gains = objective.refine(objective.best_delay(nominal.as_vector()), free=("kp_scale", "kd_scale"))
    fitted = SysidParams.from_vector(objective.refine(objective.best_delay(gains)))
    return FitResult(
        nominal=nominal,
        fitted=fitted,
        rms_nominal_rad=replay.rms_rad(nominal),
        rms_fitted_rad=replay.rms_rad(fitted),
        segment_s=config.segment_s,
        num_segments=len(replay.segment_starts),
    )


class _Objective:
    """The fit's residuals over `fit_segments` of the log, a delay scan, and Levenberg-Marquardt refinement."""

    def __init__(self, replay: Replay, config: SysidFitConfig) -> None:
        self.replay, self.config = replay, config
        self.segments = _spread(list(range(len(replay.segment_starts))), config.fit_segments)

    def residuals(self, columns: np.ndarray) -> np.ndarray:
        """Residuals, one column per column of (all six) parameter values."""
        return self.replay.residuals(columns, self.segments, self.config.residual_stride)

    def best_delay(self, x: np.ndarray) -> np.ndarray:
        """`x` with its delay replaced by the best of a scan over 0..delay_max_s (the others held)."""
        delays = np.arange(0.0, self.config.delay_max_s + 1e-12, self.config.delay_scan_step_s)
        columns = np.repeat(np.asarray(x, dtype=float)[:, None], len(delays), axis=1)
        columns[DELAY] = delays
        start = np.asarray(x, dtype=float).copy()
        start[DELAY] = delays[int(np.argmin((self.residuals(columns) ** 2).sum(axis=0)))]
        return start

    def refine(self, start: np.ndarray, free: tuple[str, ...] = PARAMETER_NAMES) -> np.ndarray:
        """Levenberg-Marquardt on the `free` parameters from `start` (the others frozen); the full vector."""
        free_rows = [PARAMETER_NAMES.index(name) for name in free]

        def full(x: np.ndarray) -> np.ndarray:
            """Columns of all six parameters from columns of the free ones."""
            columns = np.repeat(np.asarray(start, dtype=float)[:, None], x.shape[1], axis=1)
            columns[free_rows] = x
            return columns

        def residual_fn(x: np.ndarray, _params: mjsysid.ParameterDict) -> tuple[list[np.ndarray], None, None]:
            res = self.residuals(full(x if x.ndim == 2 else x[:, None]))
            return [res if x.ndim == 2 else res[:, 0]], None, None

        fitted_params, _ = mjsysid.optimize(
            _parameter_dict(self.replay.nominal, start, free),
            residual_fn,
            optimizer="mujoco",
            verbose=False,
            max_iters=self.config.max_iters,
            x_scale=X_SCALE[free_rows],
            output=io.StringIO(),  # the backend prints every iteration otherwise (optimize's verbose does not reach it)
            eps=1e-6,  # relative to x_scale: above the solver's noise, below the parameters' precision
        )
        return full(fitted_params.as_vector()[:, None])[:, 0]


def _parameter_dict(
    nominal: SysidParams, start: np.ndarray, free: tuple[str, ...] = PARAMETER_NAMES
) -> mjsysid.ParameterDict:
    params = mjsysid.ParameterDict()
    for name, nominal_value, value in zip(PARAMETER_NAMES, nominal.as_vector(), start, strict=True):
        low, high = BOUNDS[name]
        parameter = mjsysid.Parameter(name, nominal_value, low, high, frozen=name not in free)
        parameter.update_from_vector(np.array([np.clip(value, low, high)]))
        params.add(parameter)
    return params


def _spread(items: list[int], count: int) -> list[int]:
    """`count` items evenly spread over the list (all of them if it is shorter)."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in picks]


class Replay:
    """The hung robot's model and the log cut into segments: rollouts and their errors for parameter values."""

    def __init__(self, log: SysidLog, spec: RobotSpec, config: SysidFitConfig) -> None:
        self.log, self.spec, self.config = log, spec, config
        self.model = _pd_model(spec, config.physics_dt_s)
        self._dofs = joint_dof_ids(self.model, spec)
        self._qpos = joint_qpos_ids(self.model, spec)
        self._actuators = actuator_ids(self.model, spec)
        self.kp, self.kd = _constant_gains(log)
        self.nominal = SysidParams(
            kp_scale=1.0,
            kd_scale=1.0,
            delay_s=0.0,
            damping=float(self.model.dof_damping[self._dofs].mean()),
            armature=float(self.model.dof_armature[self._dofs].mean()),
            frictionloss=float(self.model.dof_frictionloss[self._dofs].mean()),
        )
        dt = config.physics_dt_s
        self.steps = round(config.segment_s / dt)
        # times relative to the first state: absolute (epoch) stamps would cost float precision
        self.origin_s = float(log.state_time_s[0])
        self._state_t = log.state_time_s - self.origin_s
        self._command_t = log.command_time_s - self.origin_s
        first = max(self._state_t[0], self._command_t[0] + BOUNDS["delay_s"][1])  # every delay has a command then
        last = min(self._state_t[-1], self._command_t[-1]) - config.segment_s
        if last < first:
            raise CalibrationError(
                f"sysid log of {log.state_time_s[-1] - log.state_time_s[0]:.2f} s is too short for one "
                f"{config.segment_s} s segment after the first command: record a longer excitation"
            )
        count = int((last - first) // config.segment_s) + 1
        wanted = first + config.segment_s * np.arange(count)
        # each segment starts at a logged state (its measured q, dq are the initial state)
        self.segment_starts = sorted(set(np.searchsorted(self._state_t, wanted).tolist()))
        self._grid = [self._state_t[i] + dt * np.arange(self.steps + 1) for i in self.segment_starts]
        self._measured = [_interp_columns(grid, self._state_t, log.q_rad) for grid in self._grid]
        self._initial = [self._initial_state(i) for i in self.segment_starts]
        self._data = mujoco.MjData(self.model)

    def _initial_state(self, index: int) -> np.ndarray:
        qpos = self.model.qpos0.copy()
        qvel = np.zeros(self.model.nv)
        qpos[self._qpos] = self.log.q_rad[index]
        qvel[self._dofs] = self.log.dq_rad_s[index]
        return mjsysid.create_initial_state(self.model, qpos, qvel)

    def model_for(self, params: SysidParams) -> mujoco.MjModel:
        """A copy of the model with these parameters written in (global values, every joint)."""
        model = copy.copy(self.model)
        kp = params.kp_scale * self.kp
        kd = params.kd_scale * self.kd
        model.actuator_gainprm[self._actuators, 0] = kp
        model.actuator_biasprm[self._actuators, 1] = -kp
        model.actuator_biasprm[self._actuators, 2] = -kd
        model.dof_damping[self._dofs] = params.damping
        model.dof_armature[self._dofs] = params.armature
        model.dof_frictionloss[self._dofs] = params.frictionloss
        mujoco.mj_setConst(model, mujoco.MjData(model))  # invweight0 (friction-loss regularisation) follows armature
        return model

    def controls(self, params: SysidParams, segment: int) -> np.ndarray:
        """(steps, nu) actuator controls of a segment: the delayed, held commands as position-actuator inputs."""
        log, dt = self.log, self.config.physics_dt_s
        kp = params.kp_scale * self.kp
        kd = params.kd_scale * self.kd
        inputs = log.q_target_rad + (kd * log.dq_target_rad_s + log.tau_ff_nm) / kp  # (N, J)
        times = self._grid[segment][:-1]
        effective = self._command_t + params.delay_s
        newest = np.searchsorted(effective, times + dt, side="left") - 1  # switched in during this step or before
        newest = np.clip(newest, 1, len(effective) - 1)
        weight = np.clip((times + dt - effective[newest]) / dt, 0.0, 1.0)[:, None]
        ctrl = np.zeros((len(times), self.model.nu))
        ctrl[:, self._actuators] = weight * inputs[newest] + (1.0 - weight) * inputs[newest - 1]
        return ctrl

    def rollout_q(self, models: list[mujoco.MjModel], params: list[SysidParams], segments: list[int]) -> list:
        """Simulated joint angles (steps, J) after each step, for every (model, params) x segment."""
        controls, states, model_list = [], [], []
        for model, values in zip(models, params, strict=True):
            for segment in segments:
                ctrl = self.controls(values, segment)
                # sysid_rollout drops the last control (it has no measurement after it): pad one
                controls.append(mjsysid.TimeSeries(self._grid[segment], np.vstack([ctrl, ctrl[-1:]])))
                states.append(self._initial[segment])
                model_list.append(model)
        trajectories = mjsysid.sysid_rollout(model_list, [self._data], controls, states)
        return [trajectory.state.data[:, 1 + self._qpos] for trajectory in trajectories]

    def residuals(self, x: np.ndarray, segments: list[int], stride: int) -> np.ndarray:
        """(rows, columns of x): simulated minus logged joint angle, scaled so the sum of squares is the mean."""
        params = [SysidParams.from_vector(np.clip(x[:, i], *_bound_vectors())) for i in range(x.shape[1])]
        models = [self.model_for(values) for values in params]
        simulated = self.rollout_q(models, params, segments)
        columns = []
        for i in range(len(params)):
            parts = []
            for j, segment in enumerate(segments):
                q = simulated[i * len(segments) + j]
                parts.append((q - self._measured[segment][1:])[stride - 1 :: stride].ravel())
            columns.append(np.concatenate(parts))
        residual = np.stack(columns, axis=1)
        return residual / math.sqrt(residual.shape[0])

    def rms_rad(self, params: SysidParams) -> float:
        """Joint-angle RMS error over every segment and joint (every physics step compared)."""
        res = self.residuals(params.as_vector()[:, None], list(range(len(self.segment_starts))), 1)
        return float(np.sqrt((res**2).sum()))

    def trajectories(self, params: SysidParams, segments: list[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(times_s from the log's first state, simulated q (steps + 1, J)) per segment, for plots."""
        simulated = self.rollout_q([self.model_for(params)], [params], segments)
        times = [self._grid[segment] for segment in segments]
        q = [
            np.vstack([self.log.q_rad[self.segment_starts[segment]], sim])
            for segment, sim in zip(segments, simulated, strict=True)
        ]
        return times, q


def _bound_vectors() -> tuple[np.ndarray, np.ndarray]:
    return np.array([BOUNDS[n][0] for n in PARAMETER_NAMES]), np.array([BOUNDS[n][1] for n in PARAMETER_NAMES])


def _pd_model(spec: RobotSpec, physics_dt_s: float) -> mujoco.MjModel:
    """The hung robot with its position actuators made into the emulator's PD law (see the module docstring)."""
    model = hanging_model(spec, physics_dt_s)
    actuators = actuator_ids(model, spec)
    if model.opt.integrator != mujoco.mjtIntegrator.mjINT_EULER:
        raise CalibrationError(
            f"robot {spec.name}: the sysid fit models the drive's PD torque as explicit, which needs the Euler "
            f"integrator in {spec.mjcf_path}"
        )
    model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
    model.actuator_ctrllimited[actuators] = 0  # u is not a position (it carries the rate and feed-forward terms)
    model.actuator_forcelimited[actuators] = 1
    model.actuator_forcerange[actuators, 0] = -spec.effort_limit
    model.actuator_forcerange[actuators, 1] = spec.effort_limit
    model.actuator_delay[actuators] = 0.0  # the delay is in the controls
    return model


def _constant_gains(log: SysidLog) -> tuple[np.ndarray, np.ndarray]:
    """The log's kp and kd per joint; refused if they change (the actuators hold fixed gains) or kp is 0."""
    kp, kd = log.kp[0], log.kd[0]
    if not (np.allclose(log.kp, kp) and np.allclose(log.kd, kd)):
        raise CalibrationError(
            "sysid log: kp/kd change during the log; the fit needs constant gains per joint (record the "
            "excitation with `simreal sysid excite`, which holds the spec's gains)"
        )
    if (kp <= 0.0).any():
        zero = [name for name, gain in zip(log.joint_names, kp, strict=True) if gain <= 0.0]
        raise CalibrationError(f"sysid log: kp is 0 for joint(s) {', '.join(zero)}: nothing to identify there")
    return kp.copy(), kd.copy()


def _interp_columns(times: np.ndarray, sample_times: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(times, sample_times, values[:, j]) for j in range(values.shape[1])], axis=1)


def write_robot_params(path: Path | str, result: FitResult, spec: RobotSpec, log_path: Path | str) -> Path:
    """Write the fit into the parameter-override YAML at `path`, keeping what else it holds (joint offsets)."""
    try:
        base = existing_or_empty(path, spec)
    except SpecError as error:
        raise CalibrationError(f"cannot merge the fit into {path}: {error}") from None
    fit = dict(base.fit or {})
    fit["sysid"] = {
        "log": str(Path(log_path).resolve()),
        "rms_nominal_rad": float(f"{result.rms_nominal_rad:.6g}"),
        "rms_fitted_rad": float(f"{result.rms_fitted_rad:.6g}"),
    }
    values = {name: float(f"{getattr(result.fitted, name):.6g}") for name in PARAMETER_NAMES}
    return write_params_file(path, base.with_dynamics(values, fit))
