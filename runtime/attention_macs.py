"""Multiply-accumulates of attention blocks, which per-layer hooks on Linear layers miss.

``nn.MultiheadAttention`` computes its projections functionally (``F.multi_head_attention_forward``
reads ``in_proj_weight`` and ``out_proj.weight``), so no Linear hook fires: its whole cost is
counted here (projections and the two attention matmuls). kdr's ``PrunableMultiheadAttention``
and timm's ``Attention`` project through Linear submodules, which the Linear hooks count; only
their attention matmuls (``Q K^T`` and ``A V``, ``2 * Lq * Lk * inner`` per sample) are added.
Without this, pruning heads (which turns an ``nn.MultiheadAttention`` into the prunable module)
would show MACs *rising*.

>>> import torch
>>> from torch import nn
>>> m = nn.MultiheadAttention(8, 2, batch_first=True)
>>> x = torch.zeros(1, 3, 8)
>>> attention_macs(m, (x, x, x), {})  # 4 projections 3*8*8 each + 2 matmuls 3*3*8
912
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PRUNABLE_MHA = "runtime.passes.heads.mha.PrunableMultiheadAttention"
TIMM_ATTENTION = "timm.layers.attention.Attention"


def _type_name(m: nn.Module) -> str:
    return f"{type(m).__module__}.{type(m).__qualname__}"


def counts_attention(m: nn.Module) -> bool:
    return isinstance(m, nn.MultiheadAttention) or _type_name(m) in (PRUNABLE_MHA, TIMM_ATTENTION)


def _qkv(inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    q = inputs[0] if inputs else kwargs["query"]
    k = inputs[1] if len(inputs) > 1 else kwargs.get("key", q)
    return q, k


def _lengths(q: torch.Tensor, k: torch.Tensor, batch_first: bool) -> tuple[int, int, int]:
    """(query length, key length, batch) of an MHA call."""
    if q.dim() == 2:
        return int(q.shape[0]), int(k.shape[0]), 1
    if batch_first:
        return int(q.shape[1]), int(k.shape[1]), int(q.shape[0])
    return int(q.shape[0]), int(k.shape[0]), int(q.shape[1])


def _out_features(m: nn.Module, layer: str) -> int:
    return int(getattr(getattr(m, layer), "out_features"))  # noqa: B009  (a submodule)


def attention_macs(m: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """MACs of one call of attention block ``m`` that Linear hooks do not see (whole batch)."""
    if _type_name(m) == TIMM_ATTENTION:
        x = inputs[0] if inputs else kwargs["x"]
        b, n = int(x.shape[0]), int(x.shape[1])
        return 2 * b * n * n * (_out_features(m, "qkv") // 3)
    q, k = _qkv(inputs, kwargs)
    lq, lk, batch = _lengths(q, k, bool(getattr(m, "batch_first", False)))
    if isinstance(m, nn.MultiheadAttention):
        e = m.embed_dim
        projections = lq * e * e + lk * m.kdim * e + lk * m.vdim * e + lq * e * e
        return batch * (projections + 2 * lq * lk * e)
    return batch * 2 * lq * lk * _out_features(m, "q_proj")


__all__ = ["attention_macs", "counts_attention"]
