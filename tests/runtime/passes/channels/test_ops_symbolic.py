"""Channel counts read in Python (``B, N, C = x.shape``) and the reshapes they size (walker.Sym).

Three patterns, each checked against the dense model with the pruned channels zeroed:
1. self-consistent: ``C`` reshapes the tensor it was read from (PVT-v2's depthwise MLP, Swin's
   window partition);
2. own split: ``x.reshape(B, radix, C // radix, H, W)`` (ResNeSt's split attention), with the
   attention logits reshaped by ``x``'s count too;
3. tied: ``C`` read from the residual stream sizes the heads of *another* tensor (CaiT's class
   attention) and their merge.
And the soundness side: a count that escapes anywhere else blocks its tensor's channels.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from runtime.passes.channels import apply_record, build, prune_model
from runtime.passes.scopes import Scope

Check = Callable[[nn.Module, nn.Module, dict[str, Any], Any], None]


def _prune_and_check(dense: nn.Module, x: torch.Tensor, check: Check) -> nn.Module:
    pruned = copy.deepcopy(dense)
    record, _ = prune_model(pruned, x, 0.5, "l1", "local", Scope())
    check(dense, pruned, record, x)
    fresh = copy.deepcopy(dense)
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(pruned.state_dict())
    assert torch.allclose(fresh.eval()(x), pruned(x), atol=1e-6)
    pruned.train()
    pruned(x).sum().backward()
    return pruned


class SelfConsistent(nn.Module):
    """Tokens to an image by their own ``C`` and back; a channel-last window partition."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.fc1 = nn.Conv2d(3, 8, 2, stride=2), nn.Linear(8, 12)
        self.dw, self.fc2 = nn.Conv2d(12, 12, 3, padding=1, groups=12), nn.Linear(12, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)  # (B, 16, 8)
        h = self.fc1(t)
        b, _, c = h.shape
        img = h.transpose(1, 2).view(b, c, 4, 4)  # PVT-v2's MlpWithDepthwiseConv
        y = self.fc2(self.dw(img).flatten(2).transpose(1, 2)).view(b, 4, 4, -1)
        bb, hh, ww, cc = y.shape  # Swin's window_partition
        win = y.view(bb, hh // 2, 2, ww // 2, 2, cc).permute(0, 1, 3, 2, 4, 5)
        win = win.reshape(-1, 4, cc)
        return self.head(win.mean(1))


def test_a_count_reshaping_its_own_tensor_is_pruned(matches_zeroed: Check) -> None:
    torch.manual_seed(0)
    dense, x = SelfConsistent().eval(), torch.randn(2, 3, 8, 8)
    pruned = _prune_and_check(dense, x, matches_zeroed)
    assert pruned.fc1.out_features == 6 and pruned.dw.out_channels == 6
    assert pruned.fc2.out_features == 3 and pruned.embed.out_channels == 4


class SplitAttn(nn.Module):
    """ResNeSt's ``SplitAttn`` with radix 2: the conv's ``2 * C`` outputs as two chunks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 12, 3, padding=1), nn.Conv2d(6, 12, 1)
        self.head = nn.Conv2d(6, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        b, rc, hh, ww = h.shape
        h5 = h.reshape(b, 2, rc // 2, hh, ww)
        gap = h5.sum(dim=1).mean((2, 3), keepdim=True)
        attn = self.fc(gap).reshape(b, 2, rc // 2, 1, 1).softmax(dim=1)
        return self.head((h5 * attn).sum(dim=1))


def test_a_count_splitting_its_own_tensor_keeps_the_chunks_equal(matches_zeroed: Check) -> None:
    torch.manual_seed(0)
    dense, x = SplitAttn().eval(), torch.randn(2, 3, 6, 6)
    record, _ = prune_model(copy.deepcopy(dense), x, 0.5, "l1", "local", Scope())
    rows = record["layers"]["conv"]["out"]
    js = [r for r in rows if r < 6]
    assert rows == js + [6 + j for j in js] and len(js) == 3  # the same index in each chunk
    pruned = _prune_and_check(dense, x, matches_zeroed)
    assert pruned.conv.out_channels == 6 and pruned.fc.out_channels == 6
    assert pruned.head.in_channels == 3


class Tied(nn.Module):
    """CaiT's class attention, its mixing removed: ``v`` split into heads by the residual
    stream's ``C // heads`` and merged back by ``C``."""

    def __init__(self, heads: int = 2) -> None:
        super().__init__()
        self.stem, self.v = nn.Linear(5, 8), nn.Linear(8, 8)
        self.proj, self.head, self.heads = nn.Linear(8, 8), nn.Linear(8, 3), heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.stem(x)
        b, _, c = r.shape
        v = self.v(r[:, 0]).unsqueeze(1).reshape(b, 1, self.heads, c // self.heads)
        o = torch.relu(v.permute(0, 2, 1, 3)).transpose(1, 2).reshape(b, 1, c)
        return self.head(r[:, 0] + self.proj(o)[:, 0])


def test_a_count_read_from_another_tensor_ties_the_two(matches_zeroed: Check) -> None:
    torch.manual_seed(0)
    dense, x = Tied().eval(), torch.randn(2, 3, 5)
    dg = build(copy.deepcopy(dense), x)
    (group,) = [g for g in dg.prunable_groups() if "v" in g.producers]
    assert {"stem", "v"} <= set(group.producers) and group.size == 4  # one head's width
    pruned = _prune_and_check(dense, x, matches_zeroed)
    assert pruned.v.out_features == pruned.stem.out_features == 4


class Escapes(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.fc1, self.fc2, self.how = nn.Linear(4, 6), nn.Linear(6, 2), how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        b, n, c = h.shape
        if self.how == "zeros":  # a fresh tensor of the old width
            h = h + h.new_zeros(b, n, c)
        elif self.how == "scale":  # a count in arithmetic
            h = h * c**-0.5
        elif self.how == "inexact":  # 6 // 4 would round differently once pruned
            h = h.reshape(b, n, c // 4, -1).flatten(2)
        elif self.how == "elsewhere":  # the count placed where the channels are not
            h = h.reshape(b, c, n).transpose(1, 2)
        return self.fc2(h)


def test_a_count_that_escapes_blocks_its_channels() -> None:
    x = torch.randn(2, 3, 4)
    for how in ("zeros", "scale", "inexact", "elsewhere"):
        dg = build(Escapes(how), x)
        assert not any("fc1" in g.producers for g in dg.prunable_groups()), how
        (group,) = [g for g in dg.groups if "fc1" in g.producers]
        reason = "is not understood" if how == "elsewhere" else "uses the channel count of `fc1`"
        assert group.blocked is not None and reason in group.blocked, (how, group.blocked)
    dg = build(Escapes("none"), x)
    assert any("fc1" in g.producers for g in dg.prunable_groups())


class ScaledByAnotherCount(nn.Module):
    """``h * C`` with ``C`` counting ``g``: ``h`` keeps its channels, ``g``'s count is pinned."""

    def __init__(self) -> None:
        super().__init__()
        self.fc0, self.fc1 = nn.Linear(4, 6), nn.Linear(4, 8)
        self.out0, self.out1 = nn.Linear(6, 2), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.fc0(x)
        h = self.fc1(x) * g.shape[-1]
        return self.out0(g) + self.out1(h)


def test_a_tensor_times_a_count_keeps_the_tensor_tracked(matches_zeroed: Check) -> None:
    torch.manual_seed(0)
    dense, x = ScaledByAnotherCount().eval(), torch.randn(2, 3, 4)
    dg = build(copy.deepcopy(dense), x)
    assert [g.producers for g in dg.prunable_groups()] == [["fc1"]]
    pruned = _prune_and_check(dense, x, matches_zeroed)
    assert pruned.fc1.out_features == 4 and pruned.fc0.out_features == 6
