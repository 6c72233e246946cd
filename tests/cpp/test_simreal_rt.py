"""The pybind11 module simreal_rt: the C++ loader agrees with the Python one, refuses what it refuses, releases the
GIL, and runs the shipped policy like torch."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import simreal_rt
from policies.bundle import BundleError as PyBundleError
from policies.bundle import load_bundle as py_load_bundle
from policies.bundle_torch import torch_policy_from_bundle
from tests.conftest import in_float64

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "policies" / "pretrained" / "quadruped-flat" / "bundle"


def test_spec_read_by_cpp_equals_pyyaml_on_the_shipped_bundle():
    spec = simreal_rt.load_bundle(str(SHIPPED)).spec
    expected = yaml.safe_load((SHIPPED / "deploy.yaml").read_text())
    joints = expected["joint_names"]
    assert spec["joint_names"] == joints and spec["robot"] == expected["robot"]
    for field in ("default_joint_pos", "kp", "kd"):
        assert spec[field] == [expected[field][name] for name in joints], field
    assert spec["action"] == expected["action"] and spec["control_dt"] == expected["control_dt"]
    assert spec["observation"] == expected["observation"]
    network = {key: value for key, value in expected["network"].items() if key != "normalizer"}
    assert spec["network"] == network
    safety = expected["safety"]
    assert spec["safety"]["joint_pos_lower_rad"] == [safety["joint_pos_limits_rad"][name][0] for name in joints]
    assert spec["safety"]["joint_pos_upper_rad"] == [safety["joint_pos_limits_rad"][name][1] for name in joints]
    for field in ("velocity_limit_rad_s", "torque_limit_nm", "standing_kp", "standing_kd"):
        assert spec["safety"][field] == [safety[field][name] for name in joints], field
    for field in ("tilt_limit_rad", "state_timeout_s", "damping_kd"):
        assert spec["safety"][field] == safety[field], field
    for field in ("task", "run", "iteration", "git_commit", "date"):
        assert spec["provenance"][field] == expected["provenance"][field], field
    assert spec["sha256"] == expected["sha256"]


def test_cpp_policy_matches_torch_on_10k_random_observations():
    bundle = simreal_rt.load_bundle(str(SHIPPED))
    observations = (np.random.default_rng(3).normal(size=(10_000, bundle.input_dim)) * 2.0).astype(np.float32)
    with torch.no_grad():
        expected = in_float64(torch_policy_from_bundle(SHIPPED))(torch.from_numpy(observations).double()).numpy()
    assert np.abs(bundle.evaluate_sequence(observations) - expected).max() <= 1e-5
    assert np.abs(bundle.evaluate(observations[7]) - expected[7]).max() <= 1e-5


# (edit of deploy.yaml, words the C++ message must contain); the Python validator must refuse each one too
BAD_SPECS = [
    (lambda s: s["kp"].pop("RL_calf"), "kp: missing joint 'RL_calf'"),
    (lambda s: s["observation"]["terms"][1].update(name="gravity"), "observation.terms[1].name: unknown term"),
    (lambda s: s["observation"].update(history=2), "network.input_dim: is 45 but"),
    (lambda s: s["network"].update(output_dim=11), "network.output_dim: is 11 but there are 12 joints"),
    (lambda s: s.update(sha256="0" * 64), "does not match deploy.yaml's sha256"),
    (lambda s: s.pop("safety"), "safety: missing field"),
    (lambda s: s.update(format_version=2), "format_version: is 2"),
    (lambda s: s["network"].update(type="lstm"), "network.type: 'lstm' is not supported"),
    (lambda s: s["default_joint_pos"].update(FR_calf=0.5), "default_joint_pos.FR_calf: 0.5 is outside"),
    (lambda s: s["safety"].update(damping_kd=0.0), "safety.damping_kd: must be > 0"),
    (lambda s: s["safety"].update(state_timeout_s=1e9), "safety.state_timeout_s: must be <= 1"),
    (lambda s: s["safety"].update(tilt_limit_rad=3.0), "safety.tilt_limit_rad: must be <= 1.5708"),
    (lambda s: s.update(control_dt=1e6), "control_dt: must be <= 0.1"),
    (lambda s: s["kp"].update(FL_hip=0.0), "kp.FL_hip: must be > 0"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_SPECS)
def test_cpp_and_python_validators_refuse_the_same_bad_bundles(tmp_path, edit, message):
    bundle = tmp_path / "bundle"
    shutil.copytree(SHIPPED, bundle)
    spec = yaml.safe_load((bundle / "deploy.yaml").read_text())
    edit(spec)
    (bundle / "deploy.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(simreal_rt.BundleError) as cpp_error:
        simreal_rt.load_bundle(str(bundle))
    assert message in str(cpp_error.value) and str(cpp_error.value).startswith(str(bundle))  # names the file
    assert isinstance(cpp_error.value, ValueError)
    with pytest.raises(PyBundleError):
        py_load_bundle(bundle)


def test_tampered_weights_are_refused(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(SHIPPED, bundle)
    weights = bytearray((bundle / "policy.safetensors").read_bytes())
    weights[-1] ^= 0x01
    (bundle / "policy.safetensors").write_bytes(bytes(weights))
    with pytest.raises(simreal_rt.BundleError, match=r"policy.safetensors: sha256 .* does not match"):
        simreal_rt.load_bundle(str(bundle))


def test_evaluate_releases_the_gil():
    """While C++ evaluates a long sequence, another Python thread keeps running."""
    bundle = simreal_rt.load_bundle(str(SHIPPED))
    observations = np.zeros((150_000, bundle.input_dim), dtype=np.float32)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (bundle.evaluate_sequence(observations), done.set()))
    started = time.perf_counter()
    worker.start()
    spins = 0
    while not done.is_set():
        spins += 1
    worker.join()
    elapsed = time.perf_counter() - started
    assert elapsed > 0.1, "the call was too short to tell"
    # with the GIL held for the whole call this thread would get a handful of iterations at most
    assert spins > 10_000, (spins, elapsed)


def test_control_core_from_python_reorders_by_name_and_checks_arguments():
    spec = yaml.safe_load((SHIPPED / "deploy.yaml").read_text())
    driver = list(reversed(spec["joint_names"]))
    core = simreal_rt.ControlCore(str(SHIPPED), driver)
    stand = np.array([spec["default_joint_pos"][name] for name in driver])
    sensors = dict(
        joint_vel=np.zeros(12), imu_quat_wxyz=[1, 0, 0, 0], imu_ang_vel=[0, 0, 0], velocity_command=[0.5, 0, 0]
    )
    out = core.tick(0.0, 0.0, stand, imu_stamp_s=0.0, **sensors)
    assert out["state"] == "ZERO_TORQUE" and not out["kp"].any()
    # commands come back in the bundle's joint order, whatever the driver's order
    np.testing.assert_allclose(out["target_pos"], [spec["default_joint_pos"][name] for name in spec["joint_names"]])
    assert core.request("stand_up", 0.0) == (True, "accepted")
    with pytest.raises(ValueError, match="joint_pos has 11 values, expected 12"):
        core.tick(0.02, 0.02, stand[:11], imu_stamp_s=0.02, **sensors)
    with pytest.raises(ValueError, match="unknown request 'jump'"):
        core.request("jump", 0.0)
    with pytest.raises(ValueError, match="'FR_hip'"):
        simreal_rt.ControlCore(str(SHIPPED), driver[:-1])


def test_one_bundle_shared_by_two_threads_gives_the_serial_results():
    """The evaluators' scratch buffers are per object: the module serializes calls on one object."""
    bundle = simreal_rt.load_bundle(str(SHIPPED))
    observations = (np.random.default_rng(4).normal(size=(20_000, bundle.input_dim))).astype(np.float32)
    serial = bundle.evaluate_sequence(observations)
    results: list[np.ndarray] = [None, None]

    def run(slot: int) -> None:
        results[slot] = bundle.evaluate_sequence(observations)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, serial)


