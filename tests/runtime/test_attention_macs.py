"""MACs of attention: nn.MultiheadAttention's functional projections and the attention matmuls
are counted, so the prunable replacement costs the same and pruning heads lowers the count."""

from __future__ import annotations

from torch import nn

from runtime.metrics import count_macs
from runtime.passes.heads import apply_heads
from runtime.passes.heads.mha import PrunableMultiheadAttention


class Block(nn.Module):
    def __init__(self, attn: nn.Module) -> None:
        super().__init__()
        self.attn = attn

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = x[:, 0]  # count_macs feeds (1, C, H, W): one "channel" of (tokens, features)
        return self.attn(x, x, x, need_weights=False)[0]


def test_mha_costs_its_projections_and_matmuls() -> None:
    e, n = 8, 5  # tokens of a (1, 5, 8) sample: 4 projections of n*e*e, 2 matmuls of n*n*e
    macs = count_macs(Block(nn.MultiheadAttention(e, 2, batch_first=True)), (1, n, e))
    assert macs == 4 * n * e * e + 2 * n * n * e


def test_prunable_replacement_costs_the_same_and_pruning_heads_lowers_it() -> None:
    mha = nn.MultiheadAttention(8, 4, batch_first=True)
    before = count_macs(Block(mha), (1, 5, 8))
    block = Block(PrunableMultiheadAttention.from_mha(mha))
    assert count_macs(block, (1, 5, 8)) == before
    apply_heads(block, {"heads": {"attn": [0, 2]}})
    e, inner, n = 8, 4, 5
    assert count_macs(block, (1, 5, 8)) == 2 * n * e * inner + 2 * n * inner * e + 2 * n * n * inner
