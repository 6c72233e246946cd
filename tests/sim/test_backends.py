"""The two simulation backends: parity of mujoco.batch and MuJoCo Warp (on Warp's CPU device), per-simulation
model fields, resets of a subset, overflow handling and the errors of a missing or mismatched install.

Warp compiles its kernels once per machine and keeps them in its kernel cache (~/.cache/warp), so only the
first of these tests on a fresh machine pays the compile time.
"""

from __future__ import annotations

import subprocess
import sys

import mujoco
import numpy as np
import pytest
import torch

from sim.backends import BackendError, make_backend
from sim.envs import make_env
from sim.tasks import TASKS, make_task_config
from sim.tasks.config import BackendConfig, EnvConfig
from sim.terms.randomization import RANDOMIZED_MODEL_FIELDS

pytestmark = pytest.mark.slow
PARITY_STEPS = 200
FIRST_STEPS = 10


def converged_quadruped(backend: str, num_envs: int = 4) -> EnvConfig:
    """The default quadruped task (every randomization term on) with a solver run to convergence: MuJoCo's
    4 iterations stop short of it, and the two engines (float64 and float32) then stop at different points."""
    cfg = make_task_config("quadruped-flat")
    cfg.num_envs = num_envs
    cfg.backend = BackendConfig(name=backend, device="cpu")
    cfg.solver.iterations, cfg.solver.ls_iterations = 50, 50
    cfg.solver.tolerance, cfg.solver.ls_tolerance = 1e-10, 1e-6
    return cfg


@pytest.fixture(scope="module", params=["20 s episodes", "staggered 1 s episodes"])
def parity_run(request) -> dict:
    """Both backends from the same seed (so the same randomization sample and initial state), stepped by
    the same action sequence; what each step gave, per backend. With 1 s episodes started at different
    times, subsets of the simulations reset (and are randomized again) every few steps."""
    staggered = request.param == "staggered 1 s episodes"
    envs = {}
    for name in ("batch", "warp"):
        cfg = converged_quadruped(name)
        if staggered:
            cfg.terminations.episode_length_s = 1.0
        envs[name] = make_env(cfg, seed=3)
        if staggered:
            envs[name].episode_length_buf[:] = torch.tensor([0, 10, 20, 30])
    generator = torch.Generator().manual_seed(1)
    actions = [0.5 * torch.randn(4, 12, generator=generator) for _ in range(PARITY_STEPS)]
    run: dict = {name: {"joint_pos": [], "policy": [], "critic": [], "rewards": [], "dones": []} for name in envs}
    for name, env in envs.items():
        run[name]["params"] = {k: v.clone() for k, v in env.randomizer.params.items()}
        run[name]["initial_qpos"] = env.qpos.double().clone()
        for action in actions:
            observations, _, dones, _ = env.step(action)
            record = run[name]
            record["joint_pos"].append(env.qpos[:, env.qpos_ids].double().clone())
            record["policy"].append(observations["policy"].clone())
            record["critic"].append(observations["critic"].clone())
            record["rewards"].append({k: v.clone() for k, v in env.reward_terms.items()})
            record["dones"].append(dones.clone())
    run["resets"] = int(sum(int(d.sum()) for d in run["batch"]["dones"]))
    run["scenario"], run["staggered"] = request.param, staggered
    return run


def test_both_backends_start_from_the_same_sample_and_state(parity_run):
    batch, warp = parity_run["batch"], parity_run["warp"]
    for name, values in batch["params"].items():
        torch.testing.assert_close(warp["params"][name], values, rtol=0, atol=0, msg=name)
    assert float((warp["initial_qpos"] - batch["initial_qpos"]).abs().max()) < 1e-6  # float32 rounding


def test_joint_trajectories_agree_within_1e3_rad_over_200_steps(parity_run):
    batch, warp = parity_run["batch"], parity_run["warp"]
    errors = [float((w - b).abs().max()) for w, b in zip(warp["joint_pos"], batch["joint_pos"], strict=True)]
    assert len(errors) == PARITY_STEPS
    assert max(errors) <= 1e-3, f"worst joint difference {max(errors):.2e} rad at step {int(np.argmax(errors))}"
    assert all(torch.equal(w, b) for w, b in zip(warp["dones"], batch["dones"], strict=True))
    if parity_run["staggered"]:
        assert parity_run["resets"] >= 12  # 4 simulations, 50-step episodes, 200 steps
    print(f"{parity_run['scenario']}: worst joint difference {max(errors):.2e} rad, {parity_run['resets']} resets")


def test_observation_and_reward_terms_agree_within_1e4_on_the_first_10_steps(parity_run):
    batch, warp = parity_run["batch"], parity_run["warp"]
    for step in range(FIRST_STEPS):
        for group in ("policy", "critic"):
            difference = float((warp[group][step] - batch[group][step]).abs().max())
            assert difference <= 1e-4, f"step {step}: {group} observation differs by {difference:.2e}"
        assert batch["rewards"][step].keys() == warp["rewards"][step].keys()
        for term, value in batch["rewards"][step].items():
            difference = float((warp["rewards"][step][term] - value).abs().max())
            assert difference <= 1e-4, f"step {step}: reward term {term} differs by {difference:.2e}"


@pytest.fixture()
def standing_pair() -> dict:
    """Both backends, same seed, 30 policy steps of zero action: the quadrupeds stand on their feet."""
    envs = {name: make_env(converged_quadruped(name), seed=3) for name in ("batch", "warp")}
    for env in envs.values():
        for _ in range(30):
            env.step(torch.zeros(4, 12))
    return envs