def test_control_core_imu_inputs_may_be_none_only_for_a_bundle_without_imu_terms():
    """The quadruped's policy reads the IMU: a missing one is a fault, and running it without an IMU is refused."""
    spec = yaml.safe_load((SHIPPED / "deploy.yaml").read_text())
    joints = spec["joint_names"]
    core = simreal_rt.ControlCore(str(SHIPPED), joints)
    assert core.uses_imu and not core.observes_target_pose and core.target_pose is None
    stand = np.array([spec["default_joint_pos"][name] for name in joints])
    out = core.tick(0.0, 0.0, stand, np.zeros(12), 0.0, None, None, [0, 0, 0], target_pose=[1, 0, 0, 1, 0, 0, 0])
    assert out["state"] == "DAMPING" and out["damping_cause"] == "NONFINITE_OBSERVATION"
    assert not out["have_target_pose"] and core.target_pose is None  # a term it does not observe: ignored
    options = simreal_rt.CoreOptions()
    assert options.imu == simreal_rt.ImuUse.FROM_BUNDLE
    options.imu = simreal_rt.ImuUse.NONE
    with pytest.raises(ValueError, match=r"CoreOptions.imu is NONE but the bundle's observation reads the IMU"):
        simreal_rt.ControlCore(str(SHIPPED), joints, options)
    with pytest.raises(ValueError, match="target_pose has 6 values, expected 7"):
        core.tick(0.0, 0.0, stand, np.zeros(12), 0.0, [1, 0, 0, 0], [0, 0, 0], [0, 0, 0], target_pose=[0] * 6)
