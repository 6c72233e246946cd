"""Task configuration dataclasses: one task is one instance of EnvConfig.

Every field has a default a user can override from YAML or the command line
(see sim/config_overrides.py). Units are in the names: _s, _hz, _m, _rad, _kg.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ObservationTerm:
    """One observation term (DESIGN.md §3): scaled, clipped, noisy only in simulation."""

    name: str
    scale: float = 1.0
    clip: float = 100.0
    noise: float = 0.0  # half-width of uniform noise, in the term's own units, before scaling


@dataclass
class ObservationConfig:
    policy: list[ObservationTerm] = field(default_factory=list)
    history: int = 1  # policy frames stacked time-major, oldest first
    # privileged terms the critic sees on top of the noise-free policy terms
    critic_extra: list[str] = field(default_factory=lambda: ["base_lin_vel", "foot_contacts", "randomization"])


@dataclass
class Range:
    """A randomization term: enabled flag and [low, high] uniform range."""

    enabled: bool = True
    low: float = 0.0
    high: float = 0.0


@dataclass
class RandomizationConfig:
    """Domain randomization, sampled per environment at reset; each term on/off with its range."""

    foot_friction: Range = field(default_factory=lambda: Range(True, 0.3, 1.25))
    trunk_added_mass_kg: Range = field(default_factory=lambda: Range(True, -1.0, 3.0))
    link_mass_scale: Range = field(default_factory=lambda: Range(True, 0.9, 1.1))
    trunk_com_offset_m: Range = field(default_factory=lambda: Range(True, -0.03, 0.03))
    kp_scale: Range = field(default_factory=lambda: Range(True, 0.8, 1.2))
    kd_scale: Range = field(default_factory=lambda: Range(True, 0.8, 1.2))
    effort_limit_scale: Range = field(default_factory=lambda: Range(True, 0.8, 1.0))
    joint_damping_scale: Range = field(default_factory=lambda: Range(True, 0.8, 1.2))
    joint_armature_scale: Range = field(default_factory=lambda: Range(True, 0.8, 1.2))
    joint_friction_loss_scale: Range = field(default_factory=lambda: Range(True, 0.8, 1.2))
    action_latency_s: Range = field(default_factory=lambda: Range(True, 0.0, 0.02))  # in whole physics steps
    push_interval_s: Range = field(default_factory=lambda: Range(True, 5.0, 10.0))
    push_velocity_m_s: Range = field(default_factory=lambda: Range(True, 0.0, 1.0))
    encoder_offset_rad: Range = field(default_factory=lambda: Range(True, -0.02, 0.02))
    gyro_bias_rad_s: Range = field(default_factory=lambda: Range(True, -0.05, 0.05))
    gravity_bias: Range = field(default_factory=lambda: Range(True, -0.02, 0.02))
    initial_joint_pos_offset_rad: Range = field(default_factory=lambda: Range(True, -0.1, 0.1))
    initial_base_velocity_m_s: Range = field(default_factory=lambda: Range(True, -0.5, 0.5))
    initial_yaw_rad: Range = field(default_factory=lambda: Range(True, -3.14159, 3.14159))
    # manipulation scene terms; off unless a task with an object and cameras turns them on
    object_size_scale: Range = field(default_factory=lambda: Range(False, 0.8, 1.2))
    object_mass_kg: Range = field(default_factory=lambda: Range(False, 0.05, 0.5))
    object_friction: Range = field(default_factory=lambda: Range(False, 0.5, 1.5))
    object_position_offset_m: Range = field(default_factory=lambda: Range(False, -0.1, 0.1))  # x and y
    object_yaw_rad: Range = field(default_factory=lambda: Range(False, -3.14159, 3.14159))
    camera_position_offset_m: Range = field(default_factory=lambda: Range(False, -0.02, 0.02))  # per axis
    camera_rotation_rad: Range = field(default_factory=lambda: Range(False, -0.0524, 0.0524))  # ±3° per axis
    light_diffuse_scale: Range = field(default_factory=lambda: Range(False, 0.5, 1.5))
    light_position_offset_m: Range = field(default_factory=lambda: Range(False, -0.3, 0.3))  # per axis
    observation_noise: bool = True  # per-term noise of ObservationTerm.noise

    def disabled(self) -> RandomizationConfig:
        """The same config with every term off: nominal dynamics."""
        off = RandomizationConfig()
        for value in vars(off).values():
            if isinstance(value, Range):
                value.enabled = False
        off.observation_noise = False
        return off


@dataclass
class CommandConfig:
    """Velocity commands, resampled per environment every resample_interval_s."""

    lin_vel_x_m_s: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y_m_s: tuple[float, float] = (-0.5, 0.5)
    yaw_rate_rad_s: tuple[float, float] = (-1.0, 1.0)
    standing_fraction: float = 0.1  # share of resamples that command zero velocity
    resample_interval_s: float = 10.0
    small_command_threshold: float = 0.1  # commands below this (norm) count as standing


@dataclass
class RewardConfig:
    """Reward weights per second (multiplied by the control period); 0 disables a term."""

    track_lin_vel_xy: float = 1.5
    track_yaw_rate: float = 0.75
    tracking_sigma: float = 0.25  # exp kernel width, (m/s)^2 and (rad/s)^2
    lin_vel_z: float = -2.0
    ang_vel_xy: float = -0.05
    orientation: float = -2.0
    torques: float = -2e-4
    action_rate: float = -0.01
    joint_acc: float = -2.5e-7
    feet_air_time: float = 1.0
    feet_air_time_target_s: float = 0.3
    default_pose: float = -0.05
    stand_still: float = -0.5
    joint_limits: float = -5.0
    termination: float = -100.0


@dataclass
class TerminationConfig:
    trunk_contact_force_n: float = 1.0
    max_tilt_rad: float = 1.0
    episode_length_s: float = 20.0


@dataclass
class ObjectConfig:
    """The object a manipulation task handles: a cube resting on the table (nominal values)."""

    enabled: bool = False
    size_m: float = 0.05  # edge length
    mass_kg: float = 0.2
    friction: float = 1.0
    position_m: tuple[float, float] = (0.5, 0.0)  # nominal x, y on the table, robot base frame


@dataclass
class TargetConfig:
    """End-effector goal poses, robot base frame; orientation = fingers down, then yaw, pitch, roll."""

    x_m: tuple[float, float] = (0.35, 0.6)
    y_m: tuple[float, float] = (-0.25, 0.25)
    z_m: tuple[float, float] = (0.12, 0.45)
    yaw_rad: tuple[float, float] = (-0.6, 0.6)
    tilt_rad: float = 0.2  # roll and pitch, each uniform in [-tilt, tilt]


@dataclass
class ManipulationRewardConfig:
    """Reward weights per second (multiplied by the control period); 0 disables a term."""

    reach_position: float = 2.0  # 1 - tanh(d / position_kernel_m), EE to target (reach) or to the object (lift)
    reach_position_fine: float = 3.0  # 1 - tanh(d / position_fine_kernel_m)
    reach_orientation: float = 1.0  # 1 - tanh(angle / orientation_kernel_rad), reach only
    reach_orientation_fine: float = 1.0  # 1 - tanh(angle / orientation_fine_kernel_rad), reach only
    object_lift: float = 0.0  # lift height over lift_height_m, clamped to [0, 1] (lift tasks)
    object_goal: float = 0.0  # 1 - tanh(d / 0.05 m), object to the point above its start, once lifted
    object_grasp: float = 0.0  # 1 while every finger pad touches the object (a grasp)
    action_rate: float = -0.01
    joint_vel: float = -0.001
    joint_velocity_limits: float = -1.0  # joint speed above 90 % of the spec's velocity_limit (rad/s)
    joint_limits: float = -2.0
    termination: float = -50.0
    # kernel widths: a coarse one that still pulls from across the workspace, a fine one for the last centimetres
    position_kernel_m: float = 0.3
    position_fine_kernel_m: float = 0.03
    orientation_kernel_rad: float = 0.5
    orientation_fine_kernel_rad: float = 0.1


@dataclass
class ManipulationConfig:
    """What a manipulation task asks of the arm: reach a target pose, or lift the object."""

    goal: str = "reach"  # "reach" | "lift"
    # the geoms whose contacts with the object make a grasp (object_grasp)
    finger_geoms: list[str] = field(default_factory=lambda: ["finger_left_pad", "finger_right_pad"])
    object: ObjectConfig = field(default_factory=ObjectConfig)
    target: TargetConfig = field(default_factory=TargetConfig)
    position_tolerance_m: float = 0.02  # reach success
    orientation_tolerance_rad: float = 0.1
    lift_height_m: float = 0.10  # lift success: object raised this far above its resting height ...
    lift_hold_s: float = 1.0  # ... for this long
    object_dropped_height_m: float = -0.05  # below the table top: the object left the table
    rewards: ManipulationRewardConfig = field(default_factory=ManipulationRewardConfig)


@dataclass
class SolverConfig:
    """Constraint solver settings over the MJCF's (0: keep the MJCF's value). Tighter settings cost time
    but make both backends converge to the same contact forces (tests/sim/test_backends.py)."""

    iterations: int = 0
    ls_iterations: int = 0
    tolerance: float = 0.0
    ls_tolerance: float = 0.0


BACKENDS = ("batch", "warp")


@dataclass
class BackendConfig:
    """What steps the simulations (sim/backends/): mujoco.batch on CPU threads, or MuJoCo Warp."""

    name: str = "batch"  # "batch" (mujoco.batch, CPU) | "warp" (MuJoCo Warp)
    device: str = "cpu"  # warp: "cpu" (Warp's CPU device) or "cuda" / "cuda:N"; batch: cpu only
    # MuJoCo Warp preallocates contact and constraint buffers; a world that overflows them is reset
    max_contacts_per_env: int = 64
    max_constraints_per_env: int = 256
    cuda_graph: bool = True  # warp on CUDA: replay each policy step's substeps as one captured graph


@dataclass
class EnvConfig:
    """Everything that defines one task."""

    task: str = "quadruped-flat"
    robot: str = "quadruped"
    env: str = "locomotion"  # "locomotion" | "manipulation": which env class runs the task
    num_envs: int = 1024
    num_threads: int = 0  # batch backend: 0 = one per CPU core
    backend: BackendConfig = field(default_factory=BackendConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    action_clip: float = 100.0
    observations: ObservationConfig = field(default_factory=ObservationConfig)
    commands: CommandConfig = field(default_factory=CommandConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    terminations: TerminationConfig = field(default_factory=TerminationConfig)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    manipulation: ManipulationConfig = field(default_factory=ManipulationConfig)
    # fitted robot parameters (sim/robot_params.py format, the file's content): the env's nominal robot and the
    # centre of its randomization; empty: the spec and MJCF as they are
    robot_params: dict = field(default_factory=dict)
