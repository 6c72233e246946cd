"""arm-lift: pick the cube from a randomized pose on the table and lift it 10 cm; success = held there 1 s.

The policy sees the cube's pose (`object_pose`, from perception on a robot) and
the end-effector pose (`ee_pose`, forward kinematics); both are simulation-only
terms so far, so this task trains and evaluates but does not export to the C++ core.
"""

from __future__ import annotations

from sim.tasks.config import (
    EnvConfig,
    ManipulationConfig,
    ManipulationRewardConfig,
    ObjectConfig,
    ObservationConfig,
    ObservationTerm,
    TerminationConfig,
)
from sim.tasks.manipulation_randomization import manipulation_randomization


def arm_lift() -> EnvConfig:
    observations = ObservationConfig(
        policy=[
            ObservationTerm("joint_pos_rel", scale=1.0, noise=0.005),
            ObservationTerm("joint_vel", scale=0.1, noise=0.05),
            ObservationTerm("last_action", scale=1.0),
            ObservationTerm("ee_pose", scale=1.0, noise=0.002),
            ObservationTerm("object_pose", scale=1.0, noise=0.005),
        ],
        history=1,
        critic_extra=["ee_to_object", "object_lin_vel", "ee_to_goal", "randomization"],
    )
    rewards = ManipulationRewardConfig(
        reach_position=1.0,
        reach_position_fine=2.0,
        reach_orientation=0.0,
        reach_orientation_fine=0.0,
        object_lift=4.0,
        object_goal=8.0,
        # both pads on the cube: without it the policy hovers at the cube with the gripper open and never grasps
        object_grasp=2.0,
        position_kernel_m=0.1,
        position_fine_kernel_m=0.02,
        # off: the fast finger exceeds its 0.2 m/s limit whenever exploration moves it, and the penalty taught
        # the policy to hold the gripper open and never grasp (a velocity guard on the robot side is the fix)
        joint_velocity_limits=0.0,
    )
    return EnvConfig(
        task="arm-lift",
        robot="arm",
        env="manipulation",
        num_envs=1024,
        observations=observations,
        terminations=TerminationConfig(episode_length_s=6.0),
        randomization=manipulation_randomization(with_object=True),
        manipulation=ManipulationConfig(goal="lift", object=ObjectConfig(enabled=True), rewards=rewards),
    )
