"""timm's ``BottleneckAttn`` (BoTNet), traced whole: heads folded into the batch dim.

Its forward splits one qkv conv into q, k, v by constant sizes, then folds the heads into the
batch (``q.reshape(B * heads, dim_head_qk, -1)``) and adds relative-position logits computed
from q with two parameters shared by every head (``height_rel``/``width_rel``, of width
``dim_head_qk``): no generic rule follows a head into the batch dim. Seen whole it is simple:

- q and k, head by head, are contracted together: position ``j`` of every head of q and of k,
  and column ``j`` of both position tables, are one channel (the same width kept in each head,
  the tables sliced with it). Removing ``j`` removes one term of each dot product, exactly as
  zeroing it would (the attention scale is kept);
- v's position ``j`` of every head is one channel too (the heads are folded back into the
  output's channels, ``reshape(B, dim_out_v, H, W)``, so each keeps the same width); they are
  the block's output channels. Both sets are produced by the qkv conv alone, so they form one
  group: a balanced partition (q/k and v keep as many) keeps either from being emptied.

Surgery slices the qkv conv and the tables; :func:`.attr_dims.fix_attributes` rewrites the head
widths (``dim_head_qk`` read back from the sliced table, ``dim_head_v`` from what is left).
"""

from __future__ import annotations

from typing import Any

from torch import fx

from ..trace import register_leaf
from .op_rules import Info, module_rule
from .walker import GraphWalker

BOTTLENECK_ATTN = "timm.layers.bottleneck_attn.BottleneckAttn"
register_leaf(BOTTLENECK_ATTN)


def _heads(atoms: list[int], heads: int) -> list[list[int]]:
    width = len(atoms) // heads
    return [atoms[h * width : (h + 1) * width] for h in range(heads)]


@module_rule(BOTTLENECK_ATTN)
def bottleneck_attn(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    """Input -> the qkv conv's inputs; q/k per-head positions and the tables coupled; output:
    v's channels (every head keeping the same positions)."""
    name, src = str(node.target), node.args[0] if node.args else None
    nh, dq, dv = int(m.num_heads), int(m.dim_head_qk), int(m.dim_head_v)
    qkv = m.qkv
    w.block_inputs(node, f"extra input of `{name}`", keep=src)
    ep_in = w.dg.endpoint(f"{name}.qkv", "in", qkv.in_channels)
    w.consume(src, ep_in.atoms, 1, f"input of `{name}` not tracked")
    out = w.dg.endpoint(f"{name}.qkv", "out", qkv.out_channels).atoms
    if qkv.groups != 1 or len(out) != nh * (2 * dq + dv):
        w.dg.block(ep_in.atoms + out, f"`{name}` is not the BottleneckAttn kdr knows")
        return None
    q, k, v = out[: nh * dq], out[nh * dq : 2 * nh * dq], out[2 * nh * dq :]
    first = q[:dq]
    for head in _heads(q, nh) + _heads(k, nh):
        w.dg.union(first, head)
    for table in ("height_rel", "width_rel"):
        w.dg.union(first, w.dg.endpoint(f"{name}.pos_embed.{table}", "param", dq, 1).atoms)
    for head in _heads(v, nh)[1:]:
        w.dg.union(v[:dv], head)
    if dq != dv:  # one group (both produced by qkv): nothing would keep q/k from emptying
        w.dg.block(out, f"`{name}`: q/k and v head widths differ")
    else:  # q/k and v keep as many each, so neither is emptied
        w.dg.partitions.append([first, v[:dv]])
    return Info(1, v)


__all__ = ["BOTTLENECK_ATTN", "bottleneck_attn"]
