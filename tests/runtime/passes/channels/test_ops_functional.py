"""Functional layers on an owner module's weights: batch_norm, group_norm, linear, conv, and
weight-standardized convs (timm's BatchNormAct2d, GroupNormAct, Linear, ScaledStdConv2d)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runtime.passes.channels import apply_record, build, prune_model


class BNAct(nn.BatchNorm2d):
    """Like timm's BatchNormAct2d: fx traces into it (not a torch.nn class)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            self.training, 0.1, self.eps,
        )  # fmt: skip
        return F.relu(y)


class GNAct(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps).relu()


class Lin(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class PadConv(nn.Conv2d):
    """Like timm's Conv2dSame: pads spatially, then ``F.conv2d`` on its own weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, [1, 1, 1, 1])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _randomize(m: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
            if isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
                mod.weight.uniform_(0.5, 2)
                mod.bias.uniform_(-1, 1)
    return m.eval()


def test_functional_batch_norm_matches_hand_sliced_reference() -> None:
    torch.manual_seed(0)
    m: Any = _randomize(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), BNAct(8), nn.Conv2d(8, 5, 1)))
    ref, x = copy.deepcopy(m), torch.randn(2, 3, 6, 6)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["0"]["out"]
    assert record["layers"]["1"] == {"norm": keep} and m[1].num_features == 4
    with torch.no_grad():
        h = F.conv2d(x, ref[0].weight[keep], ref[0].bias[keep], padding=1)
        h = F.batch_norm(
            h, ref[1].running_mean[keep], ref[1].running_var[keep],
            ref[1].weight[keep], ref[1].bias[keep], eps=ref[1].eps,
        ).relu()  # fmt: skip
        assert torch.allclose(m(x), F.conv2d(h, ref[2].weight[:, keep], ref[2].bias), atol=1e-5)
    m.train()(x)  # training mode still runs (running stats of the pruned size)


def test_functional_group_norm_keeps_groups_balanced(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m = _randomize(nn.Sequential(nn.Conv2d(3, 8, 3), GNAct(2, 8), nn.Conv2d(8, 4, 1)))
    dense, x = copy.deepcopy(m), torch.randn(2, 3, 7, 7)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["0"]["out"]
    assert sum(k < 4 for k in keep) == sum(k >= 4 for k in keep) == 2
    assert record["layers"]["1"] == {"norm": keep}
    # GroupNorm statistics are per group: a zeroed channel would still count, so compare
    # with the group norm computed over the kept channels only.
    with torch.no_grad():
        h = F.conv2d(x, dense[0].weight[keep], dense[0].bias[keep])
        h = F.group_norm(h, 2, dense[1].weight[keep], dense[1].bias[keep], dense[1].eps).relu()
        assert torch.allclose(m(x), F.conv2d(h, dense[2].weight[:, keep], dense[2].bias), atol=1e-5)


def test_one_channel_per_group_in_a_foreign_group_norm_blocks() -> None:
    class Foreign(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.w = nn.Conv2d(3, 4, 1), nn.Parameter(torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.group_norm(self.conv(x), 4, self.w)

    dg = build(Foreign(), torch.randn(1, 3, 4, 4))
    assert not dg.prunable_groups()


def test_functional_linear_and_padded_conv_match_zeroed_dense(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    convs = nn.Sequential(PadConv(3, 8, 3), nn.ReLU(), PadConv(8, 6, 3), nn.AdaptiveAvgPool2d(1))
    m = nn.Sequential(convs, nn.Flatten(), Lin(6, 12), nn.ReLU(), Lin(12, 3)).eval()
    dense, x = copy.deepcopy(m), torch.randn(2, 3, 8, 8)
    record, _ = prune_model(m, x, 0.5)
    assert set(record["layers"]) == {"0.0", "0.2", "2", "4"}
    assert m[0][0].out_channels == 4 and m[2].out_features == 6 and m[4].in_features == 6
    matches_zeroed(dense, m, record, x)


def test_a_linear_on_foreign_weights_blocks() -> None:
    class Foreign(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.w = nn.Linear(3, 4), nn.Parameter(torch.ones(2, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(self.fc(x), self.w)

    g = build(Foreign(), torch.randn(2, 3))
    assert not g.prunable_groups()
    assert any("linear" in str(grp.blocked) for grp in g.groups)


def test_weight_standardized_conv_prunes_outputs_exactly() -> None:
    std_conv = pytest.importorskip("timm.layers.std_conv")
    torch.manual_seed(0)
    m: Any = nn.Sequential(std_conv.ScaledStdConv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))
    with torch.no_grad():
        m[0].gain.uniform_(0.5, 2)
    dense, x = copy.deepcopy(m).eval(), torch.randn(2, 3, 6, 6)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["0"]["out"]
    assert record["params"] == {"0.gain": {"dim": 0, "keep": keep}}
    assert m[0].weight.shape == (4, 3, 3, 3) and m[0].gain.shape == (4, 1, 1, 1)
    with torch.no_grad():  # each filter is standardized on its own: the kept ones are unchanged
        h = dense[0](x)[:, keep].relu()
        assert torch.allclose(m(x), F.conv2d(h, dense[2].weight[:, keep], dense[2].bias), atol=1e-5)


def test_a_standardized_weight_read_elsewhere_stays_opaque() -> None:
    class Leaky(nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = F.batch_norm(
                self.weight.reshape(1, self.out_channels, -1), None, None, training=True
            ).reshape_as(self.weight)
            return F.conv2d(x, w, self.bias) + self.weight.sum()

    g = build(nn.Sequential(Leaky(3, 4, 1), nn.Conv2d(4, 2, 1)), torch.randn(1, 3, 4, 4))
    assert not g.prunable_groups()


@pytest.mark.parametrize("name", ["test_efficientnet", "test_nfnet", "test_efficientnet_gn"])
def test_timm_functional_norms_prune_and_run(name: str) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    before = sum(p.numel() for p in m.parameters())
    record, info = prune_model(m, x, 0.5)
    assert info["params_after"] < 0.45 * before, info["groups_unprunable"]
    with torch.no_grad():
        assert m(x).shape == (1, 10)
        fresh = apply_record(timm.create_model(name, pretrained=False, num_classes=10), record)
        fresh.load_state_dict(m.state_dict())  # the replay rebuilds the same shapes
        assert torch.allclose(fresh.eval()(x), m(x))
        m.train()(torch.cat([x, x]))
