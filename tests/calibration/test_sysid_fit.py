"""The sysid fit recovers a hidden reality from a synthetic log of the hung quadruped (real MuJoCo, no mocks).

The log comes from tests/calibration/sysid_synth.py, a separate stepper of the emulator's semantics (qfrc_applied
PD, a command queue with transport + latency, 1 ms physics), not from the fit's actuator-based rollout.
"""

from __future__ import annotations

import time

import pytest
import yaml

from calibration.errors import CalibrationError
from calibration.sysid_fit import SysidFitConfig, fit_sysid, write_robot_params
from calibration.sysid_log import load_sysid_log
from calibration.sysid_plot import plot_fit
from sim.robot_spec import load_robot_spec
from tests.calibration.sysid_synth import Reality, save_log, synth_log

REALITY = Reality(kp_scale=0.8, kd_scale=1.5, latency_s=0.010, transport_s=0.0003)


@pytest.fixture(scope="module")
def spec():
    return load_robot_spec("quadruped")


@pytest.fixture(scope="module")
def fitted(spec, tmp_path_factory) -> tuple:
    path = save_log(tmp_path_factory.mktemp("sysid") / "log.npz", synth_log(spec, REALITY))
    log = load_sysid_log(path, spec)
    start = time.perf_counter()
    result = fit_sysid(log, spec, SysidFitConfig())
    return path, log, result, time.perf_counter() - start


@pytest.mark.slow
def test_fit_recovers_the_hidden_gains_and_delay(fitted) -> None:
    _, _, result, seconds = fitted
    fit = result.fitted
    print(f"fit {seconds:.1f} s: {fit}; rms {result.rms_nominal_rad:.2e} -> {result.rms_fitted_rad:.2e} rad")
    assert fit.kp_scale == pytest.approx(0.8, rel=0.05)
    assert fit.kd_scale == pytest.approx(1.5, rel=0.05)
    # the command takes effect at the first 1 ms step after publish + 0.3 ms + 10 ms: 10.3-11.3 ms
    assert abs(fit.delay_s - 0.010) <= 0.002
    assert fit.damping == pytest.approx(0.1, abs=0.03)
    assert fit.armature == pytest.approx(0.01, rel=0.2)
    assert fit.frictionloss == pytest.approx(0.2, rel=0.2)
    assert result.rms_fitted_rad * 3.0 <= result.rms_nominal_rad
    assert result.rms_fitted_rad < 1e-3  # near the 2e-4 rad measurement noise
    assert seconds < 60.0


@pytest.mark.slow
def test_nominal_is_the_mjcf_and_unit_scales(fitted) -> None:
    nominal = fitted[2].nominal
    assert (nominal.kp_scale, nominal.kd_scale, nominal.delay_s) == (1.0, 1.0, 0.0)
    assert nominal.damping == pytest.approx(0.1)
    assert nominal.armature == pytest.approx(0.01)
    assert nominal.frictionloss == pytest.approx(0.2)


@pytest.mark.slow
def test_robot_params_yaml_holds_the_fit(fitted, spec, tmp_path) -> None:
    log_path, _, result, _ = fitted
    out = write_robot_params(tmp_path / "params" / "quadruped.yaml", result, spec, log_path)
    assert "actuators:\n  kp_scale: " in out.read_text()  # block style, as the loader's documentation shows
    data = yaml.safe_load(out.read_text())
    assert list(data) == ["robot", "actuators", "joints", "fit"]
    assert data["robot"] == "quadruped"
    assert data["actuators"]["kp_scale"] == pytest.approx(result.fitted.kp_scale, abs=1e-6)
    assert data["actuators"]["delay_s"] == pytest.approx(result.fitted.delay_s, abs=1e-6)
    assert set(data["joints"]) == {"damping", "armature", "frictionloss"}
    assert data["fit"]["sysid"]["log"] == str(log_path.resolve())
    assert data["fit"]["sysid"]["rms_fitted_rad"] < data["fit"]["sysid"]["rms_nominal_rad"]
    assert not list(out.parent.glob(".*.tmp"))  # written through a temp file, nothing left behind


def test_the_fit_is_merged_into_a_file_with_joint_offsets(fitted, spec, tmp_path) -> None:
    log_path, _, result, _ = fitted
    out = tmp_path / "quadruped.yaml"
    out.write_text("robot: quadruped\njoint_offsets_rad: {FR_hip: 0.012}\nfit: {joint_offsets: {log: held.npz}}\n")
    write_robot_params(out, result, spec, log_path)
    data = yaml.safe_load(out.read_text())
    assert data["joint_offsets_rad"] == {"FR_hip": 0.012}  # what calibrate joints wrote stays
    assert data["fit"]["joint_offsets"] == {"log": "held.npz"} and "sysid" in data["fit"]
    assert data["actuators"]["kp_scale"] == pytest.approx(result.fitted.kp_scale, abs=1e-6)


@pytest.mark.slow
def test_plot_is_a_png(fitted, spec, tmp_path) -> None:
    _, log, result, _ = fitted
    out = plot_fit(tmp_path / "fit.png", log, spec, result)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_changing_gains_are_refused(spec, tmp_path) -> None:
    arrays = synth_log(spec, Reality(duration_s=3.0))
    arrays["kp"][len(arrays["kp"]) // 2 :] *= 2.0
    log = load_sysid_log(save_log(tmp_path / "log.npz", arrays), spec)
    with pytest.raises(CalibrationError, match="kp/kd change"):
        fit_sysid(log, spec, SysidFitConfig())


def test_bad_config_is_refused(spec, tmp_path) -> None:
    log = load_sysid_log(save_log(tmp_path / "log.npz", synth_log(spec, Reality(duration_s=3.0))), spec)
    with pytest.raises(CalibrationError, match="fit_segments"):
        fit_sysid(log, spec, SysidFitConfig(fit_segments=0))
