"""Forward kinematics for logged `/joint_states`: the end-effector pose in the robot's base frame.

The robot model is simreal's own (sim/robots/<name>/); the FK is `ArmDifferentialIK.ee_pose`, so the
calibration uses exactly the kinematics the simulator and the IK use. Joints are matched by name, never
by index. A joint the message names that the robot does not have is an error (a wrong robot or a
renamed driver); a joint missing from the message is an error only if it moves the end effector
(the gripper's finger does not, and many drivers publish it on another topic).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np

from calibration.errors import CalibrationError
from calibration.handeye_poses import pose_matrix
from sim.arm_ik import ArmDifferentialIK
from sim.errors import SimrealError
from sim.robot_spec import RobotSpec, fixed_base_body, load_robot_spec


class RobotForwardKinematics:
    """T_base_ee from joint names and positions, for one robot spec."""

    def __init__(self, robot: str | Path) -> None:
        try:
            spec = load_robot_spec(robot)
        except SimrealError as error:
            raise CalibrationError(f"robot '{robot}': {error}") from None
        if spec.floating_base or spec.ee_site is None:
            raise CalibrationError(
                f"robot '{spec.name}' is not a fixed-base arm with an ee_site; "
                "give `robot_pose` in each sample instead of `joint_states`"
            )
        model = spec.load_model()
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        base = fixed_base_body(model, spec)
        # a real control period is irrelevant to FK; the IK only needs one to build its speed limits
        self._ik = ArmDifferentialIK(model, spec, data.xpos[base].copy(), data.xquat[base].copy(), spec.control_dt)
        self.spec = spec
        self.base_frame = model.body(base).name
        self.ee_frame = str(spec.ee_site)
        self.required_joints = _joints_moving_site(model, spec)

    def ee_pose(self, names: Sequence[str], positions_rad: Sequence[float], where: str) -> np.ndarray:
        """4 x 4 T_base_ee; `where` names the sample in error messages."""
        names = [str(name) for name in names]
        if len(names) != len(positions_rad):
            raise CalibrationError(
                f"{where}: joint_states has {len(names)} names but {len(positions_rad)} positions; "
                "they must pair up one to one"
            )
        unknown = [name for name in names if name not in self.spec.joint_names]
        if unknown:
            raise CalibrationError(
                f"{where}: unknown joint(s) {', '.join(unknown)}: robot '{self.spec.name}' has "
                f"{', '.join(self.spec.joint_names)}; log the right robot, or set `robot:` in the samples file"
            )
        missing = [name for name in self.required_joints if name not in names]
        if missing:
            raise CalibrationError(
                f"{where}: missing joint(s) {', '.join(missing)}, which move the end effector; "
                "log /joint_states with every arm joint"
            )
        joint_pos_rad = np.asarray(self.spec.default_joint_pos, dtype=np.float64).copy()
        for name, position in zip(names, positions_rad, strict=True):
            joint_pos_rad[self.spec.joint_names.index(name)] = float(position)
        position_m, rotation = self._ik.ee_pose(joint_pos_rad)
        return pose_matrix(rotation, position_m)


def _joints_moving_site(model: mujoco.MjModel, spec: RobotSpec) -> tuple[str, ...]:
    """The spec's joints whose body is the ee site's body or one of its ancestors."""
    chain = set()
    body = int(model.site_bodyid[model.site(spec.ee_site).id])
    while body != 0:
        chain.add(body)
        body = int(model.body_parentid[body])
    return tuple(name for name in spec.joint_names if int(model.jnt_bodyid[model.joint(name).id]) in chain)
