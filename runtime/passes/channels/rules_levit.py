"""Op rules and a pruner for timm's LeViT attention blocks, traced whole (leaves).

LeViT's ``Attention`` projects tokens with one ``LinearNorm`` (a Linear, or a 1x1 conv in the
``levit_conv`` variants, then a BatchNorm) whose rows are laid out head by head as
``[q (key_dim), k (key_dim), v (val_dim)]``; its forward splits them with
``view(B, N, num_heads, -1).split([key_dim, key_dim, val_dim], dim=3)`` and merges the values
back with ``reshape(B, N, self.val_attn_dim)``. ``AttentionDownsample`` does the same with a
``kv`` projection laid out ``[k, v]`` per head and a separate query projection (after a token
subsample) laid out ``[q]`` per head. Traced op by op, the attribute-sized split and merge are
constants that would go stale; as a leaf, the block is understood here as a whole:

- the residual width: the projections' inputs (coupled with the tensor read) and the output
  projection's outputs (with its BatchNorm);
- the per-head key dims: query dim ``j`` and key dim ``j`` of a head are one channel (``q @ k``
  sums over matching positions), and dim ``j`` of every head is one channel, so all heads keep
  the same positions and the ``split`` sizes stay equal across heads;
- the per-head value dims: value dim ``j`` of every head is one channel, coupled with the
  columns of the output projection that read it (after ``(attn @ v)`` merges heads).

The key dims and the value dims are both rows of the same projection; left in one group they
compete, and a local ranking may cut every key dim of a block (its attention would then be the
position biases alone). So the block itself is the ``out`` endpoint of its key dims (a second
producer: keys and values form two groups, each cut at the asked ratio) and the ``norm``
endpoint of its value dims; its pruner rewrites ``key_dim``, ``val_dim``, ``key_attn_dim`` and
``val_attn_dim`` from their kept counts. ``scale`` keeps the original ``key_dim ** -0.5``, so
the kept dims score exactly as in the dense model with the pruned ones zeroed. The attention
biases are per head and heads are never removed. Rules and leaves are keyed by type name; the
pruner, keyed by class, is registered only when timm imports.
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from ..trace import register_leaf
from .op_rules import Info, module_rule
from .surgery import PRUNERS_BY_NAME
from .walker import GraphWalker

ATTENTION = "timm.models.levit.Attention"
DOWNSAMPLE = "timm.models.levit.AttentionDownsample"
register_leaf(ATTENTION, DOWNSAMPLE)


def _norm_layer(w: GraphWalker, path: str, m: Any) -> tuple[list[int], list[int]] | None:
    """``(in, out)`` atoms of a LeViT ``LinearNorm`` / ``ConvNorm`` (its BatchNorm coupled with
    the outputs), or None when it is not a plain Linear / ungrouped 1x1 conv and a BatchNorm."""
    lin, bn = getattr(m, "linear", None), getattr(m, "bn", None)
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
        return None
    if isinstance(lin, nn.Linear):
        n_in, n_out = lin.in_features, lin.out_features
    elif isinstance(lin, nn.Conv2d) and lin.groups == 1 and lin.kernel_size == (1, 1):
        n_in, n_out = lin.in_channels, lin.out_channels
    else:
        return None
    ep_in = w.dg.endpoint(f"{path}.linear", "in", n_in)
    ep_out = w.dg.endpoint(f"{path}.linear", "out", n_out)
    w.dg.union(ep_out.atoms, w.dg.endpoint(f"{path}.bn", "norm", n_out).atoms)
    return ep_in.atoms, ep_out.atoms


def _per_head(atoms: list[int], heads: int, pieces: list[int]) -> list[list[list[int]]]:
    """``atoms`` laid out head by head as consecutive ``pieces``: ``[head][piece] -> atoms``."""
    width = sum(pieces)
    out = []
    for h in range(heads):
        row, start = [], h * width
        for p in pieces:
            row.append(atoms[start : start + p])
            start += p
        out.append(row)
    return out


def _tie(w: GraphWalker, chunks: list[list[int]]) -> None:
    """Every chunk is the same channels as the first (position by position)."""
    for c in chunks[1:]:
        w.dg.union(chunks[0], c)


def _layouts(
    w: GraphWalker, name: str, m: Any
) -> tuple[list[int], list[int], list[list[int]]] | None:
    """Head 0's key atoms and value atoms (every head and q/k tied to them), and the atoms of
    every input-reading projection's inputs; None if the block is not laid out as expected."""
    heads, kd, vd = int(m.num_heads), int(m.key_dim), int(m.val_dim)
    if hasattr(m, "qkv"):
        qkv = _norm_layer(w, f"{name}.qkv", m.qkv)
        if qkv is None or len(qkv[1]) != heads * (2 * kd + vd):
            return None
        parts = _per_head(qkv[1], heads, [kd, kd, vd])
        keys = [p[0] for p in parts] + [p[1] for p in parts]
        values, ins = [p[2] for p in parts], [qkv[0]]
    else:
        kv, q = _norm_layer(w, f"{name}.kv", m.kv), _norm_layer(w, f"{name}.q.ln", m.q.ln)
        if kv is None or q is None or len(kv[1]) != heads * (kd + vd) or len(q[1]) != heads * kd:
            return None
        parts = _per_head(kv[1], heads, [kd, vd])
        keys = [p[0] for p in parts] + [q[1][h * kd : (h + 1) * kd] for h in range(heads)]
        values, ins = [p[1] for p in parts], [kv[0], q[0]]
    _tie(w, keys)
    _tie(w, values)
    return keys[0], values[0], ins


