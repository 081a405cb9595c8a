"""Shared check for the op-rule tests: a pruned model against its dense copy.

Removing a channel is the same as zeroing the input columns that read it in every consumer
layer (conv/linear ``in`` endpoints of the record): the dense copy so zeroed must compute what
the pruned model computes. This holds whenever nothing else mixes channels (no mean or norm
over the channel dim), which is what the rules claim for the ops they pass through.
"""

from __future__ import annotations

import copy
import json
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


@pytest.fixture
def prunes_timm() -> Callable[..., dict[str, Any]]:
    """``check(name, size, batch=2, limit=0.35, **create_kwargs)``: a timm model with random
    weights, 50% of its channels pruned (l1, local), keeps at most ``limit`` of its params,
    gives the dense output shape, replays from its JSON record onto a fresh model (same
    outputs) and takes a training step (batch of 2). Returns the prune's info."""

    def check(
        name: str, size: int, batch: int = 2, limit: float = 0.35, **kw: Any
    ) -> dict[str, Any]:
        timm = pytest.importorskip("timm")
        from runtime.passes.channels import apply_record, count_params, prune_model
        from runtime.passes.scopes import Scope

        def make() -> nn.Module:
            return timm.create_model(name, pretrained=False, num_classes=10, **kw).eval()

        torch.manual_seed(0)
        m, x = make(), torch.randn(batch, 3, size, size)
        dense = count_params(m)
        record, info = prune_model(m, x, 0.5, "l1", "local", Scope())
        assert count_params(m) <= limit * dense
        y = m(x)
        assert y.shape == (batch, 10)
        fresh = make()
        apply_record(fresh, json.loads(json.dumps(record)))
        fresh.load_state_dict(m.state_dict())
        assert torch.allclose(fresh(x), y, atol=1e-5)
        m.train()
        m(torch.randn(2, 3, size, size)).sum().backward()
        return info

    return check