def test_a_velocity_written_between_steps_acts_from_the_first_substep(standing_pair):
    """A push writes qvel between steps; both backends step from it as mj_step does (Warp once continued
    from the previous step's velocity stage and was 1.3 rad/s off after one substep)."""
    for env in standing_pair.values():
        env.qvel[:, env.base_dof : env.base_dof + 2] += torch.tensor([0.8, -0.5], dtype=env.qvel.dtype)
        env.backend.step(1)
    batch, warp = standing_pair["batch"], standing_pair["warp"]
    assert float((warp.qvel.double() - batch.qvel).abs().max()) < 1e-3


def test_resetting_some_simulations_keeps_the_touch_sensors_of_the_others(standing_pair):
    for env in standing_pair.values():
        with env.on_device():
            env._reset_envs(torch.tensor([1]))
    batch, warp = standing_pair["batch"], standing_pair["warp"]
    feet = batch.foot_sensor_adr
    standing = batch.sensordata[[0, 2, 3]][:, feet]
    assert float(standing.sum(dim=1).min()) > 50.0  # body weight on the feet
    torch.testing.assert_close(warp.sensordata[[0, 2, 3]][:, feet].double(), standing, rtol=1e-3, atol=0.05)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_runs_on_the_warp_backend(task):
    cfg = make_task_config(task)
    cfg.num_envs = 3
    cfg.backend = BackendConfig(name="warp", device="cpu")
    env = make_env(cfg, seed=0)
    assert env.backend.name == "warp" and env.qpos.dtype == torch.float32
    start = env.qpos.clone()
    for _ in range(5):
        observations, rewards, _, _ = env.step(torch.zeros(3, env.num_actions))
    assert all(bool(torch.isfinite(v).all()) for v in observations.values()) and bool(torch.isfinite(rewards).all())
    assert float((env.qpos - start).abs().max()) > 0  # it moved
    assert env.nonfinite_resets == 0


@pytest.fixture(scope="module")
def warp_lift():
    cfg = make_task_config("arm-lift")
    cfg.num_envs = 4
    cfg.backend = BackendConfig(name="warp", device="cpu")
    return make_env(cfg, seed=5)


def test_warp_model_fields_are_per_simulation_and_reach_the_host_model(warp_lift):
    env, p = warp_lift, warp_lift.randomizer.params
    gain = env.backend.model_field("actuator_gainprm")[:, env.randomizer.actuators, 0].double()
    torch.testing.assert_close(
        gain, torch.as_tensor(env.spec.kp, dtype=torch.float64) * p["kp_scale"], rtol=1e-6, atol=0
    )
    assert float(gain[:, 0].max() - gain[:, 0].min()) > 0.1  # each simulation its own
    for i in range(env.num_envs):
        data = mujoco.MjData(env.model)
        model = env.backend.copy_to_host(i, data)
        geom = env.object_geom
        np.testing.assert_allclose(
            model.geom_size[geom], env.model.geom_size[geom] * float(p["object_size_scale"][i, 0]), rtol=1e-6
        )
        np.testing.assert_allclose(data.qpos, env.qpos[i].numpy(), rtol=0, atol=0)


def test_warp_resets_only_the_given_simulations(warp_lift):
    env = warp_lift
    for _ in range(3):
        env.step(torch.full((4, env.num_actions), 0.5))
    before = env.qpos.clone()
    env.backend.reset(torch.tensor([1, 3]))
    assert torch.equal(env.qpos[[0, 2]], before[[0, 2]])
    qpos0 = torch.as_tensor(env.model.qpos0, dtype=torch.float32)
    assert torch.equal(env.qpos[1], qpos0) and torch.equal(env.qpos[3], qpos0)
    assert float(env.backend.data("time")[[1, 3]].abs().max()) == 0.0


def test_a_world_that_overflows_its_contact_buffer_is_reset_not_silently_wrong():
    cfg = make_task_config("quadruped-flat")
    cfg.num_envs = 2
    cfg.backend = BackendConfig(name="warp", device="cpu", max_contacts_per_env=1)
    env = make_env(cfg, seed=0)
    # it spawns above the ground; once its four feet land they need four contacts
    for _ in range(20):
        env.step(torch.zeros(2, 12))
    assert env.nonfinite_resets >= 2


def test_warp_on_a_machine_without_a_gpu_names_the_problem():
    with pytest.raises(BackendError, match=r"sees no GPU.*--device cpu"):
        make_backend(BackendConfig(name="warp", device="cuda"), _small_model(), 1, 0, ())


def test_the_batch_backend_refuses_a_gpu_device():
    with pytest.raises(BackendError, match="runs on the CPU; use --backend warp"):
        make_backend(BackendConfig(name="batch", device="cuda"), _small_model(), 1, 0, ())


def test_a_missing_mujoco_warp_install_says_how_to_install_it(monkeypatch):
    # a fake sits where the real import plugs in: this machine has MuJoCo Warp installed
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)
    with pytest.raises(BackendError, match=r"not installed.*pip install 'simreal\[warp\]'"):
        make_backend(BackendConfig(name="warp"), _small_model(), 1, 0, RANDOMIZED_MODEL_FIELDS)


def test_the_command_line_reports_a_missing_gpu_in_one_line():
    command = [sys.executable, "-m", "simreal", "bench", "env", "--backend", "warp", "--device", "cuda", "--json"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "simreal bench: error: --device cuda: Warp" in out.stderr and "sees no GPU" in out.stderr
    assert "Traceback" not in out.stderr


def _small_model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><freejoint/><geom size='0.1'/></body></worldbody></mujoco>"
    )
