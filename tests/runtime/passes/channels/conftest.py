"""Shared check for the op-rule tests: a pruned model against its dense copy.

Removing a channel is the same as zeroing the input columns that read it in every consumer
layer (conv/linear ``in`` endpoints of the record): the dense copy so zeroed must compute what
the pruned model computes. This holds whenever nothing else mixes channels (no mean or norm
over the channel dim), which is what the rules claim for the ops they pass through.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn


def zeroed(dense: nn.Module, record: dict[str, Any]) -> nn.Module:
    ref = copy.deepcopy(dense)
    for name, keeps in record["layers"].items():
        m = ref.get_submodule(name)
        if "in" not in keeps or not isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            continue  # a block's counted slice prefix (DPN's num_1x1_c) reads no weights
        cin = m.in_features if isinstance(m, nn.Linear) else m.in_channels
        gone = sorted(set(range(cin)) - set(keeps["in"]))
        with torch.no_grad():
            if isinstance(m, nn.Linear):
                m.weight[:, gone] = 0
                continue
            g = m.groups
            in_pg, out_pg = cin // g, m.out_channels // g
            for i in gone:
                k = i // in_pg
                m.weight[k * out_pg : (k + 1) * out_pg, i % in_pg] = 0
    return ref


@pytest.fixture
def matches_zeroed() -> Callable[[nn.Module, nn.Module, dict[str, Any], torch.Tensor], None]:
    def check(dense: nn.Module, pruned: nn.Module, record: dict[str, Any], x: Any) -> None:
        ref = zeroed(dense, record).eval()
        with torch.no_grad():
            expected, got = ref(x), pruned.eval()(x)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()

    return check
