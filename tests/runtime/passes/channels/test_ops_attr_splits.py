"""Splits by a module's own attribute (res2net's ``torch.split(out, self.width, 1)``, CSPNet's
``x.split(self.expand_chs // 2, 1)``, MixNet's ``torch.split(x, self.splits, 1)``): for a family
registered in ``ATTR_SPLITS`` the pieces are pruned with an equal keep each and the attribute is
rewritten after the cut and on replay; anything else stays blocked (never a stale constant)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.passes.channels import apply_record, count_params, prune_model
from runtime.passes.channels.attr_dims import ATTR_SLICES, ATTR_SPLITS, AttrSplit
from runtime.passes.scopes import Scope
from runtime.passes.trace import type_name


class Res2(nn.Module):
    """res2net's pattern: split by ``self.width``, hierarchical adds, concat."""

    def __init__(self, c: int = 8, width: int = 6, scale: int = 3) -> None:
        super().__init__()
        self.width = width
        self.conv1 = nn.Conv2d(c, width * scale, 1)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(scale - 1))
        self.conv3 = nn.Conv2d(width * scale, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spx = torch.split(self.conv1(x).relu(), self.width, 1)
        sp, out = spx[0], []
        for i, conv in enumerate(self.convs):
            sp = conv(sp if i == 0 else sp + spx[i]).relu()
            out.append(sp)
        out.append(spx[-1])
        return self.conv3(torch.cat(out, 1)) + x


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.block, self.head = nn.Conv2d(3, 8, 3), Res2(), nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.stem(x)))


def _fix(m: nn.Module) -> None:
    m.width = int(m.convs[0].in_channels)  # type: ignore[index]


@pytest.fixture
def registered() -> Iterator[None]:
    key = type_name(Res2)
    ATTR_SPLITS[key] = AttrSplit(lambda m: m.width, _fix)
    yield
    del ATTR_SPLITS[key]


def _prune(m: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    record, _ = prune_model(m, x, 0.5, "l1", "local", Scope())
    return record


@pytest.mark.usefixtures("registered")
def test_split_by_registered_attribute_prunes_each_piece_equally(
    matches_zeroed: Callable[..., None],
) -> None:
    torch.manual_seed(0)
    m, x = Net().eval(), torch.randn(2, 3, 12, 12)
    dense = copy.deepcopy(m)
    record = _prune(m, x)
    assert m.block.conv1.out_channels == 9 and m.block.width == 3  # 3 pieces of 3
    assert all(c.in_channels == c.out_channels == 3 for c in m.block.convs)
    matches_zeroed(dense, m, record, x)
    fresh = Net()
    apply_record(fresh, json.loads(json.dumps(record)))
    assert fresh.block.width == 3
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), m(x), atol=1e-6)
    m.train()
    m(x).sum().backward()


def test_split_by_unregistered_attribute_stays_blocked() -> None:
    torch.manual_seed(0)
    m, x = Net().eval(), torch.randn(2, 3, 12, 12)
    _prune(m, x)
    assert m.block.width == 6 and m.block.conv1.out_channels == 18  # split channels kept
    assert m(x).shape == (2, 4, 10, 10)


@pytest.mark.usefixtures("registered")
def test_split_by_another_constant_stays_blocked() -> None:
    """The registered attribute says 6; a split by 9 (two pieces) is not the family's split."""
    torch.manual_seed(0)
    m, x = Net().eval(), torch.randn(2, 3, 12, 12)
    m.block.width = 9
    m.block.convs = nn.ModuleList([nn.Conv2d(9, 9, 3, padding=1)])
    ATTR_SPLITS[type_name(Res2)] = AttrSplit(lambda _: 6, _fix)
    _prune(m, x)
    assert m.block.conv1.out_channels == 18 and m.block.width == 9


def _timm(name: str, **kw: Any) -> tuple[nn.Module, Callable[[], nn.Module]]:
    timm = pytest.importorskip("timm")

    def make() -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=10, **kw)

    torch.manual_seed(0)
    return make().eval(), make


def _check_timm(m: nn.Module, make: Callable[[], nn.Module], limit: float) -> None:
    x = torch.randn(2, 3, 64, 64)
    dense = count_params(m)
    record = _prune(m, x)
    assert count_params(m) <= limit * dense
    y = m(x)
    assert y.shape == (2, 10)
    fresh = make()
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), y, atol=1e-5)
    m.train()
    m(x).sum().backward()


