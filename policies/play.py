"""`simreal play`: render a trained policy offscreen to an MP4 (EGL, else OSMesa)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from sim.offscreen_gl import choose_gl_backend

# (start time s, command vx m/s, vy m/s, yaw rad/s): stand, walk, trot faster, turn, side-step, stop
SCRIPTED_TOUR = (
    (0.0, 0.0, 0.0, 0.0),
    (1.0, 0.5, 0.0, 0.0),
    (3.5, 1.0, 0.0, 0.0),
    (6.0, 0.5, 0.0, 0.8),
    (8.0, 0.0, 0.4, 0.0),
    (9.0, 0.0, 0.0, 0.0),
)


def command_at(time_s: float, fixed_vx: float | None) -> list[float]:
    if fixed_vx is not None:
        return [fixed_vx, 0.0, 0.0]
    current = SCRIPTED_TOUR[0][1:]
    for start, *command in SCRIPTED_TOUR:
        if time_s >= start:
            current = tuple(command)
    return list(current)


def _draw_target(scene, target_b, base_pos_w) -> None:
    """A small green sphere at the goal position (the arm base frame is the world frame shifted)."""
    import mujoco

    if scene.ngeom >= scene.maxgeom:
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(
        geom,
        mujoco.mjtGeom.mjGEOM_SPHERE,
        np.array([0.015, 0, 0]),
        target_b + base_pos_w,
        np.eye(3).ravel(),
        np.array([0.1, 0.9, 0.2, 0.6], dtype=np.float32),
    )
    scene.ngeom += 1


def play_run(
    run_dir: Path,
    iteration: int | None,
    video: Path,
    seconds: float,
    fixed_vx: float | None,
    frame_png: Path | None,
    dynamics: str,
) -> Path:
    backend = choose_gl_backend()  # before mujoco's GL context module is first imported
    import imageio
    import mujoco

    from policies.inference import open_run

    env, policy = open_run(run_dir, iteration, num_envs=1, dynamics=dynamics, seed=0)
    locomotion = hasattr(env, "set_velocity_command")
    if locomotion:
        env.set_velocity_command(command_at(0.0, fixed_vx))
    env.reset()
    width, height = 640, 480
    scene_option = mujoco.MjvOption()
    scene_option.geomgroup[3] = 1  # the trunk box and the feet are collision geoms (group 3)
    # a manipulator is watched through its scene camera (the first camera of its spec that is not on the robot)
    camera = "track" if locomotion else env.spec.cameras[-1]
    fps = round(1.0 / env.step_dt)
    frames: list[np.ndarray] = []
    observations = env.get_observations()
    data = mujoco.MjData(env.model)
    renderer = None
    for step in tqdm(range(int(seconds * fps)), desc="render", unit="frame", mininterval=2.0):
        if locomotion:
            env.set_velocity_command(command_at(step * env.step_dt, fixed_vx))
        observations, _, dones, _ = env.step(policy(observations))
        policy.reset(dones)  # a recurrent actor starts each new episode from a zero hidden state
        # this simulation's own model: randomized camera poses, lights and object size show in the video
        model = env.backend.copy_to_host(0, data)
        renderer = renderer or mujoco.Renderer(model, height=height, width=width)
        mujoco.mj_forward(model, data)
        renderer.update_scene(data, camera=camera, scene_option=scene_option)
        if not locomotion:
            _draw_target(renderer.scene, env.target_pose[0, :3].cpu().numpy(), env.base_pos_w.cpu().numpy())
        frames.append(renderer.render().copy())
    if renderer is not None:
        renderer.close()
    video.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(video, frames, fps=fps, codec="libx264", quality=7, macro_block_size=8)
    if frame_png is not None:
        imageio.imwrite(frame_png, frames[len(frames) // 2])
    print(f"rendered {len(frames)} frames with MUJOCO_GL={backend}")
    return video
