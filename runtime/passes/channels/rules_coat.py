"""Op rules for CoaT's factorized attention with convolutional relative position encoding
(timm's ``FactorAttnConvRelPosEnc``), traced whole (a leaf), and a pruner for its shared
``ConvRelPosEnc``.

The block reads ``qkv`` as ``reshape(B, N, 3, H, C // H)`` (``C`` from the input) and merges
heads with ``reshape(B, N, C)``: as in XCiT, head-width position ``j`` of q, k, v and of the
out-projection's columns is tied to input channel ``j``, with one balanced chunk per head.

- Factorized attention ``q @ (softmax_N(k)^T @ v)``: the key softmax runs over tokens (per
  channel), so cutting position ``j`` removes one term of the sum over key channels and one
  output column: the kept outputs are exactly the dense ones with query channel ``j`` zeroed.
  ``scale`` keeps the original ``head_dim ** -0.5``.
- ``ConvRelPosEnc``: ``v`` is laid out ``(B, H * Ch, H, W)`` (head-major) and split by
  ``channel_splits`` (whole heads) into depthwise convs, whose outputs multiply ``q``: conv
  ``i``'s channels are the inner positions of its heads. The module is shared by every block of
  a stage (all tied to the one residual); it is the ``norm`` endpoint of the positions, and its
  pruner recounts ``channel_splits`` (and the convs' widths) from the kept ones. The convs'
  weights are ``param`` endpoints, not producers: as ``out`` endpoints each would make its
  positions a group of their own, and the per-head chunks would span groups.
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from ..trace import register_leaf
from .op_rules import Info, module_rule
from .surgery import PRUNERS_BY_NAME
from .walker import GraphWalker

FACTOR_ATTN = "timm.models.coat.FactorAttnConvRelPosEnc"
register_leaf(FACTOR_ATTN)


def _crpe(w: GraphWalker, m: Any, c: int) -> tuple[str, Any] | None:
    """The shared ``ConvRelPosEnc``'s name and module, if its depthwise convs cover ``c``."""
    crpe = getattr(m, "crpe", None)
    name = next((n for n, mod in w.modules.items() if mod is crpe), None)
    convs = list(getattr(crpe, "conv_list", []))
    if (
        crpe is None
        or name is None
        or list(crpe.channel_splits) != [getattr(v, "groups", 0) for v in convs]
    ):
        return None
    if not all(isinstance(v, nn.Conv2d) and v.in_channels == v.out_channels for v in convs):
        return None
    return (name, crpe) if sum(crpe.channel_splits) == c else None


def factor_attention(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    """A CoaT factorized attention called on ``(B, N, C)`` tokens and a constant size."""
    name, src = str(node.target), node.args[0] if node.args else None
    nd, qkv, proj, heads = w.ndim(src), m.qkv, m.proj, int(m.num_heads)
    ok = isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear)
    c = qkv.in_features if ok else 0
    found = _crpe(w, m, c) if ok else None
    if nd is None or found is None or qkv.out_features != 3 * c or proj.in_features != c:
        return w.unknown(node)
    if c % heads or any(isinstance(a, fx.Node) for a in [*node.args[1:], *node.kwargs.values()]):
        return w.unknown(node)
    crpe_name, crpe = found
    ins = w.dg.endpoint(f"{name}.qkv", "in", c).atoms
    w.consume(src, ins, nd - 1, f"input of attention `{name}`")
    rows = w.dg.endpoint(f"{name}.qkv", "out", 3 * c).atoms
    for part in range(3):  # q, k, v position j is input channel j (``C // H`` sizes them)
        w.dg.union(ins, rows[part * c : (part + 1) * c])
    w.dg.union(ins, w.dg.endpoint(f"{name}.proj", "in", c).atoms)
    w.dg.union(ins, w.dg.endpoint(crpe_name, "norm", c).atoms)
    start = 0
    for i, n in enumerate(crpe.channel_splits):  # depthwise: sliced as parameters (no producer)
        for t in ("weight", "bias"):
            if getattr(crpe.conv_list[i], t, None) is not None:
                ep = w.dg.endpoint(f"{crpe_name}.conv_list.{i}.{t}", "param", n)
                w.dg.union(ins[start : start + n], ep.atoms)
        start += n
    if heads > 1:
        size = c // heads
        w.dg.partitions.append([ins[h * size : (h + 1) * size] for h in range(heads)])
    return Info(nd - 1, w.dg.endpoint(f"{name}.proj", "out", proj.out_features).atoms)


def prune_crpe(m: Any, keeps: dict[str, list[int]]) -> None:
    """``channel_splits`` from the kept positions (``norm``) that fall in each conv's range."""
    keep = keeps.get("norm")
    if keep is None:
        return
    splits, start = [], 0
    for n in m.channel_splits:
        splits.append(sum(start <= k < start + n for k in keep))
        start += n
    m.channel_splits = splits
    for conv, n in zip(m.conv_list, splits, strict=True):  # its weights: sliced as parameters
        conv.in_channels = conv.out_channels = conv.groups = n


module_rule(FACTOR_ATTN)(factor_attention)
PRUNERS_BY_NAME["timm.models.coat.ConvRelPosEnc"] = prune_crpe  # by name: timm is not imported

__all__ = ["factor_attention", "prune_crpe"]