def _res2net() -> nn.Module:
    res2net = pytest.importorskip("timm.models.res2net")
    bn, down = nn.BatchNorm2d, nn.Conv2d(64, 64, 1, stride=2)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3),
        res2net.Bottle2neck(64, 16, base_width=26, scale=4, norm_layer=bn),  # 4 pieces of 6
        res2net.Bottle2neck(64, 16, 2, down, base_width=26, scale=4, norm_layer=bn),
        nn.Conv2d(64, 10, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def test_timm_res2net_bottle2neck_width() -> None:
    torch.manual_seed(0)
    m, x = _res2net().eval(), torch.randn(2, 3, 32, 32)
    dense = count_params(m)
    record = _prune(m, x)
    assert count_params(m) <= 0.4 * dense
    for b in (m[1], m[2]):
        assert b.width == 3 and b.conv1.out_channels == 12 and b.conv3.in_channels == 12
    y = m(x)
    fresh = _res2net()
    apply_record(fresh, json.loads(json.dumps(record)))
    assert fresh[2].width == 3
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), y, atol=1e-5)
    m.train()
    m(x).sum().backward()


def test_timm_cspnet_cross_stage3_expand_chs() -> None:
    m, make = _timm("cs3darknet_s")
    _check_timm(m, make, 0.35)
    s = m.stages[1]
    assert s.expand_chs == s.conv_exp.conv.out_channels < make().stages[1].expand_chs


def _mixed_net() -> nn.Module:
    layers = pytest.importorskip("timm.layers")
    return nn.Sequential(
        nn.Conv2d(3, 24, 3),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        layers.MixedConv2d(24, 24, [3, 5, 7], depthwise=True),  # pieces of 8
        nn.BatchNorm2d(24),
        nn.ReLU(),
        layers.MixedConv2d(24, 12, [1, 3], padding=""),  # pieces of 12 (dense convs)
        nn.ReLU(),
        nn.Conv2d(12, 10, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def test_timm_mixed_conv_splits() -> None:
    torch.manual_seed(0)
    m, x = _mixed_net().eval(), torch.randn(2, 3, 32, 32)
    dense = count_params(m)
    record = _prune(m, x)
    assert count_params(m) <= 0.45 * dense  # the stem's 3 inputs and 10 outputs stay
    assert m[3].splits == [4, 4, 4] and m[3].in_channels == m[3].out_channels == 12
    assert m[6].splits == [6, 6] and (m[6].in_channels, m[6].out_channels) == (12, 6)
    y = m(x)
    fresh = _mixed_net()
    apply_record(fresh, json.loads(json.dumps(record)))
    assert fresh[3].splits == [4, 4, 4]
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), y, atol=1e-5)
    m.train()
    m(x).sum().backward()


class Rex(nn.Module):
    """ReXNet's pattern: the first ``self.in_channels`` outputs are added to the shortcut."""

    def __init__(self, c: int = 8, out: int = 12) -> None:
        super().__init__()
        self.in_channels = c
        self.conv = nn.Conv2d(c, out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.cat([y[:, 0 : self.in_channels] + x, y[:, self.in_channels :]], dim=1)


def test_slice_by_registered_attribute_keeps_prefix_and_tail(
    matches_zeroed: Callable[..., None],
) -> None:
    key = type_name(Rex)
    net = lambda: nn.Sequential(nn.Conv2d(3, 8, 1), Rex(), nn.Conv2d(12, 4, 1))  # noqa: E731
    torch.manual_seed(0)
    m, x = net().eval(), torch.randn(2, 3, 8, 8)
    with pytest.raises(KdrError, match="nothing to prune"):  # not registered: slices pin all
        _prune(m, x)
    ATTR_SLICES[key] = AttrSplit(lambda r: r.in_channels, _fix_rex)
    try:
        m = net().eval()
        dense = copy.deepcopy(m)
        record = _prune(m, x)
        assert m[1].in_channels == m[0].out_channels == 4 and m[1].conv.out_channels == 6
        matches_zeroed(dense, m, record, x)
        fresh = net()
        apply_record(fresh, json.loads(json.dumps(record)))
        assert fresh[1].in_channels == 4
    finally:
        del ATTR_SLICES[key]


def _fix_rex(m: Any) -> None:
    m.in_channels = m.conv.in_channels


def test_timm_rexnet_linear_bottleneck_in_channels() -> None:
    rexnet = pytest.importorskip("timm.models.rexnet")

    def net() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 16, 3),
            rexnet.LinearBottleneck(16, 24, 1, exp_ratio=6.0, se_ratio=0.25),
            rexnet.LinearBottleneck(24, 32, 1),
            nn.Conv2d(32, 10, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    torch.manual_seed(0)
    m, x = net().eval(), torch.randn(2, 3, 32, 32)
    dense = count_params(m)
    record = _prune(m, x)
    assert count_params(m) <= 0.45 * dense
    assert (m[1].in_channels, m[2].in_channels) == (8, 12)
    y = m(x)
    fresh = net()
    apply_record(fresh, json.loads(json.dumps(record)))
    assert fresh[2].in_channels == 12
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), y, atol=1e-5)
    m.train()
    m(x).sum().backward()
