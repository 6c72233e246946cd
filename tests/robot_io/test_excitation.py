"""The policy node's excitation table: what it refuses to play, how it samples, and the log it writes."""

from __future__ import annotations

import numpy as np
import pytest

import simreal_rt
from calibration.excitation import ExcitationConfig, excitation
from robot_io.excitation import ExcitationError, SysidRecorder, load_excitation, write_log
from robot_io.sysid_excite import write_excitation_table
from sim.hanging import hanging_model
from sim.robot_spec import load_robot_spec

BUNDLE = "policies/pretrained/quadruped-flat/bundle"
BUNDLE_NAMES = list(simreal_rt.load_bundle(BUNDLE).spec["joint_names"])
PERIOD_S = 0.02
MAX_STEP_RAD = 0.02


@pytest.fixture(scope="module")
def bundle_spec() -> dict:
    return simreal_rt.load_bundle(BUNDLE).spec


@pytest.fixture(scope="module")
def chirp() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    spec = load_robot_spec("quadruped")
    time_s = np.arange(0.0, 6.0005, 0.001)
    q, dq = excitation(spec, hanging_model(spec, 0.001), ExcitationConfig(duration_s=6.0), time_s)
    return list(spec.joint_names), time_s, q, dq


def _load(tmp_path, bundle_spec, names, time_s, q, dq):
    path = tmp_path / "table.npz"
    write_excitation_table(path, names, time_s, q, dq)
    standing = np.asarray(bundle_spec["default_joint_pos"])
    names_in_bundle = list(bundle_spec["joint_names"])
    return load_excitation(path, names_in_bundle, standing, bundle_spec["safety"], MAX_STEP_RAD, PERIOD_S)


def test_the_generated_chirp_is_accepted_and_sampled_exactly_on_its_rows(tmp_path, bundle_spec, chirp):
    names, time_s, q, dq = chirp
    table = _load(tmp_path, bundle_spec, names, time_s, q, dq)
    q_out, dq_out = np.zeros(12), np.zeros(12)
    table.sample(2.5, q_out, dq_out)
    row = round(2.5 / 0.001)
    np.testing.assert_allclose(q_out, q[row], atol=1e-12)
    np.testing.assert_allclose(dq_out, dq[row], atol=1e-12)
    table.sample(2.5005, q_out, dq_out)  # halfway between two rows
    np.testing.assert_allclose(q_out, 0.5 * (q[row] + q[row + 1]), atol=1e-12)


def test_a_table_in_another_joint_order_is_reordered_by_name(tmp_path, bundle_spec, chirp):
    names, time_s, q, dq = chirp
    order = list(reversed(range(12)))
    table = _load(tmp_path, bundle_spec, [names[i] for i in order], time_s, q[:, order], dq[:, order])
    np.testing.assert_allclose(table.q_target_rad, q, atol=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("too_far", "moves 0.700 rad from the standing pose"),
        ("outside_limits", "leaves its limits"),
        ("too_fast_for_the_step_limit", "FR_hip moves at .* rad per control period: more than max_target_step_rad"),
        ("does_not_start_standing", "does not start at the standing pose"),
        ("non_finite", "non-finite"),
        ("wrong_joints", "are not the bundle's"),
        (
            "spike_between_ticks",
            "FR_thigh moves at up to 50[01]\\.\\d+ rad/s",
        ),  # 1 ms wide: a 20 ms grid would not see it
    ],
)
def test_unsafe_tables_are_refused_with_the_joint_and_the_reason(tmp_path, bundle_spec, chirp, change, message):
    names, time_s, q, dq = chirp
    q, dq, names = q.copy(), dq.copy(), list(names)
    middle = len(time_s) // 2
    window = np.exp(-(((time_s - time_s[middle]) / 0.8) ** 2))  # smooth: only the intended check trips
    if change == "too_far":
        q[:, 4] = q[0, 4] + 0.7 * window  # FL_thigh stands at 0.8, far from its limits
    elif change == "outside_limits":
        q[:, 2] = q[0, 2] + 0.65 * window  # FR_calf stands at -1.5, its upper limit is -0.9
    elif change == "too_fast_for_the_step_limit":
        q[:, 0] += 0.1 * np.sin(2 * np.pi * 3.0 * time_s) * window
    elif change == "does_not_start_standing":
        q[:, 5] += 0.05
    elif change == "non_finite":
        q[middle, 3] = np.nan
    elif change == "wrong_joints":
        names[7] = "RR_knee"
    elif change == "spike_between_ticks":
        q[2010, 1] += 0.5
    with pytest.raises(ExcitationError, match=message) as error:
        _load(tmp_path, bundle_spec, names, time_s, q, dq)
    assert "table.npz" in str(error.value)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"q_target_rad": np.zeros(12)}, "shapes time_s"),
        ({"q_target_rad": np.full((3, 12), "a")}, "q_target_rad holds <U1 values, not numbers"),
        ({"time_s": np.array([0.0, 1000.0, 2000.0])}, "it lasts 2000 s, more than 900 s"),
    ],
)
def test_malformed_tables_are_refused_without_a_traceback(tmp_path, arrays, message):
    table = {"time_s": np.array([0.0, 0.5, 1.0]), "joint_names": np.array(BUNDLE_NAMES), **arrays}
    table.setdefault("q_target_rad", np.zeros((3, 12)))
    table.setdefault("dq_target_rad_s", np.zeros((3, 12)))
    path = tmp_path / "table.npz"
    np.savez(path, **table)
    spec = simreal_rt.load_bundle(BUNDLE).spec
    with pytest.raises(ExcitationError, match=message):
        load_excitation(path, BUNDLE_NAMES, np.asarray(spec["default_joint_pos"]), spec["safety"], 0.02, 0.02)


def test_a_recorder_that_saw_no_state_still_writes_a_log(tmp_path):
    recorder = SysidRecorder("toy", ["a", "b"], fixed_base=True)
    write_log(tmp_path / "log.npz", recorder.arrays())
    with np.load(tmp_path / "log.npz", allow_pickle=False) as log:
        assert log["q_rad"].shape == (0, 2) and log["kp"].shape == (0, 2)


def test_the_recorder_writes_states_in_its_joint_order_and_every_command_row(tmp_path):
    names = ["a", "b", "c"]
    recorder = SysidRecorder("toy", names, fixed_base=True)
    recorder.add_state(1.0, ["c", "a", "b"], np.array([3.0, 1.0, 2.0]), np.array([30.0, 10.0, 20.0]))
    rows = np.arange(15, dtype=float).reshape(5, 3)
    recorder.add_command(1.01, rows, np.array([0.5, 0.0, -0.5]))  # q* as sent = true + encoder offset
    rows[:] = 0.0  # the node reuses its buffer: the recorder must have copied
    path = tmp_path / "sub" / "log.npz"
    write_log(path, recorder.arrays())
    with np.load(path, allow_pickle=False) as log:
        assert str(log["format"]) == "simreal-sysid-log-1" and bool(log["fixed_base"])
        np.testing.assert_array_equal(log["q_rad"], [[1.0, 2.0, 3.0]])
        np.testing.assert_array_equal(log["dq_rad_s"], [[10.0, 20.0, 30.0]])
        np.testing.assert_array_equal(log["kd"], [[12.0, 13.0, 14.0]])
        np.testing.assert_array_equal(log["dq_target_rad_s"], [[3.0, 4.0, 5.0]])
        np.testing.assert_array_equal(log["q_target_rad"], [[-0.5, 1.0, 2.5]])
    assert [p.name for p in path.parent.iterdir()] == ["log.npz"]  # no temporary file left behind
