"""Layer scale through a parameter view, addcmul, pad, norms and means, grouped convs with
in != out, and linear layers over a non-channel dim."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runtime.passes.channels import build, prune_model


class Block(nn.Module):
    """ConvNeXt-style layer scale (``gamma.reshape(1, -1, 1, 1)``) and a ResMLP affine."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0, self.conv1 = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 1)
        self.gamma = nn.Parameter(torch.rand(8) + 0.5)
        self.alpha, self.beta = nn.Parameter(torch.rand(8)), nn.Parameter(torch.rand(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.pad(self.conv0(x), [1, 1, 2, 0])
        h = h.mul(self.gamma.reshape(1, -1, 1, 1))
        t = h.permute(0, 2, 3, 1)
        t = torch.addcmul(self.beta, self.alpha, t)
        return self.conv1(t.permute(0, 3, 1, 2))


def test_parameter_views_and_addcmul_slice_their_parameters(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m, x = Block().eval(), torch.randn(2, 3, 6, 6)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["conv0"]["out"]
    assert record["params"] == {p: {"dim": 0, "keep": keep} for p in ("alpha", "beta", "gamma")}
    assert m.gamma.shape == (4,)
    matches_zeroed(dense, m, record, x)


def test_padding_the_channel_dim_blocks() -> None:
    class PadC(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv0, self.conv1 = nn.Conv2d(3, 8, 1), nn.Conv2d(10, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv1(F.pad(self.conv0(x), [0, 0, 0, 0, 1, 1]))

    assert not build(PadC(), torch.randn(1, 3, 4, 4)).prunable_groups()


class Grn(nn.Module):
    """ConvNeXt-V2's global response norm (channels last) between two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 8), nn.Linear(8, 2)
        self.weight, self.bias = nn.Parameter(torch.rand(8)), nn.Parameter(torch.rand(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        g = h.norm(p=2, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        shape = (1, 1, 1, -1)
        return self.fc2(h + torch.addcmul(self.bias.view(shape), self.weight.view(shape), h * n))


def test_grn_prunes_and_computes_over_the_kept_channels() -> None:
    torch.manual_seed(0)
    m, x = Grn().eval(), torch.randn(2, 4, 4, 3)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["fc1"]["out"]
    assert set(record["params"]) == {"weight", "bias"} and m.weight.shape == (4,)
    with torch.no_grad():  # the mean response is over the kept channels only
        h = F.linear(x, dense.fc1.weight[keep], dense.fc1.bias[keep])
        g = h.norm(p=2, dim=(1, 2), keepdim=True)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        h = h + dense.bias[keep] + dense.weight[keep] * h * n
        assert torch.allclose(m(x), F.linear(h, dense.fc2.weight[:, keep], dense.fc2.bias))


def test_a_sum_over_channels_blocks_but_a_mean_does_not() -> None:
    class Pool(nn.Module):
        def __init__(self, how: str) -> None:
            super().__init__()
            self.conv0, self.conv1, self.how = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1), how

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.conv0(x)
            s = h.sum(1, keepdim=True) if self.how == "sum" else h.mean(1, keepdim=True)
            return self.conv1(h * s.sigmoid())

    x = torch.randn(1, 3, 4, 4)
    assert build(Pool("mean"), x).prunable_groups()
    assert not build(Pool("sum"), x).prunable_groups()


def test_grouped_conv_with_in_not_out_keeps_groups_balanced(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 12, 3, groups=2), nn.ReLU(), nn.Conv2d(12, 2, 1)
    ).eval()
    dense, x = copy.deepcopy(m), torch.randn(2, 3, 5, 5)
    record, _ = prune_model(m, x, 0.5)
    ins, outs = record["layers"]["2"]["in"], record["layers"]["2"]["out"]
    assert sum(i < 4 for i in ins) == sum(i >= 4 for i in ins) == 2
    assert sum(o < 6 for o in outs) == sum(o >= 6 for o in outs) == 3
    assert m[2].weight.shape == (6, 2, 3, 3) and m[2].groups == 2
    matches_zeroed(dense, m, record, x)


def test_depthwise_multiplier_conv_prunes_outputs_per_group(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 16, 3, groups=4), nn.Conv2d(16, 2, 1))
    dense, x = copy.deepcopy(m.eval()), torch.randn(2, 3, 5, 5)
    record, _ = prune_model(m, x, 0.5)
    # rules_grouped: input g and the 4 outputs of group g are one channel (whole groups go)
    assert m[1].groups == 2 and m[1].weight.shape == (8, 1, 3, 3)
    matches_zeroed(dense, m, record, x)


def test_token_mixing_linear_passes_channels_through(matches_zeroed: Any) -> None:
    class Mixer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.tokens, self.fc2 = nn.Linear(3, 8), nn.Linear(5, 5), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc1(x)
            return self.fc2(h + self.tokens(h.transpose(1, 2)).transpose(1, 2))

    torch.manual_seed(0)
    m, x = Mixer().eval(), torch.randn(2, 5, 3)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    assert m.fc1.out_features == 4 and "tokens" not in record["layers"]
    matches_zeroed(dense, m, record, x)


@pytest.mark.parametrize("name", ["test_convnext2", "test_resnet"])
def test_timm_blocks_prune_and_run(name: str) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    before = sum(p.numel() for p in m.parameters())
    _, info = prune_model(m, x, 0.5)
    assert info["params_after"] < 0.45 * before, info["groups_unprunable"]
    with torch.no_grad():
        assert m(x).shape == (1, 10)


class Ein(nn.Module):
    """A linear layer written as an einsum on a parameter, then a per-channel einsum scale."""

    def __init__(self, eq: str = "bnc,dc->bnd") -> None:
        super().__init__()
        self.fc1, self.eq = nn.Linear(3, 8), eq
        self.w, self.s = nn.Parameter(torch.randn(5, 8)), nn.Parameter(torch.rand(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.einsum("bnc,c->bnc", self.fc1(x), self.s)
        return torch.einsum(self.eq, h, self.w)


def test_einsum_follows_the_channel_letter_and_slices_parameters() -> None:
    torch.manual_seed(0)
    m, x = Ein().eval(), torch.randn(2, 4, 3)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5)
    keep = record["layers"]["fc1"]["out"]
    assert record["params"] == {"s": {"dim": 0, "keep": keep}, "w": {"dim": 1, "keep": keep}}
    with torch.no_grad():
        h = F.linear(x, dense.fc1.weight[keep], dense.fc1.bias[keep]) * dense.s[keep]
        assert torch.allclose(m(x), h @ dense.w[:, keep].T, atol=1e-5)


def test_einsum_with_ellipsis_blocks() -> None:
    assert not build(Ein("...c,dc->...d"), torch.randn(2, 4, 3)).prunable_groups()


def test_padding_modules_pass_channels_through(matches_zeroed: Any) -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ZeroPad2d((1, 0, 2, 1)), nn.Conv2d(8, 2, 3)).eval()
    dense, x = copy.deepcopy(m), torch.randn(2, 3, 5, 5)
    record, _ = prune_model(m, x, 0.5)
    assert m[0].out_channels == 4
    matches_zeroed(dense, m, record, x)
