"""A PNG of simulated against logged joint angles, with the nominal and the fitted model, for a few joints."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg  # Agg: no display on a robot's laptop or in CI
from matplotlib.figure import Figure

from sim.robot_spec import RobotSpec

from .board_io import atomic_write_bytes
from .sysid_fit import FitResult, Replay, SysidFitConfig
from .sysid_log import SysidLog

PLOT_JOINTS = 3  # one hip, thigh and calf: the first leg's joints
PLOT_SEGMENTS = 3  # consecutive segments from the middle of the log


def plot_fit(path: Path | str, log: SysidLog, spec: RobotSpec, result: FitResult) -> Path:
    """Write a PNG: per joint, logged q and the simulated q before (nominal) and after the fit."""
    replay = Replay(log, spec, SysidFitConfig(segment_s=result.segment_s))
    middle = len(replay.segment_starts) // 2
    segments = list(range(max(0, middle - 1), min(len(replay.segment_starts), middle - 1 + PLOT_SEGMENTS)))
    times, nominal_q = replay.trajectories(result.nominal, segments)
    _, fitted_q = replay.trajectories(result.fitted, segments)
    joints = list(range(min(PLOT_JOINTS, spec.num_joints)))
    figure = Figure(figsize=(10, 2.6 * len(joints)))
    axes = figure.subplots(len(joints), 1, sharex=True, squeeze=False)
    state_t = log.state_time_s - replay.origin_s
    span = (times[0][0], times[-1][-1])
    shown = (state_t >= span[0]) & (state_t <= span[1])
    for row, joint in enumerate(joints):
        axis = axes[row, 0]
        axis.plot(state_t[shown], log.q_rad[shown, joint], color="black", lw=1.5, label="logged")
        for index, (t, nominal, fitted) in enumerate(zip(times, nominal_q, fitted_q, strict=True)):
            axis.plot(t, nominal[:, joint], color="tab:red", lw=1, ls="--", label="nominal" if index == 0 else None)
            axis.plot(t, fitted[:, joint], color="tab:blue", lw=1, label="fitted" if index == 0 else None)
            axis.axvline(t[0], color="gray", lw=0.5, alpha=0.5)  # each segment restarts from the logged state
        axis.set_ylabel(f"{spec.joint_names[joint]} [rad]")
        axis.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right")
    axes[0, 0].set_title(
        f"{spec.name} sysid: RMS {result.rms_nominal_rad * 1e3:.2f} mrad nominal -> "
        f"{result.rms_fitted_rad * 1e3:.2f} mrad fitted"
    )
    axes[-1, 0].set_xlabel("time since the first logged state [s]")
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return atomic_write_bytes(Path(path), buffer.getvalue())
