"""A ViT's class token: ``cls_token.expand(B, -1, -1)`` concatenated with the patch tokens on the
token dim is sliced with the channels it joins (as is the position embedding added after)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from runtime.passes.channels import apply_record, prune_model
from runtime.passes.scopes import Scope


class Tokens(nn.Module):
    def __init__(self, expand_width: int = -1) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, 8))
        self.fc1, self.head = nn.Linear(8, 6), nn.Linear(6, 3)
        self.expand_width = expand_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, self.expand_width)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        return self.head(torch.relu(self.fc1(x)).mean(dim=1))


def test_class_token_is_sliced_with_the_tokens(
    matches_zeroed: Callable[[nn.Module, nn.Module, dict[str, Any], Any], None],
) -> None:
    torch.manual_seed(0)
    dense = Tokens().eval()
    pruned, x = copy.deepcopy(dense), torch.randn(2, 3, 8, 8)
    record, _ = prune_model(pruned, x, 0.5, "l1", "local", Scope())
    assert pruned.cls_token.shape == (1, 1, 4) and pruned.pos_embed.shape == (1, 5, 4)
    assert pruned.patch.out_channels == 4 and pruned.fc1.in_features == 4
    matches_zeroed(dense, pruned, record, x)
    fresh = Tokens()
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(pruned.state_dict())
    assert torch.allclose(fresh.eval()(x), pruned(x))


def test_a_constant_width_in_expand_blocks_the_channels() -> None:
    """``expand(B, -1, 8)`` would be stale once the tokens have 4 channels: not pruned."""
    torch.manual_seed(0)
    m, x = Tokens(expand_width=8).eval(), torch.randn(2, 3, 8, 8)
    prune_model(m, x, 0.5, "l1", "local", Scope())
    assert m.cls_token.shape == (1, 1, 8) and m.patch.out_channels == 8
    assert m(x).shape == (2, 3)
