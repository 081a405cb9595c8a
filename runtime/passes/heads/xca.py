"""EdgeNeXt's cross-covariance attention with an inner width of its own.

timm's ``CrossCovarianceAttn`` merges its heads with ``reshape(B, N, C)``, ``C`` read from the
input: its inner width (``qkv`` rows / 3, ``proj`` columns) must equal the residual width. The
channel pruner narrows the inner width on its own (the residual of an EdgeNeXt stage is coupled
by chunk pieces that the heads cut across), and then turns the block into this subclass, whose
only change is merging heads with ``-1``. Module-level, so a pruned model pickles.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

NARROW = f"{__name__}.NarrowCrossCovarianceAttn"

_Base: Any
try:
    from timm.models.edgenext import CrossCovarianceAttn as _Base
except ImportError:  # timm is optional
    _Base = None


if _Base is not None:

    class NarrowCrossCovarianceAttn(_Base):
        """``CrossCovarianceAttn`` whose heads merge to the inner width, not the input's."""

        def forward(self, x: torch.Tensor) -> Any:
            b, n, _ = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 4, 1)
            q, k, v = qkv.unbind(0)
            attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            attn = self.attn_drop((attn * self.temperature).softmax(dim=-1))
            x = (attn @ v).permute(0, 3, 1, 2).reshape(b, n, -1)
            return self.proj_drop(self.proj(x))


def narrow(m: Any) -> None:
    """Let ``m`` (a timm ``CrossCovarianceAttn``) run with an inner width of its own."""
    if _Base is not None and type(m) is _Base:
        m.__class__ = NarrowCrossCovarianceAttn


__all__ = ["NARROW", "narrow"]
