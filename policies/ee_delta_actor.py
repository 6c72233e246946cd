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

from dataclasses import dataclass

import numpy as np
import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict

from policies.rsl_rl_env import as_tensordict
from sim.arm_ik import ArmDeltaLimits, ArmDifferentialIK
from sim.rotations import canonical_quat, quat_conjugate, quat_multiply, quat_rotate_inverse

DELTA_DIM = 6  # [dx, dy, dz, droll, dpitch, dyaw]; the gripper command follows
RELATIVE_DIM = 10  # goal - ee in the base frame (3) and in the ee frame (3), the goal's rotation from the ee (4)


@dataclass(frozen=True)
class ObservationColumns:
    """Where the actor's inputs sit in the task's policy observation (each read unscaled)."""

    joint_pos_rel: slice
    last_action: slice
    ee_pose: slice | None  # [x, y, z, qw, qx, qy, qz]
    goal_pose: slice | None  # object_pose (lift) or target_pose (reach)

    @staticmethod
    def of(layout: list[tuple[str, int, float, float]]) -> ObservationColumns:
        columns, start = {}, 0
        for term, dim, scale, _ in layout:
            if term in ("joint_pos_rel", "last_action", "ee_pose", "object_pose", "target_pose"):
                if scale != 1.0:
                    raise ValueError(f"an end-effector delta actor reads {term} unscaled; the task scales it {scale}x")
                columns[term] = slice(start, start + dim)
            start += dim
        missing = {"joint_pos_rel", "last_action"} - set(columns)
        if missing:
            raise ValueError(f"an end-effector delta actor needs the observation terms {sorted(missing)}")
        goal = columns.get("object_pose", columns.get("target_pose"))
        return ObservationColumns(columns["joint_pos_rel"], columns["last_action"], columns.get("ee_pose"), goal)

    @property
    def relates_goal(self) -> bool:
        return self.ee_pose is not None and self.goal_pose is not None


def network_inputs(policy_obs: torch.Tensor, columns: ObservationColumns) -> torch.Tensor:
    """The observation, and where the goal is seen from the hand, when the task observes both poses.

    The expert acts on the cube's offset from the hand at millimetre scale; an MLP given only the two
    absolute poses must learn that subtraction from 50 demonstrations, and its error left the cloned
    policy hovering 7-8 mm off centre, never descending.
    """
    if not columns.relates_goal:
        return policy_obs
    ee, goal = policy_obs[:, columns.ee_pose], policy_obs[:, columns.goal_pose]
    offset = goal[:, :3] - ee[:, :3]
    ee_quat = ee[:, 3:]
    relative_rotation = canonical_quat(quat_multiply(quat_conjugate(ee_quat), goal[:, 3:]))
    return torch.cat([policy_obs, offset, quat_rotate_inverse(ee_quat, offset), relative_rotation], dim=1)