def _unknown(w: GraphWalker, node: fx.Node, name: str) -> None:
    """Not understood: its inputs and the layers whose endpoints were already made keep
    their widths."""
    why = f"attention `{name}` is not laid out as timm's LeViT"
    for ep in w.dg.endpoints.values():
        if ep.target.startswith(f"{name}."):
            w.dg.block(ep.atoms, why)
    w.unknown(node)


def levit_attention(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    """A LeViT ``Attention`` / ``AttentionDownsample`` called on one tensor (see module doc)."""
    name, src = str(node.target), node.args[0] if node.args else None
    nd = w.ndim(src)
    if nd is None or len(node.args) != 1 or node.kwargs:
        return w.unknown(node)
    found = _layouts(w, name, m)
    proj = _norm_layer(w, f"{name}.proj.ln", getattr(m.proj, "ln", None))
    if found is None or proj is None or len(proj[0]) != int(m.num_heads) * int(m.val_dim):
        _unknown(w, node, name)  # another timm layout: every channel it touches stays
        return None
    keys, values, ins = found
    dim = 1 if m.use_conv else nd - 1
    for atoms in ins:
        w.consume(src, atoms, dim, f"input of attention `{name}`")
    columns = _per_head(proj[0], int(m.num_heads), [int(m.val_dim)])  # (attn @ v), heads merged
    _tie(w, [values] + [c[0] for c in columns])
    w.dg.union(keys, w.dg.endpoint(name, "out", len(keys)).atoms)
    w.dg.union(values, w.dg.endpoint(name, "norm", len(values)).atoms)
    return Info(dim, proj[1])


def prune_levit_attention(m: Any, keeps: dict[str, list[int]]) -> None:
    """The block's head widths from the kept key (``out``) and value (``norm``) positions of
    head 0 (see module doc); its layers are sliced by their own pruners."""
    heads = int(m.num_heads)
    if "out" in keeps:
        m.key_dim = len(keeps["out"])
        m.key_attn_dim = m.key_dim * heads
    if "norm" in keeps:
        m.val_dim = len(keeps["norm"])
        m.val_attn_dim = m.val_dim * heads


module_rule(ATTENTION, DOWNSAMPLE)(levit_attention)


PRUNERS_BY_NAME[ATTENTION] = PRUNERS_BY_NAME[DOWNSAMPLE] = prune_levit_attention

__all__ = ["levit_attention", "prune_levit_attention"]
