"""``PrunableMultiheadAttention``: ``nn.MultiheadAttention`` with separate q/k/v/out layers.

``nn.MultiheadAttention`` packs q, k and v in one ``in_proj_weight`` and ties the inner width
to ``embed_dim`` (``head_dim = embed_dim // num_heads``), so heads cannot be removed from it.
This module computes the same function (same call signature, ``batch_first`` as the original,
returns ``(out, weights_or_None)``) with ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj``
``nn.Linear`` layers whose inner width is ``num_heads * head_dim``: head pruning slices them.
``head_index`` remembers which of the original heads are left, so a per-head 3-D
``attn_mask`` (``(N * original_heads, L, S)``) still lines up after pruning.

>>> import torch
>>> from torch import nn
>>> m = nn.MultiheadAttention(8, 2, batch_first=True).eval()
>>> p = PrunableMultiheadAttention.from_mha(m).eval()
>>> x = torch.randn(3, 5, 8)
>>> torch.allclose(m(x, x, x)[0], p(x, x, x)[0], atol=1e-6)
True
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PrunableMultiheadAttention(nn.Module):
    """Multi-head attention whose heads can be removed (see the module docstring)."""

    #: No packed projection: ``nn.TransformerEncoderLayer``'s fast-path check reads these and,
    #: finding None, runs its regular path, which calls this module.
    in_proj_weight: None = None
    in_proj_bias: None = None
    _qkv_same_embed_dim = False

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        head_dim: int,
        *,
        bias: bool = True,
        out_bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        inner = num_heads * head_dim
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.batch_first, self.dropout = batch_first, dropout
        self.head_index: list[int] = list(range(num_heads))
        #: The original ``head_dim ** -0.5``: kept when channel pruning narrows the heads.
        self.scaling = head_dim**-0.5
        self.q_proj = nn.Linear(embed_dim, inner, bias=bias)
        self.k_proj = nn.Linear(kdim or embed_dim, inner, bias=bias)
        self.v_proj = nn.Linear(vdim or embed_dim, inner, bias=bias)
        self.out_proj = nn.Linear(inner, embed_dim, bias=out_bias)

    @staticmethod
    def supports(m: nn.MultiheadAttention) -> bool:
        """``add_bias_kv`` / ``add_zero_attn`` append key positions: not reproduced here."""
        return m.bias_k is None and m.bias_v is None and not m.add_zero_attn

    @classmethod
    def convert_in_place(cls, m: nn.MultiheadAttention) -> PrunableMultiheadAttention:
        """Turn ``m`` itself into the equivalent prunable module, keeping its identity (the
        name in its parent, references held by traced graphs, its hooks)."""
        new = cls.from_mha(m)
        hooks = {k: v for k, v in vars(m).items() if k.endswith("hooks") or "hook" in k}
        m.__dict__.clear()
        m.__dict__.update(vars(new))
        m.__dict__.update(hooks)
        m.__class__ = cls  # type: ignore[assignment]
        return m  # type: ignore[return-value]

    @classmethod
    def from_mha(cls, m: nn.MultiheadAttention) -> PrunableMultiheadAttention:
        """The same function as ``m``, with its weights copied into separate layers."""
        e = m.embed_dim
        new = cls(
            e,
            m.num_heads,
            m.head_dim,
            bias=m.in_proj_bias is not None,
            out_bias=m.out_proj.bias is not None,
            kdim=m.kdim,
            vdim=m.vdim,
            batch_first=m.batch_first,
            dropout=m.dropout,
        )
        ref = m.out_proj.weight
        new.to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            if m.in_proj_weight is not None:
                ws = m.in_proj_weight.split(e)
            else:
                ws = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
            bs = m.in_proj_bias.split(e) if m.in_proj_bias is not None else (None,) * 3
            for layer, w, b in zip((new.q_proj, new.k_proj, new.v_proj), ws, bs, strict=True):
                layer.weight.copy_(w)
                if b is not None and layer.bias is not None:
                    layer.bias.copy_(b)
            # the out-projection's own shape: channel surgery may have narrowed it already
            out_w = m.out_proj.weight
            new.out_proj = nn.Linear(
                out_w.shape[1], out_w.shape[0], bias=new.out_proj.bias is not None
            )
            new.out_proj.to(device=ref.device, dtype=ref.dtype)
            new.out_proj.weight.copy_(out_w)
            if new.out_proj.bias is not None and m.out_proj.bias is not None:
                new.out_proj.bias.copy_(m.out_proj.bias)
        new.train(m.training)
        return new

    def _mask(
        self,
        attn_mask: torch.Tensor | None,
        key_padding_mask: torch.Tensor | None,
        n: int,
        like: torch.Tensor,
    ) -> torch.Tensor | None:
        """One additive float mask broadcastable to ``(N, H, L, S)`` (bool: True = masked)."""

        def additive(t: torch.Tensor) -> torch.Tensor:
            if t.dtype == torch.bool:
                return torch.zeros_like(t, dtype=like.dtype).masked_fill(t, float("-inf"))
            return t.to(like.dtype)

        out: torch.Tensor | None = None
        if attn_mask is not None:
            mask = additive(attn_mask)
            if mask.dim() == 3:  # (N * original heads, L, S): keep the surviving heads' rows
                mask = mask.view(n, -1, *mask.shape[-2:])[:, self.head_index]
            out = mask
        if key_padding_mask is not None:
            pad = additive(key_padding_mask).view(n, 1, 1, -1)
            out = pad if out is None else out + pad
        return out

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        # from here on (L, N, E), as nn.MultiheadAttention computes internally
        length, n, _ = query.shape
        h, d = self.num_heads, self.head_dim

        def heads(t: torch.Tensor) -> torch.Tensor:  # (T, N, H * D) -> (N, H, T, D)
            return t.reshape(t.shape[0], n, h, d).permute(1, 2, 0, 3)

        q, k, v = heads(self.q_proj(query)), heads(self.k_proj(key)), heads(self.v_proj(value))
        mask = self._mask(attn_mask, key_padding_mask, n, q)
        p = self.dropout if self.training else 0.0
        weights: torch.Tensor | None = None
        if need_weights:
            scores = (q * self.scaling) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            elif is_causal:
                causal = torch.ones(length, k.shape[2], dtype=torch.bool, device=q.device).tril()
                scores = scores.masked_fill(~causal, float("-inf"))
            attn = scores.softmax(-1)
            weights = attn.mean(1) if average_attn_weights else attn
            out = F.dropout(attn, p) @ v
        else:
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                dropout_p=p,
                is_causal=is_causal and mask is None,
                scale=self.scaling,
            )
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(length, n, h * d))
        if unbatched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


__all__ = ["PrunableMultiheadAttention"]
