"""Op rules for cross-covariance attention (XCA: timm's XCiT ``XCA`` and EdgeNeXt's
``CrossCovarianceAttn``), traced whole (leaves).

XCA attends over *channels*: ``qkv`` rows are laid out ``[q, k, v] x heads x head_dim``, q and
k are L2-normalized along the tokens, ``attn = softmax(temperature_h * q @ k^T)`` is
``(B, H, d, d)`` and ``attn @ v`` mixes the value channels of a head. Traced op by op, the two
channel axes of ``q @ k^T`` are not understood and every block stays whole.

Cutting head-width position ``j`` from q, k and v (the same position in every head, each head
keeping its temperature) leaves a valid, smaller XCA: the softmax renormalizes over the kept
channels. That is an *approximation* of the dense block (like removing keys in token attention),
not the dense block with the channels zeroed: a zeroed key channel would still score
``exp(0)`` in the softmax. The pruned block computes exactly XCA on the kept channels.

Both forwards size the heads from the *input*: ``reshape(B, N, 3, H, C // H)`` (XCiT; EdgeNeXt
uses ``-1``) and the merge ``reshape(B, N, C)`` with ``C`` read from ``x.shape``. The inner width
must therefore equal the residual width; position ``j`` of q, k, v and of the out-projection's
columns is tied to input channel ``j`` (a coupling, so counts always agree), and the residual
group gets a balanced partition with one chunk per head. ``num_heads`` and ``temperature``
(per head) stay; ``qkv`` and ``proj`` are sliced by the Linear pruner: the block needs none.
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from ..trace import register_leaf
from .op_rules import Info, module_rule
from .walker import GraphWalker

XCIT = "timm.models.xcit.XCA"
EDGENEXT = "timm.models.edgenext.CrossCovarianceAttn"
register_leaf(XCIT, EDGENEXT)


def _width(m: Any) -> int | None:
    """The block's width (residual = inner) if laid out as timm's XCA, else None."""
    qkv, proj, heads = getattr(m, "qkv", None), getattr(m, "proj", None), m.num_heads
    if not isinstance(qkv, nn.Linear) or not isinstance(proj, nn.Linear):
        return None
    c = qkv.in_features
    temp = getattr(m, "temperature", None)
    if qkv.out_features != 3 * c or proj.in_features != c or c % heads:
        return None
    if temp is None or temp.numel() != heads:
        return None
    return c


def xca(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    """An XCA block called on one ``(B, N, C)`` tensor (see module doc)."""
    name, src = str(node.target), node.args[0] if node.args else None
    nd, c = w.ndim(src), _width(m)
    if nd is None or c is None or len(node.args) != 1 or node.kwargs:
        return w.unknown(node)
    heads = int(m.num_heads)
    ins = w.dg.endpoint(f"{name}.qkv", "in", c).atoms
    w.consume(src, ins, nd - 1, f"input of attention `{name}`")
    rows = w.dg.endpoint(f"{name}.qkv", "out", 3 * c).atoms
    for part in range(3):  # q, k, v position j is input channel j (``C // H`` sizes them)
        w.dg.union(ins, rows[part * c : (part + 1) * c])
    w.dg.union(ins, w.dg.endpoint(f"{name}.proj", "in", c).atoms)
    if heads > 1:
        size = c // heads
        w.dg.partitions.append([ins[h * size : (h + 1) * size] for h in range(heads)])
    out = w.dg.endpoint(f"{name}.proj", "out", m.proj.out_features)
    return Info(nd - 1, out.atoms)


module_rule(XCIT, EDGENEXT)(xca)

__all__ = ["xca"]
