"""Shape-dependent control flow in the channel graph (:mod:`runtime.passes.concrete_trace`).

The channel graph is traced with the example's concrete shapes, so ``if x.shape[-1] < k`` no
longer keeps a block whole; a channel count that becomes a Python constant that way stays
blocked (the pruned model would otherwise branch or reshape with a stale count); a branch on
tensor values still keeps its block whole; the strict trace (BatchNorm folding, quantization)
is unchanged."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.passes.channels import prune_model
from runtime.passes.channels.build import build
from runtime.passes.scopes import Scope
from runtime.passes.trace import LEAF_TYPES, register_leaf, trace


class Net(nn.Module):
    """conv -> ``block`` -> conv: the block's channels are the middle conv's outputs."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.a, self.block, self.b = nn.Conv2d(3, 8, 3, padding=1), block, nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.block(self.a(x).relu()))


class PoolIfSmall(nn.Module):
    """timm's ConvMlp: pools up to 7x7 only when the input is smaller."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < 7 or x.shape[-1] < 7:
            x = F.adaptive_avg_pool2d(x, (max(7, x.shape[-2]), max(7, x.shape[-1])))
        with torch.autocast(device_type=x.device.type, enabled=False):
            return x * 2


class Windows(nn.Module):
    """Pads to whole windows with ``math.ceil`` and loops over them with ``range``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = math.ceil(x.shape[-1] / 4)
        p = int(n * 4 - x.shape[-1])
        x = F.pad(x, (0, p, 0, p))
        return sum((x[..., 4 * i : 4 * i + 4, :].mean(-2, keepdim=True) for i in range(n)), x)


class BranchOnChannels(nn.Module):
    """Branches on the channel count: pruning would take the other branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[1] == 8 else x


class ReshapeByIntChannels(nn.Module):
    """``int(C)`` baked into a reshape that mixes channels with space."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = x.reshape(b, int(c) * h, w).softmax(1)
        return y.reshape(b, int(c), h, w)


class BranchOnValues(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


X = torch.randn(2, 3, 6, 6)


def _prune(m: nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    return prune_model(m, X, 0.5, "l1", "local", Scope())


@pytest.mark.parametrize("block", [PoolIfSmall, Windows])
def test_shape_control_flow_is_traced_and_pruned(
    block: type[nn.Module], matches_zeroed: Callable[..., None]
) -> None:
    torch.manual_seed(0)
    dense = Net(block()).eval()
    pruned = copy.deepcopy(dense)
    record, info = _prune(pruned)
    assert info["kept_whole"] == []
    assert pruned.a.out_channels == 4
    matches_zeroed(dense, pruned, record, X)


@pytest.mark.parametrize("block", [BranchOnChannels, ReshapeByIntChannels])
def test_channel_count_made_constant_stays_blocked(block: type[nn.Module]) -> None:
    m = Net(block()).eval()
    dg = build(m, X)
    assert dg.kept_whole == []
    assert not [g for g in dg.prunable_groups() if "a" in g.producers]
    assert any("channel count" in why for why in dg.blocked.values())


def test_branch_on_tensor_values_keeps_the_block_whole() -> None:
    dg = build(Net(BranchOnValues()).eval(), X)
    (entry,) = dg.kept_whole
    assert entry["module"] == "block" and "control flow depends on the values of" in entry["reason"]
    assert not dg.prunable_groups()


def test_train_mode_running_stats_are_left_alone() -> None:
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), PoolIfSmall(), nn.Conv2d(8, 4, 1))
    before = copy.deepcopy(m[1].state_dict())
    build(m.train(), X)
    assert all(torch.equal(v, m[1].state_dict()[k]) for k, v in before.items())


def test_strict_trace_still_refuses_control_flow() -> None:
    with pytest.raises(KdrError, match="cannot trace module `block`"):
        trace(Net(PoolIfSmall()))


@pytest.mark.slow
def test_timm_vgg11_conv_mlp_pools_small_inputs(prunes_timm: Callable[..., Any]) -> None:
    assert prunes_timm("vgg11", 32, batch=1)["kept_whole"] == []


@pytest.mark.slow
def test_timm_efficientvit_b0_lite_mla_autocast(prunes_timm: Callable[..., Any]) -> None:
    assert prunes_timm("efficientvit_b0", 32)["kept_whole"] == []


class Picky(nn.Module):
    """A leaf that fails when run on real values while fx traces (and works otherwise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.fx._symbolic_trace.is_fx_tracing():
            raise ValueError("no")
        return x


class AskAfterPicky(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.picky = Picky()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.picky(x)
        return y if y.shape[-1] > 2 else x


def test_failing_evaluation_keeps_the_asking_block_whole() -> None:
    register_leaf(Picky)
    try:
        dg = build(Net(AskAfterPicky()).eval(), X)
    finally:
        LEAF_TYPES.discard(Picky)
    (entry,) = dg.kept_whole
    assert entry["module"] == "block" and "cannot run `block_picky`" in entry["reason"]


class DeviceCache(nn.Module):
    """timm's eval-mode ``attention_bias_cache[str(x.device)]``: the trace must not leave a
    proxy there for the next eager forward (the device is a real one now)."""

    def __init__(self) -> None:
        super().__init__()
        self.cache: dict[str, torch.Tensor] = {}
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = str(x.device)
        if key not in self.cache:
            self.cache[key] = self.scale * 2
        return x * self.cache[key]


def test_trace_side_effects_on_module_state_are_undone() -> None:
    m = Net(DeviceCache()).eval()
    build(m, X)
    assert m.block.cache == {}
    assert m(X).shape == (2, 4, 6, 6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["mobilevit_xxs", "mobilevitv2_050", "efficientvit_m0", "tiny_vit_5m_224"]
)
def test_timm_blocks_with_shape_branches_are_traced(name: str) -> None:
    """Their windows / patch checks (`if H == ws`, `new_h != H`) no longer keep them whole;
    what still blocks inside is the reshape rules' business (channel counts read in Python)."""
    timm = pytest.importorskip("timm")
    m = timm.create_model(name, pretrained=False, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    _, info = prune_model(m, x, 0.5, "l1", "local", Scope())
    assert info["kept_whole"] == []
    assert m(x).shape == (1, 10)


class BranchByLayer(nn.Module):
    """Another layer at another input size: the example never runs ``small``."""

    def __init__(self) -> None:
        super().__init__()
        self.big, self.small = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.big(x) if x.shape[-1] > 4 else self.small(x)


def test_a_layer_left_out_by_a_shape_branch_keeps_the_block_whole() -> None:
    dg = build(Net(BranchByLayer()).eval(), X)
    (entry,) = dg.kept_whole
    assert entry["module"] == "block" and "`block.small` does not run" in entry["reason"]
