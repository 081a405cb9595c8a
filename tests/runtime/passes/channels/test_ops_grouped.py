"""Depthwise multipliers (``groups == in_channels < out_channels``, FastViT's ``PatchEmbed``):
input ``g`` and the outputs of group ``g`` are one channel, so the stream feeding the conv is
pruned (a balanced partition with one input per group only allowed all or nothing)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from runtime.passes.channels import apply_record, build, prune_model
from runtime.passes.scopes import Scope


class Multiplier(nn.Module):
    def __init__(self, k: int = 2) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
        self.small = nn.Conv2d(8, 8 * k, 3, padding=1, groups=8)
        self.large = nn.Conv2d(8, 8 * k, 5, padding=2, groups=8)  # reparam branches, added
        self.head = nn.Conv2d(8 * k, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.stem(x)).relu()
        return self.head((self.small(h) + self.large(h)).relu())


def _prune(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    record, _ = prune_model(m, x, 0.5, "l1", "local", Scope())
    return record


@pytest.mark.parametrize("k", [2, 3])
def test_depthwise_multiplier_prunes_its_input_stream(
    k: int,
    matches_zeroed: Callable[[nn.Module, nn.Module, dict[str, Any], torch.Tensor], None],
) -> None:
    torch.manual_seed(0)
    m, x = Multiplier(k).eval(), torch.randn(2, 3, 12, 12)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert m.stem.out_channels == 4 and m.bn.num_features == 4
    for conv in (m.small, m.large):
        assert (conv.in_channels, conv.out_channels, conv.groups) == (4, 4 * k, 4)
    assert m.head.in_channels == 4 * k
    matches_zeroed(dense, m, record, x)
    fresh = Multiplier(k)
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), m(x), atol=1e-6)


def test_multiplier_on_a_blocked_stream_keeps_outputs_per_group(
    matches_zeroed: Callable[[nn.Module, nn.Module, dict[str, Any], torch.Tensor], None],
) -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(4, 16, 3, groups=4), nn.Conv2d(16, 2, 1)).eval()
    dense, x = copy.deepcopy(m), torch.randn(2, 4, 5, 5)
    record = _prune(m, x)  # its input is the model's: each group keeps 2 of its 4 outputs
    assert m[0].groups == 4 and m[0].weight.shape == (8, 1, 3, 3)
    matches_zeroed(dense, m, record, x)


def test_grouped_conv_with_several_inputs_per_group_keeps_its_partitions() -> None:
    m = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 16, 1, groups=4), nn.Conv2d(16, 2, 1))
    dg = build(m.eval(), torch.randn(1, 3, 4, 4))
    chunked = [g for g in dg.prunable_groups() if g.chunks]
    assert {len(g.chunks or []) for g in chunked} == {4}


@pytest.mark.slow  # about 10 s on a loaded machine
def test_timm_fastvit_t8_params_ratio(prunes_timm: Callable[..., dict[str, Any]]) -> None:
    prunes_timm("fastvit_t8", 32, batch=1)
