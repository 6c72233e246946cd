"""arm-reach: the arm's end effector goes to a sampled pose (position and orientation) in its workspace.

The target pose reaches the policy as the `target_pose` term, in the robot base
frame, so the exported bundle runs on the robot with the goal from /target_pose.
"""

from __future__ import annotations

from sim.tasks.config import EnvConfig, ManipulationConfig, ObservationConfig, ObservationTerm, TerminationConfig
from sim.tasks.manipulation_randomization import manipulation_randomization


def arm_reach() -> EnvConfig:
    observations = ObservationConfig(
        policy=[
            ObservationTerm("joint_pos_rel", scale=1.0, noise=0.005),
            ObservationTerm("joint_vel", scale=0.1, noise=0.05),
            ObservationTerm("last_action", scale=1.0),
            ObservationTerm("target_pose", scale=1.0),
        ],
        history=1,
        critic_extra=["ee_pose", "ee_to_goal", "randomization"],
    )
    return EnvConfig(
        task="arm-reach",
        robot="arm",
        env="manipulation",
        num_envs=1024,
        observations=observations,
        terminations=TerminationConfig(episode_length_s=3.0),
        randomization=manipulation_randomization(with_object=False),
        manipulation=ManipulationConfig(goal="reach"),
    )
