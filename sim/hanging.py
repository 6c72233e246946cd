"""A floating-base robot hung on a test stand: its base welded in the air, its legs free to swing.

System identification excites the joints of a hung robot (the emulator's `fixed_base` parameter, a real robot on
a gantry) and fits a model of the same hung robot, so contacts and the base's motion stay out of the fit.
"""

from __future__ import annotations

import mujoco

from sim.robot_spec import RobotSpec, SpecError

HANG_CLEARANCE_M = 0.25  # the lowest foot at the default pose is this far above the floor


def hanging_model(spec: RobotSpec, physics_dt_s: float) -> mujoco.MjModel:
    """The spec's MJCF with the base's free joint removed and the base raised clear of the floor."""
    if not spec.floating_base:
        raise SpecError(f"robot {spec.name} has no floating base to hang: it is fixed already")
    scene = mujoco.MjSpec.from_file(str(spec.mjcf_path))
    base = scene.body(spec.base_body)
    free_joints = [joint for joint in base.joints if joint.type == mujoco.mjtJoint.mjJNT_FREE]
    if not free_joints:
        raise SpecError(f"robot {spec.name}: base body {spec.base_body!r} has no free joint to remove")
    for joint in free_joints:
        scene.delete(joint)
    for key in list(scene.keys):  # keyframes hold the free joint's 7 qpos: they no longer fit
        scene.delete(key)
    base.pos = [base.pos[0], base.pos[1], base.pos[2] + _lift_m(spec)]
    model = scene.compile()
    model.opt.timestep = physics_dt_s
    return model


def _lift_m(spec: RobotSpec) -> float:
    """How far to raise the base so the lowest foot clears the floor by HANG_CLEARANCE_M at the default pose."""
    model = spec.load_model()
    data = mujoco.MjData(model)
    for name, position in zip(spec.joint_names, spec.default_joint_pos, strict=True):
        data.qpos[model.jnt_qposadr[model.joint(name).id]] = position
    mujoco.mj_kinematics(model, data)
    feet = [model.geom(foot).id for foot in spec.feet]
    lowest_foot_m = min(float(data.geom_xpos[foot, 2] - model.geom_rbound[foot]) for foot in feet)
    return max(0.0, HANG_CLEARANCE_M - lowest_foot_m)
