"""Reading sysid logs: npz validation with errors that name the problem, and rosbag2 giving the same log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from calibration.errors import CalibrationError
from calibration.sysid_log import load_sysid_log
from sim.robot_spec import load_robot_spec
from tests.calibration.sysid_synth import Reality, save_log, synth_log


@pytest.fixture(scope="module")
def spec():
    return load_robot_spec("quadruped")


@pytest.fixture(scope="module")
def arrays(spec) -> dict[str, np.ndarray]:
    return synth_log(spec, Reality(duration_s=3.0))


def _save(tmp_path: Path, arrays: dict[str, np.ndarray], **changes) -> Path:
    values = {**arrays, **changes}
    return save_log(tmp_path / "log.npz", {k: v for k, v in values.items() if v is not None})


def test_a_good_log_loads_in_spec_order(spec, arrays, tmp_path) -> None:
    order = np.arange(spec.num_joints)[::-1]  # the log's columns in reverse joint order
    shuffled = {name: arrays[name][:, order] for name in ("q_rad", "dq_rad_s", "q_target_rad", "kp")}
    log = load_sysid_log(_save(tmp_path, arrays, joint_names=np.array(spec.joint_names)[order], **shuffled), spec)
    assert log.joint_names == spec.joint_names
    np.testing.assert_array_equal(log.q_rad, arrays["q_rad"])
    np.testing.assert_array_equal(log.q_target_rad, arrays["q_target_rad"])
    assert log.fixed_base
    start, end = log.overlap_s
    assert end - start > 2.5


def test_joint_names_of_another_robot_are_named(spec, arrays, tmp_path) -> None:
    names = list(spec.joint_names)
    names[0], names[4] = "shoulder_pan", "elbow"
    path = _save(tmp_path, arrays, joint_names=np.array(names), robot=np.array("arm"))
    with pytest.raises(CalibrationError) as error:
        load_sysid_log(path, spec)
    message = str(error.value)
    assert str(path) in message
    assert "missing joint(s) FR_hip, FL_thigh" in message
    assert "unknown joint(s) shoulder_pan, elbow" in message
    assert "--robot arm" in message


@pytest.mark.parametrize("name", ["q_rad", "command_time_s", "kd", "joint_names"])
def test_a_missing_array_is_named(spec, arrays, tmp_path, name) -> None:
    with pytest.raises(CalibrationError, match=f"lacks array\\(s\\) {name}"):
        load_sysid_log(_save(tmp_path, arrays, **{name: None}), spec)


def test_truncated_arrays_are_refused(spec, arrays, tmp_path) -> None:
    rows = len(arrays["state_time_s"])
    with pytest.raises(CalibrationError, match=rf"q_rad has shape \({rows - 1}, 12\), expected \({rows}, 12\)"):
        load_sysid_log(_save(tmp_path, arrays, q_rad=arrays["q_rad"][: rows - 1]), spec)
    with pytest.raises(CalibrationError, match="dq_target_rad_s has shape"):
        load_sysid_log(_save(tmp_path, arrays, dq_target_rad_s=arrays["dq_target_rad_s"][:, :11]), spec)


def test_non_finite_values_are_refused(spec, arrays, tmp_path) -> None:
    q_target = arrays["q_target_rad"].copy()
    q_target[10, 3] = np.nan
    with pytest.raises(CalibrationError, match="q_target_rad holds 1 non-finite"):
        load_sysid_log(_save(tmp_path, arrays, q_target_rad=q_target), spec)
    times = arrays["state_time_s"].copy()
    times[5] = np.inf
    with pytest.raises(CalibrationError, match="state_time_s holds 1 non-finite"):
        load_sysid_log(_save(tmp_path, arrays, state_time_s=times), spec)


def test_times_must_increase(spec, arrays, tmp_path) -> None:
    times = arrays["command_time_s"].copy()
    times[7] = times[6]
    with pytest.raises(CalibrationError, match="command_time_s does not increase at sample 7"):
        load_sysid_log(_save(tmp_path, arrays, command_time_s=times), spec)


def test_a_short_log_and_a_foreign_format_are_refused(spec, arrays, tmp_path) -> None:
    short = {name: arrays[name][:1500] for name in ("state_time_s", "q_rad", "dq_rad_s")}
    with pytest.raises(CalibrationError, match=r"overlap for 1\.\d\d s, at least 2.0 s"):
        load_sysid_log(_save(tmp_path, arrays, **short), spec)
    with pytest.raises(CalibrationError, match="format 'other-1'"):
        load_sysid_log(_save(tmp_path, arrays, format=np.array("other-1")), spec)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CalibrationError, match="not a readable npz"):
        load_sysid_log(tmp_path / "junk.npz", spec)
    with pytest.raises(CalibrationError, match="does not exist"):
        load_sysid_log(tmp_path / "nope.npz", spec)


def _write_bag(path: Path, arrays: dict[str, np.ndarray], state_names: list[str], command_names: list[str]) -> None:
    """A rosbag2 of the log: /joint_states (header stamps) and /joint_pd_command (bag stamps), names reordered."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    JointState = store.types["sensor_msgs/msg/JointState"]
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    MultiArray = store.types["std_msgs/msg/Float64MultiArray"]
    Layout = store.types["std_msgs/msg/MultiArrayLayout"]
    Dim = store.types["std_msgs/msg/MultiArrayDimension"]
    log_names = [str(name) for name in arrays["joint_names"]]
    state_order = [log_names.index(name) for name in state_names]
    command_order = [log_names.index(name) for name in command_names]
    rows = ("q_target_rad", "dq_target_rad_s", "tau_ff_nm", "kp", "kd")
    with Writer(path, version=9) as writer:
        states = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=store)
        commands = writer.add_connection("/joint_pd_command", "std_msgs/msg/Float64MultiArray", typestore=store)
        for i, stamp in enumerate(arrays["state_time_s"]):
            ns = round(stamp * 1e9)
            message = JointState(
                header=Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=""),
                name=state_names,
                position=arrays["q_rad"][i, state_order],
                velocity=arrays["dq_rad_s"][i, state_order],
                effort=np.zeros(0),
            )
            receive_ns = ns + 150_000  # states arrive later than their stamp: the loader must use the stamp
            writer.write(states, receive_ns, store.serialize_cdr(message, JointState.__msgtype__))
        n = len(command_names)
        for i, stamp in enumerate(arrays["command_time_s"]):
            data = np.stack([arrays[row][i, command_order] for row in rows]).ravel()
            layout = Layout(
                dim=[
                    Dim(label=",".join(rows), size=5, stride=5 * n),
                    Dim(label=",".join(command_names), size=n, stride=n),
                ],
                data_offset=0,
            )
            message = MultiArray(layout=layout, data=data)
            writer.write(commands, round(stamp * 1e9), store.serialize_cdr(message, MultiArray.__msgtype__))


