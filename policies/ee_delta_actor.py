"""An actor that outputs what a teleoperator does: an end-effector delta and a gripper command, turned into
joint targets by the same differential IK the teleop session uses (`sim/arm_ik.py`).

Behaviour cloning of the arm clones the dataset's `action` column ([dx, dy, dz, droll, dpitch, dyaw] in
[-1, 1] and the gripper in [0, 1]) rather than `action.joint_target`. The delta is a smooth, low-gain
function of where the hand is and where the cube is; the joint step the IK makes from it also folds in
the arm's Jacobian, which 50 demonstrations do not cover well enough to learn (joint-space cloning
fitted its training frames and drifted off the cube in closed loop: success 0-5 %).

The IK needs no memory of its own: it integrates from the previous joint targets, and those are the
`last_action` observation (targets = default + action_scale * action), so one IK object serves every
environment and the actor is a function of the observation like any other.
"""

from __future__ import annotations

import numpy as np
import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict

from sim.arm_ik import ArmDeltaLimits, ArmDifferentialIK

DELTA_DIM = 6  # [dx, dy, dz, droll, dpitch, dyaw]; the gripper command follows


class EndEffectorDeltaActor(torch.nn.Module):
    """observation -> network -> (delta, gripper) -> IK -> env action; the output statistics live in the state dict."""

    is_recurrent = False

    def __init__(self, network: MLPModel, num_actions: int, ik: ArmDifferentialIK | None) -> None:
        super().__init__()
        self.network = network
        self.ik = ik  # None: the actor predicts deltas (training) but cannot act
        self.limits = ArmDeltaLimits()
        self.register_buffer("joint_pos_index", torch.zeros(num_actions, dtype=torch.long))
        self.register_buffer("last_action_index", torch.zeros(num_actions, dtype=torch.long))
        self.register_buffer("default_joint_pos", torch.zeros(num_actions))
        self.register_buffer("action_scale", torch.ones(num_actions))
        self.register_buffer("command_mean", torch.zeros(DELTA_DIM + 1))
        self.register_buffer("command_std", torch.ones(DELTA_DIM + 1))

    def configure(
        self,
        layout: list[tuple[str, int, float, float]],
        default_joint_pos: torch.Tensor,
        action_scale: torch.Tensor | float,
    ) -> None:
        """Where joint_pos_rel and last_action sit in the observation (both unscaled), and the action mapping."""
        starts, start = {}, 0
        for term, dim, scale, _ in layout:
            if term in ("joint_pos_rel", "last_action"):
                if scale != 1.0:
                    raise ValueError(f"an end-effector delta actor reads {term} unscaled; the task scales it {scale}x")
                starts[term] = torch.arange(start, start + dim)
            start += dim
        missing = {"joint_pos_rel", "last_action"} - set(starts)
        if missing:
            raise ValueError(f"an end-effector delta actor needs the observation terms {sorted(missing)}")
        self.joint_pos_index.copy_(starts["joint_pos_rel"])
        self.last_action_index.copy_(starts["last_action"])
        self.default_joint_pos.copy_(torch.as_tensor(default_joint_pos, dtype=torch.float32))
        self.action_scale.copy_(torch.as_tensor(action_scale, dtype=torch.float32).expand_as(self.action_scale))

    def set_command_statistics(self, commands: torch.Tensor) -> None:
        """Normalize the network's targets by the demonstrations' own spread (deltas are a few hundredths)."""
        self.command_mean.copy_(commands.mean(dim=0))
        self.command_std.copy_(commands.std(dim=0).clamp(min=1e-3))

    def normalized_commands(self, commands: torch.Tensor) -> torch.Tensor:
        """The network's training target for recorded commands (the dataset's `action` rows)."""
        return (commands - self.command_mean) / self.command_std

    def commands(self, obs: TensorDict) -> torch.Tensor:
        """(envs, 7): the normalized delta in [-1, 1] and the gripper command in [0, 1]."""
        raw = self.network(obs) * self.command_std + self.command_mean
        return torch.cat([raw[:, :DELTA_DIM].clamp(-1.0, 1.0), raw[:, DELTA_DIM:].clamp(0.0, 1.0)], dim=1)

    @torch.no_grad()
    def forward(self, obs: TensorDict, **kwargs) -> torch.Tensor:
        return self.act(obs["policy"], self.commands(obs))

    @torch.no_grad()
    def act(self, policy_obs: torch.Tensor, commands: torch.Tensor) -> torch.Tensor:
        """The env actions that carry out `commands` (envs, 7) from these observations, by IK."""
        if self.ik is None:
            raise RuntimeError("this end-effector delta actor was built without the arm's kinematics")
        commands = commands.double().numpy()
        measured = (policy_obs[:, self.joint_pos_index] + self.default_joint_pos).double().numpy()
        previous = (policy_obs[:, self.last_action_index] * self.action_scale + self.default_joint_pos).double()
        previous = previous.numpy()
        targets = np.empty_like(previous)
        for env, command in enumerate(commands):
            self.ik.targets = previous[env].copy()
            targets[env] = self.ik.joint_targets(measured[env], self.limits.scale(command[:DELTA_DIM]), command[-1])
        return (torch.from_numpy(targets).float() - self.default_joint_pos) / self.action_scale

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Stateless: the IK starts from the last_action observation."""
