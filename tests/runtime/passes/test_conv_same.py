"""timm's ``Conv2dSame`` (padding computed from the input size, untraceable by fx) is pruned as a
Conv2d leaf rather than kept whole."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from runtime.passes.channels import prune_model
from runtime.passes.scopes import Scope

conv2d_same = pytest.importorskip("timm.layers.conv2d_same")


def test_conv2d_same_is_pruned_as_a_conv() -> None:
    torch.manual_seed(0)
    same = conv2d_same.Conv2dSame
    m = nn.Sequential(
        same(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(), same(8, 6, 3), nn.Flatten(),
        nn.LazyLinear(4),
    ).eval()  # fmt: skip
    x = torch.randn(2, 3, 9, 9)
    m(x)  # materialise the lazy head
    _, info = prune_model(m, x, 0.5, "l1", "local", Scope())
    assert info.get("kept_whole", []) == []
    assert (m[0].out_channels, m[1].num_features, m[3].in_channels, m[3].out_channels) == (
        4,
        4,
        4,
        3,
    )
    assert m(x).shape == (2, 4)
