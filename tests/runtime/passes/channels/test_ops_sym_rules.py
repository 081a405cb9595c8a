"""Small rules met on the way to the symbolic-count models: ``torch.roll`` and
computed spatial ``pad`` widths (Swin), ``x.new_empty`` (drop-path noise), ``repeat`` (XCiT's
positional encoding), ``F.normalize`` (XCiT), a parameter view's shape read (PiT's class
tokens), a matmul batched over a tracked dim (CaiT's talking heads), and PVT-v2's head width
kept as an attribute. Each pruned block equals its dense copy with the pruned channels zeroed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runtime.passes.channels import apply_record, build, count_params, prune_model
from runtime.passes.scopes import Scope

Check = Callable[[nn.Module, nn.Module, dict[str, Any], Any], None]


def _prune(dense: nn.Module, x: torch.Tensor) -> tuple[nn.Module, dict[str, Any]]:
    pruned = copy.deepcopy(dense)
    record, _ = prune_model(pruned, x, 0.5, "l1", "local", Scope())
    fresh = copy.deepcopy(dense)
    apply_record(fresh, json.loads(json.dumps(record)))
    fresh.load_state_dict(pruned.state_dict())
    assert torch.allclose(fresh.eval()(x), pruned.eval()(x), atol=1e-6)
    return pruned, record


class Misc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed, self.fc = nn.Conv2d(3, 8, 2, stride=2), nn.Linear(8, 8)
        self.pos = nn.Conv2d(2, 8, 1)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)  # (B, 8, 3, 3)
        b = h.shape[0]
        grid = torch.ones(1, 2, 3, 3)
        h = h + self.pos(grid).repeat(b, 1, 1, 1)
        t = h.permute(0, 2, 3, 1)  # channels last (B, 3, 3, 8)
        pad_h = (4 - t.shape[1] % 4) % 4  # a computed width
        t = F.pad(t, (0, 0, 0, pad_h, 0, pad_h))
        t = torch.roll(t, shifts=(1, 1), dims=(1, 2))
        t = F.normalize(t, dim=1).flatten(1, 2)
        noise = t.new_empty((b, 1, 1)).fill_(1.0)
        t = self.fc(t * noise)
        cls = self.cls_token.expand(b, -1, -1)
        n = cls.shape[1]  # the token count of a parameter view
        t = torch.cat([cls, t], dim=1)[:, n:]
        return self.head(t.mean(1))


def test_roll_pad_new_empty_repeat_normalize_and_a_parameter_views_shape(
    matches_zeroed: Check,
) -> None:
    torch.manual_seed(0)
    dense, x = Misc().eval(), torch.randn(2, 3, 6, 6)
    pruned, record = _prune(dense, x)
    assert pruned.embed.out_channels == pruned.pos.out_channels == 4
    assert pruned.cls_token.shape == (1, 1, 4) and pruned.fc.out_features == 4
    matches_zeroed(dense, pruned, record, x)


class Rolled(Misc):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.roll(self.embed(x), shifts=1, dims=1)  # along the channels
        return self.head(t.mean((2, 3)))


def test_rolling_the_channels_blocks() -> None:
    dg = build(Rolled(), torch.randn(2, 3, 6, 6))
    assert not any("embed" in g.producers for g in dg.prunable_groups())


class TalkingHeads(nn.Module):
    """Attention maps mixed across heads by a Linear before ``attn @ v``: the mixed head dim
    cannot shrink (v's heads are fixed), the head width can."""

    def __init__(self) -> None:
        super().__init__()
        self.v, self.mix, self.proj = nn.Linear(4, 8), nn.Linear(2, 2), nn.Linear(8, 3)
        self.attn = nn.Parameter(torch.randn(2, 5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], x.shape[1]
        v = self.v(x).reshape(b, n, 2, -1).permute(0, 2, 1, 3)
        a = self.mix(self.attn.expand(b, -1, -1, -1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1))


def test_a_matmul_batched_over_a_tracked_dim_blocks_that_operand_only(
    matches_zeroed: Check,
) -> None:
    torch.manual_seed(0)
    dense, x = TalkingHeads().eval(), torch.randn(2, 5, 4)
    dg = build(copy.deepcopy(dense), x)
    (mixed,) = [g for g in dg.groups if g.producers == ["mix"]]
    assert mixed.blocked is not None and "batches over a tracked dim" in mixed.blocked
    pruned, record = _prune(dense, x)
    assert pruned.v.out_features == 4 and pruned.proj.in_features == 4
    matches_zeroed(dense, pruned, record, x)


def test_timm_pvt_v2_head_dim_attribute_follows_the_pruned_heads() -> None:
    timm = pytest.importorskip("timm")

    def make() -> nn.Module:
        torch.manual_seed(0)
        return timm.create_model("pvt_v2_b0", num_classes=10, depths=(1, 1, 1, 1)).eval()

    m, x = make(), torch.randn(2, 3, 64, 64)
    dense = count_params(m)
    record, _ = prune_model(m, x, 0.5, "l1", "local")
    assert count_params(m) <= 0.35 * dense
    attn = m.stages[3].blocks[0].attn
    assert attn.head_dim == attn.q.out_features // attn.num_heads == 16
    y = m(x)
    fresh = make()
    apply_record(fresh, json.loads(json.dumps(record)))
    assert fresh.stages[3].blocks[0].attn.head_dim == 16
    fresh.load_state_dict(m.state_dict())
    assert torch.allclose(fresh.eval()(x), y, atol=1e-5)
    m.train()
    m(x).sum().backward()