def test_a_rosbag_reads_as_the_npz(spec, arrays, tmp_path) -> None:
    names = list(spec.joint_names)
    _write_bag(tmp_path / "bag", arrays, names[::-1], names[3:] + names[:3])
    from_bag = load_sysid_log(tmp_path / "bag", spec)
    from_npz = load_sysid_log(_save(tmp_path, arrays), spec)
    for field in ("state_time_s", "command_time_s"):
        np.testing.assert_allclose(getattr(from_bag, field), getattr(from_npz, field), rtol=0, atol=2e-9)
    for field in ("q_rad", "dq_rad_s", "q_target_rad", "dq_target_rad_s", "tau_ff_nm", "kp", "kd"):
        np.testing.assert_array_equal(getattr(from_bag, field), getattr(from_npz, field))
    storage = next((tmp_path / "bag").glob("*.db3"))
    assert load_sysid_log(storage, spec).q_rad.shape == from_npz.q_rad.shape  # the storage file alone


def test_a_rosbag_of_another_robot_is_named(spec, arrays, tmp_path) -> None:
    names = list(spec.joint_names)
    renamed = [*names[:-1], "wrist"]
    bag_arrays = {**arrays, "joint_names": np.array(renamed)}
    _write_bag(tmp_path / "bag", bag_arrays, renamed, renamed)
    with pytest.raises(CalibrationError, match="missing joint\\(s\\) RL_calf; unknown joint\\(s\\) wrist"):
        load_sysid_log(tmp_path / "bag", spec)
