"""Heads split by ``reshape`` and merged back, ``matmul`` / sdpa, softmax (``rules_heads``).

The pruned block is compared with a hand-sliced reference: index ``j`` of the head width goes
from every head of q, k and v (the qkv rows) and from the out-projection's columns.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from runtime.passes.channels import apply_record, build, prune_model
from runtime.passes.scopes import Scope

DIM, HEADS = 12, 3
D = DIM // HEADS


class Block(nn.Module):
    """Swin-style attention written out: reshape into heads, permute, unbind, matmul, merge."""

    def __init__(self, fused: bool = False, merge: str = "reshape", last: Any = -1) -> None:
        super().__init__()
        self.stem = nn.Linear(6, DIM)
        self.qkv, self.proj, self.head = (
            nn.Linear(DIM, 3 * DIM),
            nn.Linear(DIM, DIM),
            nn.Linear(DIM, 4),
        )
        self.fused, self.merge, self.last, self.scale = fused, merge, last, D**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        b, n = x.shape[0], x.shape[1]
        qkv = self.qkv(x).reshape(b, n, 3, HEADS, self.last).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            o = attn.softmax(dim=-1) @ v
        o = o.transpose(1, 2)
        o = o.flatten(2) if self.merge == "flatten" else o.reshape(b, n, -1)
        return self.head(x + self.proj(o))


def reference(m: Block, x: torch.Tensor, js: list[int]) -> torch.Tensor:
    """The block with head-width indices ``js`` kept in every head, sliced by hand."""
    rows = [s * DIM + h * D + j for s in range(3) for h in range(HEADS) for j in js]
    cols = [h * D + j for h in range(HEADS) for j in js]
    x = m.stem(x)
    b, n = x.shape[:2]
    qkv = F.linear(x, m.qkv.weight[rows], m.qkv.bias[rows])
    q, k, v = qkv.reshape(b, n, 3, HEADS, len(js)).permute(2, 0, 3, 1, 4).unbind(0)
    if m.fused:
        o = F.scaled_dot_product_attention(q, k, v)
    else:
        o = ((q * m.scale) @ k.transpose(-2, -1)).softmax(-1) @ v
    o = o.transpose(1, 2).reshape(b, n, -1)
    return m.head(x + F.linear(o, m.proj.weight[:, cols], m.proj.bias))


@pytest.mark.parametrize(("fused", "merge"), [(False, "reshape"), (True, "flatten")])
def test_heads_prune_the_same_index_everywhere_and_match_hand_sliced(
    fused: bool, merge: str
) -> None:
    torch.manual_seed(0)
    m, x = Block(fused, merge).eval(), torch.randn(2, 5, 6)
    dense = copy.deepcopy(m)
    record, _ = prune_model(m, x, 0.5, scope=Scope(include=["qkv"]))  # the residual stays
    assert set(record["layers"]) == {"qkv", "proj"}
    keep = record["layers"]["qkv"]["out"]
    js = [r for r in keep if r < D]
    assert len(js) == D // 2
    assert keep == [s * DIM + h * D + j for s in range(3) for h in range(HEADS) for j in js]
    assert record["layers"]["proj"]["in"] == [h * D + j for h in range(HEADS) for j in js]
    assert m.qkv.out_features == 3 * HEADS * len(js)
    with torch.no_grad():
        got, expected = m(x), reference(dense, x, js)
        m.train()
        assert m(x).shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    fresh = copy.deepcopy(dense)
    apply_record(fresh, record)
    fresh.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh.eval()(x), got, atol=1e-6)


def _inner_group(m: nn.Module, x: torch.Tensor) -> Any:
    dg = build(m, x)
    return next(g for g in dg.groups if g.producers == ["qkv"])


def test_split_couples_q_k_v_and_heads_into_one_group_of_head_width() -> None:
    g = _inner_group(Block(), torch.randn(2, 5, 6))
    assert g.blocked is None and g.size == D
    assert {"proj:in", "qkv:out"} <= set(g.members)


class ConstantWidth(Block):
    """``reshape(b, n, 3, -1, 4)``: the head width is a constant, the head count follows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        b, n = x.shape[0], x.shape[1]
        q, k, v = self.qkv(x).reshape(b, n, 3, -1, D).permute(2, 0, 3, 1, 4).unbind(0)
        o = ((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).reshape(b, n, -1)
        return self.head(x + self.proj(o))


class OneSidedContraction(nn.Module):
    """``q @ w`` with a fixed matrix: q's width could not shrink alone."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.head = nn.Linear(6, DIM), nn.Linear(5, 4)
        self.register_buffer("w", torch.randn(DIM, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.q(x) @ self.w)


class SoftmaxOverChannels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(6, DIM), nn.Linear(DIM, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x).softmax(-1))


@pytest.mark.parametrize(
    ("model", "producer"),
    [
        (ConstantWidth(), "qkv"),
        (Block(last=D), "qkv"),  # a constant last piece: stale after pruning
        (OneSidedContraction(), "q"),
        (SoftmaxOverChannels(), "a"),
    ],
)
def test_unsafe_cases_are_blocked(model: nn.Module, producer: str) -> None:
    dg = build(model, torch.randn(2, 5, 6))
    g = next(g for g in dg.groups if producer in g.producers)
    assert g.blocked is not None


def test_timm_swin_window_attention_heads_are_pruned() -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    m = timm.create_model(
        "swin_tiny_patch4_window7_224",
        pretrained=False,
        img_size=32,
        window_size=2,
        embed_dim=24,
        depths=(1, 1),
        num_heads=(2, 4),
        num_classes=3,
    ).eval()
    x = torch.randn(1, 3, 32, 32)
    dense = copy.deepcopy(m)
    with torch.no_grad():
        before = m(x)
    record, info = prune_model(m, x, 0.5)
    qkv = m.get_submodule("layers.0.blocks.0.attn.qkv")
    assert qkv.out_features == 3 * 2 * 6  # 2 heads of 12 -> 6 each, in q, k and v
    assert info["params_after"] < 0.65 * info["params_before"]
    with torch.no_grad():
        after = m(x)
        m.train()
        assert m(x).shape == before.shape
    assert after.shape == before.shape
    apply_record(dense, record)
    dense.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(dense.eval()(x), m.eval()(x), atol=1e-5)
