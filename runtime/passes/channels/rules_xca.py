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

XCiT sizes its heads from the *input* (``reshape(B, N, 3, H, C // H)``, ``C`` read from
``x.shape``) and both merge the heads with ``reshape(B, N, C)``: the inner width must equal the
input width. In XCiT, position ``j`` of q, k, v and of the out-projection's columns is tied to
input channel ``j`` (a coupling: the counts always agree) and the residual group gets a balanced
partition with one chunk per head. EdgeNeXt's residual is coupled by the chunk pieces of its
res2net-like convs, which its heads cut across (an 88-wide stage: pieces of 30, 30, 28, heads
of 22), so there the inner width is a group of its own (the block's ``norm`` endpoint, one
chunk per head) and the pruner turns the block into
:class:`~runtime.passes.heads.xca.NarrowCrossCovarianceAttn`, which merges heads at its own
width. ``num_heads`` and the per-head ``temperature`` stay; ``qkv`` and ``proj`` are sliced by
the Linear pruner.
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from ..trace import register_leaf, type_name
from .op_rules import Info, module_rule
from .surgery import PRUNERS_BY_NAME
from .walker import GraphWalker

XCIT = "timm.models.xcit.XCA"
EDGENEXT = "timm.models.edgenext.CrossCovarianceAttn"
#: Its narrowed form (`runtime.passes.heads.xca`), by name: that module imports timm.
NARROW = "runtime.passes.heads.xca.NarrowCrossCovarianceAttn"
register_leaf(XCIT, EDGENEXT, NARROW)


def _widths(m: Any) -> tuple[int, int] | None:
    """``(input, inner)`` widths if laid out as timm's XCA (XCiT: equal), else None."""
    qkv, proj, heads = getattr(m, "qkv", None), getattr(m, "proj", None), int(m.num_heads)
    temp = getattr(m, "temperature", None)
    if not isinstance(qkv, nn.Linear) or not isinstance(proj, nn.Linear) or temp is None:
        return None
    c, inner = qkv.in_features, qkv.out_features // 3
    if qkv.out_features != 3 * inner or proj.in_features != inner or inner % heads:
        return None
    if temp.numel() != heads or (type_name(type(m)) == XCIT and inner != c):
        return None
    return c, inner


def xca(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    """An XCA block called on one ``(B, N, C)`` tensor (see module doc)."""
    name, src = str(node.target), node.args[0] if node.args else None
    nd, widths = w.ndim(src), _widths(m)
    if nd is None or widths is None or len(node.args) != 1 or node.kwargs:
        return w.unknown(node)
    (c, a), heads = widths, int(m.num_heads)
    ins = w.dg.endpoint(f"{name}.qkv", "in", c).atoms
    w.consume(src, ins, nd - 1, f"input of attention `{name}`")
    rows = w.dg.endpoint(f"{name}.qkv", "out", 3 * a).atoms
    inner = ins if type_name(type(m)) == XCIT else w.dg.endpoint(name, "norm", a).atoms
    for part in range(3):  # q, k, v position j is one channel (XCiT: input channel j)
        w.dg.union(inner, rows[part * a : (part + 1) * a])
    w.dg.union(inner, w.dg.endpoint(f"{name}.proj", "in", a).atoms)
    if heads > 1:
        size = a // heads
        w.dg.partitions.append([inner[h * size : (h + 1) * size] for h in range(heads)])
    out = w.dg.endpoint(f"{name}.proj", "out", m.proj.out_features)
    return Info(nd - 1, out.atoms)


def prune_xca(m: Any, keeps: dict[str, list[int]]) -> None:
    """EdgeNeXt's block merges its heads at the input's width: narrowed, it merges at its own
    (``qkv`` and ``proj`` are sliced as Linears; ``num_heads`` and ``temperature`` stay)."""
    if "norm" in keeps:
        from ..heads.xca import narrow  # imports timm: only when an EdgeNeXt block is cut

        narrow(m)


module_rule(XCIT, EDGENEXT, NARROW)(xca)
PRUNERS_BY_NAME[EDGENEXT] = prune_xca  # by name: registering must not import timm

__all__ = ["prune_xca", "xca"]