class EndEffectorDeltaActor(torch.nn.Module):
    """observation -> network -> (delta, gripper) -> IK -> env action; the output statistics live in the state dict."""

    is_recurrent = False

    def __init__(
        self,
        network: MLPModel,
        columns: ObservationColumns,
        default_joint_pos: torch.Tensor,
        action_scale: torch.Tensor | float,
        ik: ArmDifferentialIK,
    ) -> None:
        super().__init__()
        self.network, self.columns, self.ik = network, columns, ik
        self.limits = ArmDeltaLimits()
        # host tensors: the IK runs on the host (act)
        self.default_joint_pos = torch.as_tensor(default_joint_pos, dtype=torch.float32).cpu().clone()
        self.action_scale = torch.as_tensor(action_scale, dtype=torch.float32).expand_as(self.default_joint_pos)
        self.register_buffer("command_mean", torch.zeros(DELTA_DIM + 1))
        self.register_buffer("command_std", torch.ones(DELTA_DIM + 1))
        self.register_buffer("gripper_is_binary", torch.tensor(False))

    def inputs(self, policy_obs: torch.Tensor) -> TensorDict:
        """What the network reads (see `network_inputs`)."""
        return as_tensordict({"policy": network_inputs(policy_obs, self.columns)})

    def set_command_statistics(self, commands: torch.Tensor) -> None:
        """Normalize the delta targets by the demonstrations' own spread (deltas are a few hundredths);
        a gripper that was only ever fully open or closed is thresholded, not blended, when acting."""
        self.command_mean[:DELTA_DIM] = commands[:, :DELTA_DIM].mean(dim=0)
        self.command_std[:DELTA_DIM] = commands[:, :DELTA_DIM].std(dim=0).clamp(min=1e-3)
        gripper = commands[:, DELTA_DIM]
        self.gripper_is_binary.fill_(bool(torch.all((gripper == 0.0) | (gripper == 1.0))))

    def normalized_commands(self, commands: torch.Tensor) -> torch.Tensor:
        """The network's training target for recorded commands (the dataset's `action` rows): the delta
        normalized, the gripper as it is (the network's last output is its logit)."""
        delta = (commands[:, :DELTA_DIM] - self.command_mean[:DELTA_DIM]) / self.command_std[:DELTA_DIM]
        return torch.cat([delta, commands[:, DELTA_DIM:].clamp(0.0, 1.0)], dim=1)

    @staticmethod
    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean-squared error of the normalized delta plus the gripper's binary cross-entropy."""
        delta_loss = torch.mean((outputs[:, :DELTA_DIM] - targets[:, :DELTA_DIM]) ** 2)
        gripper_loss = torch.nn.functional.binary_cross_entropy_with_logits(
            outputs[:, DELTA_DIM], targets[:, DELTA_DIM]
        )
        return delta_loss + gripper_loss

    def commands(self, obs: TensorDict) -> torch.Tensor:
        """(envs, 7): the normalized delta in [-1, 1] and the gripper command in [0, 1]."""
        outputs = self.network(self.inputs(obs["policy"]))
        delta = outputs[:, :DELTA_DIM] * self.command_std[:DELTA_DIM] + self.command_mean[:DELTA_DIM]
        gripper = torch.sigmoid(outputs[:, DELTA_DIM:])
        if self.gripper_is_binary:
            gripper = (gripper > 0.5).float()
        return torch.cat([delta.clamp(-1.0, 1.0), gripper], dim=1)

    @torch.no_grad()
    def forward(self, obs: TensorDict, **kwargs) -> torch.Tensor:
        return self.act(obs["policy"], self.commands(obs))

    @torch.no_grad()
    def act(self, policy_obs: torch.Tensor, commands: torch.Tensor) -> torch.Tensor:
        """The env actions that carry out `commands` (envs, 7) from these observations, by IK."""
        # the IK runs on the host (numpy, one arm at a time), whatever device the env is on
        device, policy_obs, commands = policy_obs.device, policy_obs.cpu(), commands.double().cpu().numpy()
        measured = (policy_obs[:, self.columns.joint_pos_rel] + self.default_joint_pos).double().numpy()
        last_action = policy_obs[:, self.columns.last_action]
        previous = (last_action * self.action_scale + self.default_joint_pos).double().numpy()
        # a fresh episode (last_action exactly 0) starts from the measured joints, as the teleop session's IK
        # does: from the default pose it would pull the arm off its randomized spawn pose (by up to 0.2 rad)
        fresh = (last_action == 0.0).all(dim=1).numpy()
        previous[fresh] = measured[fresh]
        targets = np.empty_like(previous)
        for env, command in enumerate(commands):
            self.ik.targets = previous[env].copy()
            targets[env] = self.ik.joint_targets(measured[env], self.limits.scale(command[:DELTA_DIM]), command[-1])
        return ((torch.from_numpy(targets).float() - self.default_joint_pos) / self.action_scale).to(device)

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Stateless: the IK starts from the last_action observation."""
