"""quadruped-flat: the 12-joint quadruped follows velocity commands on flat ground."""

from __future__ import annotations

from sim.tasks.config import EnvConfig, ObservationConfig, ObservationTerm


def quadruped_flat() -> EnvConfig:
    observations = ObservationConfig(
        policy=[
            ObservationTerm("base_ang_vel", scale=0.25, noise=0.2),
            ObservationTerm("projected_gravity", scale=1.0, noise=0.05),
            ObservationTerm("velocity_command", scale=1.0),
            ObservationTerm("joint_pos_rel", scale=1.0, noise=0.01),
            ObservationTerm("joint_vel", scale=0.05, noise=1.5),
            ObservationTerm("last_action", scale=1.0),
        ],
        history=1,
    )
    return EnvConfig(task="quadruped-flat", robot="quadruped", observations=observations)
