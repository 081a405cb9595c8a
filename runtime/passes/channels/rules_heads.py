"""Op rules for attention written out in tensor ops: heads split and merged, ``matmul``, softmax.

Swin's ``WindowAttention`` (and CoaT, CaiT, XCiT...) splits its q/k/v projection into heads with
``qkv.reshape(B, N, 3, heads, -1)``, multiplies ``q @ k.transpose(-2, -1)``, takes a softmax,
multiplies by ``v`` and merges the heads back with ``x.transpose(1, 2).reshape(B, N, -1)``.

- **Split** (:func:`split_heads`): a reshape that cuts the tracked dim of size ``G * d`` into
  ``(G..., d)``, the ``G`` sizes constants and ``d`` given as ``-1``. Position ``j`` of every
  chunk is coupled (the same index goes from every head, and from q, k and v): strong, but the
  ``-1`` then still divides the pruned width evenly, and the producer's rows go per chunk. The
  output tracks ``d`` with chunk 0's atoms. A constant ``d`` (``reshape(B, N, -1, 64)``) would go
  stale: not a split here (blocked), unless it is a head-width attribute that surgery keeps
  true (``attr_dims.ATTR_HEAD_DIMS``, PVT-v2's ``self.head_dim``). ``d`` may also be a
  channel count read in Python (``reshape(B, N, 3, heads, C // heads)``, CaiT/XCiT/CoaT): the
  walker ties it (:meth:`.walker.GraphWalker.tie`), coupling ``C``'s tensor chunk by chunk
  with the head.
- **Merge** (:func:`merge_heads`): a reshape that folds untracked leading dims (the heads) into
  the tracked one at a ``-1`` (or a tied ``C``): the atoms repeat once per head, in outer
  order (``flatten`` already does this in :mod:`.rules_tensor`). Untracked dims never change
  size when pruning.
- **matmul** / ``@`` / ``bmm``: the contracted dims of both operands are coupled (q and k) and
  leave the output; a tracked free dim (v's last) carries to the output. An operand tracked
  on a batch dim (CaiT's heads mixed by a Linear) is blocked alone. A contracted dim
  tracked on one side only is blocked (the other side could not shrink).
- ``F.scaled_dot_product_attention(q, k, v)``: q and k coupled along their last dim, the output
  carries v's. With ``scale=None`` torch scales by the *pruned* head width's ``d ** -0.5``.
- ``softmax`` over a dim that is not the tracked one passes the channels through.

>>> import torch
>>> from torch import nn
>>> from runtime.passes.channels.build import build
>>> class Heads(nn.Module):
...     def __init__(self) -> None:
...         super().__init__()
...         self.qkv, self.proj = nn.Linear(8, 24), nn.Linear(8, 8)
...     def forward(self, x):
...         q, k, v = self.qkv(x).reshape(2, 5, 3, 2, -1).permute(2, 0, 3, 1, 4).unbind(0)
...         a = (q @ k.transpose(-2, -1)).softmax(-1)
...         return self.proj((a @ v).transpose(1, 2).reshape(2, 5, -1))
>>> dg = build(Heads(), torch.randn(2, 5, 8))
>>> [(g.producers, g.size) for g in dg.prunable_groups()]
[(['qkv'], 4)]
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from .attr_dims import backed_head_dim
from .op_rules import Info, arg, function_rule, method_rule
from .walker import GraphWalker


def _prod(xs: Any) -> int:
    return int(math.prod(int(x) for x in xs))


def _minus_one(shape_args: list[Any]) -> int | None:
    """Position of the single ``-1`` of a reshape's sizes, or None."""
    at = [k for k, s in enumerate(shape_args) if isinstance(s, int) and s == -1]
    return at[0] if len(at) == 1 else None


def _sized_at(w: GraphWalker, shape_args: list[Any], owner: nn.Module | None) -> list[int]:
    """Where a reshape's sizes may say how wide the (last) channel piece is, to try in order:
    its one ``-1`` (ties nothing), a head-width attribute of the module reshaping
    (``attr_dims.ATTR_HEAD_DIMS``) as the last size, its channel-count symbols
    (``C // heads``)."""
    minus = _minus_one(shape_args)
    at = [] if minus is None else [minus]
    if shape_args and backed_head_dim(owner, shape_args[-1]):
        at.append(len(shape_args) - 1)
    return at + [k for k, s in enumerate(shape_args) if w.sym(s) is not None]


