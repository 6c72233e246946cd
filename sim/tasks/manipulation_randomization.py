"""The domain randomization manipulation tasks train with (legged-robot terms off)."""

from __future__ import annotations

from sim.tasks.config import RandomizationConfig, Range


def manipulation_randomization(with_object: bool) -> RandomizationConfig:
    cfg = RandomizationConfig()
    for name in (
        "foot_friction",
        "trunk_added_mass_kg",
        "trunk_com_offset_m",
        "push_interval_s",
        "push_velocity_m_s",
        "gyro_bias_rad_s",
        "gravity_bias",
        "initial_base_velocity_m_s",
        "initial_yaw_rad",
    ):
        getattr(cfg, name).enabled = False
    cfg.encoder_offset_rad = Range(True, -0.005, 0.005)  # absolute joint encoders, after calibration
    cfg.initial_joint_pos_offset_rad = Range(True, -0.2, 0.2)
    for name in ("camera_position_offset_m", "camera_rotation_rad", "light_diffuse_scale", "light_position_offset_m"):
        getattr(cfg, name).enabled = True
    if with_object:
        for name in (
            "object_size_scale",
            "object_mass_kg",
            "object_friction",
            "object_position_offset_m",
            "object_yaw_rad",
        ):
            getattr(cfg, name).enabled = True
    return cfg
