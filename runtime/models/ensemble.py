"""A teacher made of several models."""

from __future__ import annotations

import torch
from torch import nn

from runtime.models.outputs import logits_of


class Ensemble(nn.Module):
    """A teacher that averages its members' logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = logits_of(self.members[0](x))
        for member in self.members[1:]:
            out = out + logits_of(member(x))
        return out / len(self.members)
