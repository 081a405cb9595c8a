"""Op rules for splitting and indexing: ``split``, ``chunk``, ``unbind``, ``stack``, ``getitem``.

A tuple-valued op records the channels of each piece in ``walker.pieces``; ``getitem`` hands
them out (any other use of the tuple blocks them). Along a dim that is not the channel dim
every piece keeps all the channels. Along the channel dim:

- ``chunk(n)`` gives each piece its slice of atoms and a *partition* (equal keep per piece), so
  the pruned tensor still chunks into the same pieces;
- ``split`` sizes and channel slices ``x[:, :k]`` are constants of the model's code: pruning the
  tensor would shift every piece, so its channels are blocked (the pieces still carry their
  atoms, so what is computed from them stays coupled). A slice that keeps everything
  (``x[:, :k]`` with ``k`` at least the channel count, GhostNet's) stays whole after pruning;
- except a split into equal pieces by an attribute of the module running it, for a family in
  :data:`.attr_dims.ATTR_SPLITS` (res2net, CSPNet, MixNet): its pieces are coupled position
  by position (so each keeps the same count, whatever groups they feed) and the attribute is
  rewritten after surgery; likewise a slice ``x[:, :k]`` / ``x[:, k:]`` at such an attribute
  (:data:`.attr_dims.ATTR_SLICES`, ReXNet; DPN, whose prefix count the record carries).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx

from ..trace import type_name
from .attr_dims import backed_slice, backed_split, slice_count
from .op_rules import Info, arg, function_rule, method_rule
from .walker import GraphWalker

#: Families whose ``chunk`` pieces are added to one another, except the last (EdgeNeXt's
#: res2net-like ``sp = conv(sp + spx[i])``): the pieces already share positions but the last
#: one, so they land in different groups and an equal-keep partition over them would block.
#: Their pieces are coupled position by position instead: still an equal keep per piece.
ALIGNED_CHUNKS = frozenset({"timm.models.edgenext.SplitTransposeBlock"})


def _dim(node: fx.Node, pos: int, nd: int) -> int:
    return int(arg(node, pos, "dim", 0)) % nd


def _piece_sizes(length: int, split: Any) -> list[int] | None:
    if isinstance(split, int) and split > 0:
        return [min(split, length - k) for k in range(0, length, split)]
    if isinstance(split, (list, tuple)) and all(isinstance(s, int) for s in split):
        return [int(s) for s in split]
    return None


def pieces_along(
    w: GraphWalker, node: fx.Node, i: Info, d: int, sizes: list[int], why: str | None
) -> None:
    """Record the pieces of a split of ``i`` along ``d``; ``why``: the channels must stay."""
    if d != i.dim:
        w.pieces[node] = [Info(i.dim, i.atoms) for _ in sizes]
        return
    if why is not None:
        w.dg.block(i.atoms, why)
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    w.pieces[node] = [Info(d, i.atoms[s : s + n]) for s, n in zip(starts, sizes, strict=True)]


@method_rule("split")
@function_rule(torch.split)
def split(w: GraphWalker, node: fx.Node) -> Info | None:
    src: Any = node.args[0]
    i, shape = w.get(src), w.shapes.get(src)
    if i is None or shape is None:
        return None
    d = _dim(node, 2, len(shape))
    by = arg(node, 1, "split_size_or_sections")
    sizes = _piece_sizes(int(shape[d]), by)
    if sizes is None:
        return w.unknown(node)
    owner = w.modules.get(str(node.meta.get("kdr_module")))
    if d == i.dim and backed_split(owner, by, sizes):  # the family's fixup rewrites `by`
        pieces_along(w, node, i, d, sizes, None)
        # Piece j's channel k is pruned with every piece's channel k: equal keep per piece
        # even when the pieces feed layers of different groups (a partition would span them).
        first, *rest = [p.atoms for p in w.pieces[node] if p is not None]
        for atoms in rest:
            w.dg.union(first, atoms)
        return None
    pieces_along(w, node, i, d, sizes, f"`{node.name}` splits channels at constant sizes")
    return None


@method_rule("chunk")
@function_rule(torch.chunk)
def chunk(w: GraphWalker, node: fx.Node) -> Info | None:
    src: Any = node.args[0]
    i, shape, n = w.get(src), w.shapes.get(src), arg(node, 1, "chunks")
    if i is None or shape is None:
        return None
    d = _dim(node, 2, len(shape))
    if not isinstance(n, int) or n < 1:
        return w.unknown(node)
    length = int(shape[d])
    owner = w.modules.get(str(node.meta.get("kdr_module")))
    aligned = owner is not None and type_name(type(owner)) in ALIGNED_CHUNKS
    if d == i.dim and length % n and not aligned:
        return w.unknown(node)  # uneven chunks: their sizes would not follow the pruning
    sizes = _piece_sizes(length, -(-length // n))
    assert sizes is not None
    if d == i.dim and len(sizes) != n:
        return w.unknown(node)  # fewer pieces than asked (4 channels in 3): not kept by pruning
    pieces_along(w, node, i, d, sizes, None)
    if d == i.dim and n > 1:
        pieces = [p.atoms for p in w.pieces[node] if p is not None]
        if aligned:
            align_pieces(w, pieces)
        else:
            w.dg.partitions.append(pieces)
    return None


def align_pieces(w: GraphWalker, pieces: list[list[int]]) -> None:
    """Couple chunk pieces position by position, so the pruned tensor chunks into the pruned
    pieces. With uneven pieces (``s`` channels each, the last ``r < s``) the positions from
    ``r - 1`` on all join the last piece's last channel: every piece then keeps ``c`` and the
    last ``c'`` with ``c - c'`` either 0 or ``s - r`` (below the chunk count, as for any
    ``chunk``), which is exactly how ``chunk`` splits ``(n - 1) c + c'`` channels; and the last
    piece keeps a channel whenever any piece does."""
    last = pieces[-1]
    for atoms in pieces[:-1]:
        w.dg.union(last, atoms[: len(last)])
        w.dg.union([last[-1]] * (len(atoms) - len(last)), atoms[len(last) :])


@method_rule("unbind")
@function_rule(torch.unbind)
def unbind(w: GraphWalker, node: fx.Node) -> Info | None:
    src: Any = node.args[0]
    i, shape = w.get(src), w.shapes.get(src)
    if i is None or shape is None:
        return None
    d = _dim(node, 1, len(shape))
    if d == i.dim:
        return w.unknown(node)
    w.pieces[node] = [Info(i.dim - (d < i.dim), i.atoms) for _ in range(int(shape[d]))]
    return None


@function_rule(torch.stack)
def stack(w: GraphWalker, node: fx.Node) -> Info | None:
    """Stacking tensors couples their channels; the new dim shifts the channel dim."""
    tensors, nd = arg(node, 0, "tensors"), w.ndim(node)
    if not isinstance(tensors, (list, tuple)) or nd is None:
        return w.unknown(node)
    infos = [w.get(t) for t in tensors]
    if all(i is None for i in infos):
        return None
    known = [i for i in infos if i is not None]
    if len(known) != len(infos) or len({(i.dim, len(i.atoms)) for i in known}) != 1:
        return w.unknown(node)
    for i in known[1:]:
        w.dg.union(known[0].atoms, i.atoms)
    d = _dim(node, 1, nd)
    return Info(known[0].dim + (d <= known[0].dim), known[0].atoms)


@function_rule(operator.getitem)
def getitem(w: GraphWalker, node: fx.Node) -> Info | None:
    """A size read, a piece of a split, or an index into a tensor."""
    src: Any = node.args[0]
    index: Any = node.args[1]
    if src in w.size_of:
        return w.size_item(node, src, index)
    if src in w.pieces:
        if isinstance(index, int) and -len(w.pieces[src]) <= index < len(w.pieces[src]):
            return w.pieces[src][index]
        return w.unknown(node)
    i = w.get(src)
    return None if i is None else tensor_index(w, node, i, index)


def _full(s: slice, size: int) -> bool:
    """A slice that keeps every entry, now and after the dim shrinks."""
    start_ok = s.start is None or s.start == 0
    stop_ok = s.stop is None or (isinstance(s.stop, int) and s.stop >= size)
    return start_ok and stop_ok and s.step in (None, 1)


def _count_prefix(w: GraphWalker, node: fx.Node, i: Info) -> None:
    """A family counting its slice prefix by the record: the module's ``in`` endpoint holds
    the prefix's atoms, so surgery learns how many of them were kept (DPN's ``num_1x1_c``)."""
    path = str(node.meta.get("kdr_module"))
    counted = slice_count(w.modules.get(path))
    if counted is not None:
        w.dg.union(w.dg.endpoint(path, "in", counted[1]).atoms, i.atoms[: counted[1]])


def tensor_index(w: GraphWalker, node: fx.Node, i: Info, index: Any) -> Info | None:
    """``x[:, :k]``, ``x[..., 0]``, ``x[:, None]``: where the channel dim goes."""
    nd = w.ndim(node.args[0])
    entries = list(index) if isinstance(index, tuple) else [index]
    if nd is None or any(not isinstance(e, (int, slice, type(None), type(...))) for e in entries):
        return w.unknown(node)  # tensor indices, lists: not understood
    consuming = sum(isinstance(e, (int, slice)) for e in entries)
    if entries.count(...) > 1 or consuming > nd:
        return w.unknown(node)
    if ... in entries:
        k = entries.index(...)
        entries[k : k + 1] = [slice(None)] * (nd - consuming)
    in_dim = out_dim = 0
    for e in entries:
        if e is None:
            out_dim += 1
            continue
        if in_dim == i.dim:
            if isinstance(e, slice) and _full(e, len(i.atoms)):
                return Info(out_dim, i.atoms)
            owner = w.modules.get(str(node.meta.get("kdr_module")))
            if isinstance(e, slice) and backed_slice(owner, e, len(i.atoms)):
                _count_prefix(w, node, i)
                return Info(out_dim, i.atoms[e])  # the family's fixup rewrites the bound
            w.dg.block(i.atoms, f"`{node.name}` slices channels at constant positions")
            plain = isinstance(e, slice) and all(
                v is None or isinstance(v, int) for v in (e.start, e.stop, e.step)
            )
            return Info(out_dim, i.atoms[e]) if plain else None  # computed bounds: untracked
        in_dim += 1
        out_dim += isinstance(e, slice)
    return Info(out_dim + i.dim - in_dim, i.atoms)


__all__ = [
    "align_pieces",
    "chunk",
    "getitem",
    "pieces_along",
    "split",
    "stack",
    "tensor_index",
    "unbind",
]
