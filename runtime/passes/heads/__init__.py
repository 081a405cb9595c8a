"""Attention-head pruning: the ``prune.heads`` pass, head layouts, and a prunable nn.MHA.

Importing this package registers ``prune.heads``.
"""

from .layouts import LAYOUTS, Layout, Part, layout, layout_for
from .mha import PrunableMultiheadAttention
from .op import prune_heads, replay_heads
from .prune import apply_heads, prune_heads_of

__all__ = [
    "LAYOUTS",
    "Layout",
    "Part",
    "PrunableMultiheadAttention",
    "apply_heads",
    "layout",
    "layout_for",
    "prune_heads",
    "prune_heads_of",
    "replay_heads",
]