def _first_fit(
    w: GraphWalker,
    shape_args: list[Any] | None,
    sout: Any,
    owner: nn.Module | None,
    fit: Callable[[list[Any], int], Info | None],
) -> Info | None:
    """The first of the sizings :func:`_sized_at` offers that ``fit`` accepts, or None."""
    if shape_args is None or len(shape_args) != len(sout):
        return None
    for k in _sized_at(w, shape_args, owner):
        out = fit(shape_args, k)
        if out is not None:
            return out
    return None


def split_heads(
    w: GraphWalker,
    i: Info,
    sin: Any,
    sout: Any,
    shape_args: list[Any] | None,
    owner: nn.Module | None = None,
) -> Info | None:
    """The tracked dim cut into constant ``(G...)`` pieces and a last piece sized by ``-1``, a
    tied symbol or a head-width attribute: chunks coupled position by position, chunk 0's
    atoms tracked at the last piece. None: not a split."""
    return _first_fit(
        w, shape_args, sout, owner, lambda args, k: _split_at(w, i, sin, sout, args, k)
    )


def _split_at(
    w: GraphWalker, i: Info, sin: Any, sout: Any, shape_args: list[Any], last: int
) -> Info | None:
    size, pre = len(i.atoms), _prod(sin[: i.dim])
    if int(sout[last]) < 1:
        return None
    for first in range(last - 1, -1, -1):
        if not isinstance(shape_args[first], int) or isinstance(shape_args[first], bool):
            return None  # a computed head count: it might be read from the channel count
        if _prod(sout[:first]) != pre or _prod(sout[first : last + 1]) != size:
            continue
        n = _prod(sout[first:last])
        d = size // n
        head = i.atoms[:d]
        if w.sym(shape_args[last]) is not None and not w.tie(shape_args[last], head):
            return None
        for g in range(1, n):
            w.dg.union(head, i.atoms[g * d : (g + 1) * d])
        return Info(last, head)
    return None


def merge_heads(
    w: GraphWalker, i: Info, sin: Any, sout: Any, shape_args: list[Any] | None
) -> Info | None:
    """Untracked leading dims (heads) folded with the tracked dim (and dims after it) into
    one dim sized by ``-1`` or a tied symbol: the atoms repeat per head. None: not a merge."""
    return _first_fit(
        w, shape_args, sout, None, lambda args, k: _merge_at(w, i, sin, sout, args, k)
    )


def _merge_at(
    w: GraphWalker, i: Info, sin: Any, sout: Any, shape_args: list[Any], j: int
) -> Info | None:
    d, size = i.dim, len(i.atoms)
    for start in range(d):
        if _prod(sout[:j]) != _prod(sin[:start]):
            continue
        outer = _prod(sin[start:d])
        for end in range(d + 1, len(sin) + 1):
            inner = _prod(sin[d + 1 : end])
            if int(sout[j]) == outer * size * inner:
                out = [a for _ in range(outer) for a in i.atoms for _ in range(inner)]
                if w.sym(shape_args[j]) is not None and not w.tie(shape_args[j], out):
                    return None
                return Info(j, out)
    return None


def split_or_merge(
    w: GraphWalker,
    i: Info,
    sin: Any,
    sout: Any,
    shape_args: list[Any] | None,
    owner: nn.Module | None = None,
) -> Info | None:
    """For :func:`.rules_reshape.reshape`, when the channel dim is neither kept nor merged with
    the dims right after it; ``owner``: the module whose forward reshapes."""
    return split_heads(w, i, sin, sout, shape_args, owner) or merge_heads(
        w, i, sin, sout, shape_args
    )


# -- matmul -------------------------------------------------------------------------------------
@function_rule(operator.matmul, torch.matmul, torch.bmm)
def matmul_function(w: GraphWalker, node: fx.Node) -> Info | None:
    return matmul(w, node, arg(node, 0, "input"), arg(node, 1, "other", arg(node, 1, "mat2")))


