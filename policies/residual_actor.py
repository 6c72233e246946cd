"""An actor whose output is a step from its previous action: action = last_action + step_scale * network(obs).

Behaviour cloning needs it: demonstrated joint targets move a few hundredths of a radian per step, so an
absolute-target network must reproduce its own input to a fraction of a percent before the motion shows,
and the cloned policy stalled (success 0.02). Predicting the step, scaled by the demonstrations' own step
size, makes the motion the signal. The `last_action` observation term carries the previous action.
"""

from __future__ import annotations

import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict


class ResidualActor(torch.nn.Module):
    """Wraps the MLP actor; `last_action_index` (observation columns) and `step_scale` live in the state dict."""

    is_recurrent = False

    def __init__(self, network: MLPModel, num_actions: int) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("last_action_index", torch.zeros(num_actions, dtype=torch.long))
        self.register_buffer("step_scale", torch.ones(num_actions))

    def forward(self, obs: TensorDict, **kwargs) -> torch.Tensor:
        last_action = obs["policy"][:, self.last_action_index]
        return last_action + self.step_scale * self.network(obs, **kwargs)

    def step_of(self, obs: TensorDict, actions: torch.Tensor) -> torch.Tensor:
        """The network's target for demonstrated actions: their step from the last action, scaled."""
        return (actions - obs["policy"][:, self.last_action_index]) / self.step_scale

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Stateless."""
