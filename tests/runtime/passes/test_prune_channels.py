"""prune.channels: dependency groups, exact slicing, replay, scopes, criteria, diagnostics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from torch import nn

import runtime.passes  # noqa: F401  (registers the passes)
from recipe_lang.diagnostics import KdrError
from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.channels import build, prune_model
from runtime.passes.scopes import Scope

torch.manual_seed(0)


def ctx_for(x: torch.Tensor, **kw: object) -> PassContext:
    return PassContext(example_inputs=x, **kw)  # type: ignore[arg-type]


def chain() -> Any:
    torch.manual_seed(1)
    m: Any = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 5, 1)
    )
    with torch.no_grad():  # non-trivial BN statistics so slicing mistakes show up
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2)
        m[1].weight.uniform_(0.5, 2)
    return m.eval()


def test_chain_matches_hand_sliced_reference() -> None:
    m, x = chain(), torch.randn(2, 3, 6, 6)
    ref = copy.deepcopy(m)
    result = run_pass("prune.channels", m, {"ratio": 0.5}, ctx_for(x))
    keep = result.record["layers"]["0"]["out"]
    assert len(keep) == 4
    # l1: the 4 conv-output channels with the largest summed |w| over conv0 rows, BN gamma,
    # and conv3 input columns.
    score = (
        ref[0].weight.abs().sum((1, 2, 3))
        + ref[1].weight.abs()
        + ref[3].weight.abs().sum((0, 2, 3))
    )
    assert sorted(keep) == sorted(torch.topk(score, 4).indices.tolist())
    with torch.no_grad():
        h = nn.functional.conv2d(x, ref[0].weight[keep], ref[0].bias[keep], padding=1)
        h = nn.functional.batch_norm(
            h, ref[1].running_mean[keep], ref[1].running_var[keep],
            ref[1].weight[keep], ref[1].bias[keep], eps=ref[1].eps,
        )  # fmt: skip
        expected = nn.functional.conv2d(h.relu(), ref[3].weight[:, keep], ref[3].bias)
        assert torch.allclose(result.module(x), expected, atol=1e-5)
    assert m[0].out_channels == 4 and m[1].num_features == 4 and m[3].in_channels == 4
    assert m[0].weight.shape == (4, 3, 3, 3) and m[1].running_var.shape == (4,)
    json.dumps(result.record)


def test_pruning_nothing_keeps_function() -> None:
    m, x = chain(), torch.randn(2, 3, 6, 6)
    before = m(x)
    result = run_pass("prune.channels", m, {"ratio": 0.01}, ctx_for(x))
    assert result.record["layers"] == {} and not result.modified
    assert torch.allclose(result.module(x), before)


def test_replay_then_load_state_dict() -> None:
    torchvision = pytest.importorskip("torchvision")
    m = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    fresh = copy.deepcopy(m)
    x = torch.randn(1, 3, 32, 32)
    result = run_pass("prune.channels", m, {"ratio": 0.3}, ctx_for(x))
    record = json.loads(json.dumps(result.record))
    rebuilt = replay_pass("prune.channels", fresh, record)
    rebuilt.load_state_dict(m.state_dict())
    assert torch.allclose(rebuilt.eval()(x), m(x), atol=1e-5)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.b(self.a(x).relu())
        return self.head(x.mean((2, 3)))


def test_residual_add_couples_both_branches() -> None:
    m, x = Residual(), torch.randn(2, 3, 8, 8)
    dg = build(m, x)
    assert "b:out" in dg.coupled("stem:out") and "head:in" in dg.coupled("stem:out")
    record, _ = prune_model(m, x, 0.5)
    assert record["layers"]["stem"]["out"] == record["layers"]["b"]["out"]
    assert m.head.in_features == 4 and m.a.out_channels == 3
    assert m.head.out_features == 3  # classifier outputs are never pruned
    assert m(x).shape == (2, 3)


class SE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc1 = nn.Conv2d(8, 4, 1)
        self.fc2 = nn.Conv2d(4, 8, 1)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        s = torch.sigmoid(self.fc2(self.fc1(nn.functional.adaptive_avg_pool2d(x, 1)).relu()))
        x = s * x
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_squeeze_excitation_expand_conv_couples_with_main_branch() -> None:
    m, x = SE(), torch.randn(2, 3, 8, 8)
    dg = build(m, x)
    assert "fc2:out" in dg.coupled("conv:out")
    assert {tuple(g.producers) for g in dg.prunable_groups()} == {("conv", "fc2"), ("fc1",)}
    run_pass("prune.channels", m, {"ratio": 0.5}, ctx_for(x))
    assert m.fc2.out_channels == m.conv.out_channels == m.fc1.in_channels == 4


class Dense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(4, 6, 1)
        self.norm = nn.BatchNorm2d(10)
        self.c = nn.Conv2d(10, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a(x)
        return self.c(self.norm(torch.cat([a, self.b(a)], 1))).mean((2, 3))


def test_cat_maps_channel_offsets() -> None:
    m, x = Dense().eval(), torch.randn(2, 3, 4, 4)
    record, _ = prune_model(m, x, 0.5)
    keep_a, keep_b = record["layers"]["a"]["out"], record["layers"]["b"]["out"]
    assert len(keep_a) == 2 and len(keep_b) == 3
    assert record["layers"]["c"]["in"] == keep_a + [4 + k for k in keep_b]
    assert record["layers"]["norm"]["norm"] == record["layers"]["c"]["in"]
    assert m(x).shape == (2, 2)


class FlattenHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


def test_flatten_maps_each_channel_to_its_spatial_features() -> None:
    m, x = FlattenHead(), torch.randn(2, 3, 6, 6)
    ref: Any = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["conv"]["out"]
    assert record["layers"]["fc"]["in"] == [4 * c + s for c in keep for s in range(4)]
    with torch.no_grad():
        h = ref.pool(nn.functional.conv2d(x, ref.conv.weight[keep], ref.conv.bias[keep], padding=1))
        cols = record["layers"]["fc"]["in"]
        expected = nn.functional.linear(h.flatten(1), ref.fc.weight[:, cols], ref.fc.bias)
        assert torch.allclose(m(x), expected, atol=1e-6)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv, channels-last LayerNorm, Linear as 1x1 convs, layer scale, residual."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 1)
        self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Linear(dim, 4 * dim)
        self.pw2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.rand(dim, 1, 1))
        self.head = nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(nn.functional.gelu(self.pw1(self.norm(y)))).permute(0, 3, 1, 2)
        x = x + self.gamma * y
        return self.head(x.mean((2, 3)))


def test_convnext_block_prunes_layer_scale_and_channels_last_layers() -> None:
    m, x = ConvNeXtBlock(), torch.randn(2, 3, 5, 5)
    fresh = copy.deepcopy(m)
    result = run_pass("prune.channels", m, {"ratio": 0.5}, ctx_for(x))
    assert m.gamma.shape == (4, 1, 1) and m.norm.normalized_shape == (4,)
    assert m.dw.groups == 4 and m.pw1.out_features == 16 and m.pw2.out_features == 4
    assert "gamma" in result.record["params"]
    replay_pass("prune.channels", fresh, result.record).load_state_dict(m.state_dict())
    assert torch.allclose(fresh(x), m(x), atol=1e-6)


def test_grouped_conv_keeps_groups_balanced() -> None:
    m = nn.Sequential(
        nn.Conv2d(3, 8, 1),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.Conv2d(8, 2, 1),
    ).eval()
    x = torch.randn(2, 3, 5, 5)
    result = run_pass("prune.channels", m, {"ratio": 0.5}, ctx_for(x))
    keep = result.record["layers"]["2"]["out"]
    assert sum(k < 4 for k in keep) == 2 and sum(k >= 4 for k in keep) == 2
    assert m[2].groups == 2 and m[2].weight.shape == (4, 2, 3, 3)


class Sliced(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)[:, :4])  # channel slicing: not understood -> blocked


def test_unknown_op_blocks_and_nothing_left_is_kdr502() -> None:
    m, x = Sliced(), torch.randn(1, 3, 4, 4)
    dg = build(m, x)
    assert all(g.blocked for g in dg.groups)
    with pytest.raises(KdrError) as info:
        prune_model(m, x, 0.5)
    assert info.value.diagnostics[0].code == "KDR502"
    assert m.a.out_channels == 8  # untouched


def test_tied_weights_are_not_pruned() -> None:
    m = nn.Sequential(
        nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 2, 1)
    )
    m[2].weight = m[1].weight
    dg = build(m, torch.randn(1, 3, 2, 2))
    blocked = {p for g in dg.groups if g.blocked for p in g.producers}
    assert {"1", "2"} <= blocked


def test_scopes_select_and_protect() -> None:
    x = torch.randn(2, 3, 8, 8)
    m = Residual()
    prune_model(m, x, 0.5, scope=Scope(exclude=["head"]))
    assert m.stem.out_channels == 8 and m.a.out_channels == 3  # head protects the stem group
    m = Residual()
    prune_model(m, x, 0.5, scope=Scope(include=["stem"]))
    assert m.stem.out_channels == 4 and m.a.out_channels == 6


def test_global_ranking_keeps_a_channel_per_group() -> None:
    m, x = Residual(), torch.randn(2, 3, 8, 8)
    with torch.no_grad():  # in group `a`, one channel dominates: the rest rank last globally
        m.a.weight[1:].mul_(1e-6)
        m.b.weight[:, 1:].mul_(1e-6)
    _, info = prune_model(m, x, 0.6, ranking="global")
    assert m.a.out_channels == 1  # emptied but for one channel
    assert info["channels_removed"] == 8 and m.stem.out_channels == 5


@pytest.mark.parametrize("criterion", ["l2", "random", "taylor"])
def test_other_criteria(criterion: str) -> None:
    m, x = Residual(), torch.randn(4, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 0])
    ctx = ctx_for(x, batches=lambda: [(x, y)])
    result = run_pass("prune.channels", m, {"ratio": 0.5, "criterion": criterion}, ctx)
    assert m.a.out_channels == 3 and result.module(x).shape == (4, 3)
    assert all(p.grad is None for p in m.parameters())
    if criterion == "random":
        again = run_pass("prune.channels", Residual(), {"ratio": 0.5, "criterion": "random"}, ctx)
        assert again.record == result.record  # seeded: same channels whatever the weights


def test_taylor_without_data_is_kdr502_and_malformed_params_are_kdr999() -> None:
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(KdrError) as info:
        run_pass("prune.channels", Residual(), {"ratio": 0.5, "criterion": "taylor"}, ctx_for(x))
    assert info.value.diagnostics[0].code == "KDR502"
    # The compiler never emits these (its params model refuses them): a bug, not a user error.
    for params in ({"ratio": 1.0}, {"ratio": 0.5, "criterion": "l7"}):
        with pytest.raises(KdrError) as info:
            run_pass("prune.channels", Residual(), params, ctx_for(x))
        assert info.value.diagnostics[0].code == "KDR999"
        assert "prune.channels" in info.value.diagnostics[0].message
    with pytest.raises(KdrError) as info:  # a direct caller of prune_model gets KDR502
        prune_model(Residual(), x, 1.0)
    assert info.value.diagnostics[0].code == "KDR502"


class AuxNet(nn.Module):
    """An auxiliary head that only runs in training (GoogLeNet-style)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 8, 1)
        self.aux = nn.Conv2d(8, 2, 1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        out = self.head(self.b(x)).mean((2, 3))
        if self.training:
            return out + self.aux(x).mean((2, 3))
        return out


def test_train_only_branches_are_analysed() -> None:
    m, x = AuxNet().eval(), torch.randn(2, 3, 4, 4)
    prune_model(m, x, 0.5)
    assert m.aux.in_channels == m.a.out_channels == 4
    m.train()
    assert m(x).shape == (2, 2)


class ShapeReader(nn.Module):
    """Reads its input's channel count in Python and reshapes another tensor with it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 8, 1)
        self.c = nn.Conv2d(8, 8, 1)
        self.fc_y = nn.Linear(8, 2)
        self.fc_z = nn.Linear(8 * 16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        n, c, h, w = x.shape
        y = torch.sigmoid(self.b(x)).reshape(n, c, h * w).mean(2)  # b's width read from a's
        z = self.c(x).view(x.size(0), -1)  # batch-size read only: harmless
        return self.fc_y(y) + self.fc_z(z)


def test_reading_the_channel_count_ties_the_tensor_it_reshapes() -> None:
    """``c`` (a's width) reshapes b's output: a and b are coupled so the count stays true
    (was: both pinned; see test_ops_symbolic for the escapes that still pin)."""
    m, x = ShapeReader(), torch.randn(2, 3, 4, 4)
    dg = build(m, x)
    (tied,) = [g for g in dg.prunable_groups() if "a" in g.producers]
    assert {"a", "b"} <= set(tied.producers)
    assert any(g.producers == ["c"] for g in dg.prunable_groups())
    prune_model(m, x, 0.5)
    assert m.a.out_channels == m.b.out_channels == 4 and m.fc_y.in_features == 4
    assert m.c.out_channels == 4 and m.fc_z.in_features == 64
    assert m(x).shape == (2, 2)