@method_rule("matmul", "bmm")
def matmul_method(w: GraphWalker, node: fx.Node) -> Info | None:
    args: Any = node.args
    other = args[1] if len(args) > 1 else node.kwargs.get("other", node.kwargs.get("mat2"))
    return matmul(w, node, args[0], other)


def matmul(w: GraphWalker, node: fx.Node, a: Any, b: Any) -> Info | None:
    """``a @ b`` on matrices (batched): ``a``'s last dim meets ``b``'s second-last."""
    ia, ib, na, nb, nout = w.get(a), w.get(b), w.ndim(a), w.ndim(b), w.ndim(node)
    if ia is None and ib is None:
        return None
    if na is None or nb is None or nout is None or na < 2 or nb < 2:
        return w.unknown(node)
    a_role = None if ia is None else {na - 1: "contract", na - 2: "free"}.get(ia.dim)
    b_role = None if ib is None else {nb - 2: "contract", nb - 1: "free"}.get(ib.dim)
    why = f"`{node.name}` batches over a tracked dim (heads mixed before the matmul)"
    if ia is not None and a_role is None:  # talking heads: the other operand's heads are fixed
        w.dg.block(ia.atoms, why)
        ia = None
    if ib is not None and b_role is None:
        w.dg.block(ib.atoms, why)
        ib = None
    if ia is None and ib is None:
        return None
    if a_role == "contract" or b_role == "contract":
        if not (ia is not None and ib is not None and a_role == b_role == "contract"):
            return w.unknown(node)  # one side of the contraction could not shrink
        if len(ia.atoms) != len(ib.atoms):
            return w.unknown(node)
        w.dg.union(ia.atoms, ib.atoms)
        return None
    if ia is not None and ib is not None:
        return w.unknown(node)  # two tracked free dims: one output cannot carry both
    if ia is not None:
        return Info(nout - 2, ia.atoms)
    assert ib is not None
    return Info(nout - 1, ib.atoms)


@function_rule(F.scaled_dot_product_attention)
def sdpa(w: GraphWalker, node: fx.Node) -> Info | None:
    """q and k coupled along their last dim (contracted), the output carries v's last dim.

    A mask is untracked (it has no head-width axis); anything else tracked blocks."""
    q, k, v = arg(node, 0, "query"), arg(node, 1, "key"), arg(node, 2, "value")
    iq, ik, iv = w.get(q), w.get(k), w.get(v)
    nq, nk, nv, nout = w.ndim(q), w.ndim(k), w.ndim(v), w.ndim(node)
    ok = nq is not None and nk is not None and nv is not None and nout is not None
    qk_ok = (iq is None and ik is None) or (
        iq is not None
        and ik is not None
        and iq.dim == (nq or 0) - 1
        and ik.dim == (nk or 0) - 1
        and len(iq.atoms) == len(ik.atoms)
    )
    v_ok = iv is None or iv.dim == (nv or 0) - 1
    if not ok or not qk_ok or not v_ok:
        return w.unknown(node)
    for inp in node.all_input_nodes:  # a mask with a tracked axis could not shrink with it
        other = w.get(inp)
        if inp not in (q, k, v) and other is not None:
            w.dg.block(other.atoms, f"extra input of `{node.name}`")
    if iq is not None and ik is not None:
        w.dg.union(iq.atoms, ik.atoms)
    return None if iv is None else Info((nout or 0) - 1, iv.atoms)


@method_rule("softmax", "log_softmax")
@function_rule(F.softmax, F.log_softmax, torch.softmax, torch.log_softmax)
def softmax(w: GraphWalker, node: fx.Node) -> Info | None:
    """Normalises along ``dim``: channels elsewhere pass; along the tracked dim, blocked."""
    src: Any = node.args[0]
    i, nd, dim = w.get(src), w.ndim(src), arg(node, 1, "dim")
    if i is None:
        return None
    if nd is None or not isinstance(dim, int) or dim % nd == i.dim or w.ndim(node) != nd:
        return w.unknown(node)
    return Info(i.dim, i.atoms)


__all__ = ["matmul", "merge_heads", "sdpa", "softmax", "split_heads", "split_or_merge"]
