"""Op rules and pruners for attention blocks, traced whole (leaves), so ``prune P% channels`` on
a ViT prunes the residual width and the per-head width, not only the MLP hidden channels.

An attention block reads the residual stream (``in``: the q/k/v in-features), writes it
(the out-projection's out-features) and has an inner width ``heads x head_dim``. The inner
channels are one group whose producer is the q/k/v projection, pruned *uniformly across heads*
(a partition with one chunk per head: every head keeps the same count, so the heads still split
evenly); the query, key and value rows of one position are the same channel (q.k needs the
same positions of q and k, v feeds the out-projection's columns).

- ``nn.MultiheadAttention`` / :class:`~runtime.passes.heads.mha.PrunableMultiheadAttention`:
  endpoints on the attention module itself (``in``; ``out`` = the inner width) and on its
  ``out_proj`` (a Linear in both); the pruner turns an ``nn.MultiheadAttention`` into the prunable
  module in place (its packed ``in_proj_weight`` ties the inner width to ``embed_dim``) and
  keeps the original attention scale. Self-attention only: another key/value source blocks.
- timm ``Attention``: endpoints on ``qkv`` (its three blocks unioned) and ``proj``, plus the
  attention module (``norm``) so its pruner updates ``head_dim`` / ``attn_dim``. A gate,
  q/k norms or a scale norm block the inner width (they are shared across heads).

These modules return ``(out, weights)`` (MHA): ``getitem(node, 0)`` is taught here, delegating
every other ``getitem`` to the rule registered before.
"""

from __future__ import annotations

import operator
import weakref
from typing import Any

import torch
from torch import fx, nn

from ..heads.mha import PrunableMultiheadAttention
from ..trace import register_leaf
from . import (  # noqa: F401  (registered here; rules_split first: getitem is wrapped)
    rules_coat,
    rules_grouped,
    rules_layers,
    rules_levit,
    rules_split,
    rules_tensor,
    rules_xca,
)
from .op_rules import FUNCTION_RULES, Info, function_rule, module_rule
from .surgery import PRUNERS_BY_NAME, register_pruner, set_tensor, take
from .walker import GraphWalker

#: The tracked output of a tuple-returning attention node, per walker: what ``[0]`` carries.
_TUPLE_OUT: weakref.WeakKeyDictionary[GraphWalker, dict[fx.Node, Info]] = (
    weakref.WeakKeyDictionary()
)
_BASE_GETITEM = FUNCTION_RULES.get(operator.getitem)


def _chunks(atoms: list[int], n: int) -> list[list[int]]:
    size = len(atoms) // n
    return [atoms[k * size : (k + 1) * size] for k in range(n)]


@function_rule(operator.getitem)
def getitem_of_attention(w: GraphWalker, node: fx.Node) -> Info | None:
    src: Any = node.args[0]
    outs = _TUPLE_OUT.get(w, {})
    if src in outs and node.args[1] == 0:
        return outs[src]
    return _BASE_GETITEM(w, node) if _BASE_GETITEM is not None else w.unknown(node)


def _mha_sizes(m: nn.Module) -> tuple[int, int, int, int] | None:
    """``(in, heads, head_dim, out)`` of a self-attention module kdr can narrow, or None."""
    if isinstance(m, nn.MultiheadAttention):
        if not PrunableMultiheadAttention.supports(m) or not m._qkv_same_embed_dim:
            return None
        return m.embed_dim, m.num_heads, m.head_dim, m.out_proj.out_features
    if isinstance(m, PrunableMultiheadAttention):
        q, k, v = m.q_proj, m.k_proj, m.v_proj
        if not q.in_features == k.in_features == v.in_features:
            return None
        return q.in_features, m.num_heads, m.head_dim, m.out_proj.out_features
    return None


@module_rule(nn.MultiheadAttention, PrunableMultiheadAttention)
def mha(w: GraphWalker, node: fx.Node, m: nn.Module) -> Info | None:
    name = str(node.target)
    sizes = _mha_sizes(m)
    args = list(node.args[:3])
    if sizes is None or len(args) < 3 or not (args[0] is args[1] is args[2]):
        return w.unknown(node)  # cross-attention, packed k/v of other sizes, bias_k...
    e_in, heads, head_dim, e_out = sizes
    w.block_inputs(node, f"mask of attention `{name}`", keep=args[0])
    ep_in = w.dg.endpoint(name, "in", e_in)
    nd = w.ndim(args[0])
    w.consume(args[0], ep_in.atoms, None if nd is None else nd - 1, f"input of `{name}`")
    inner = w.dg.endpoint(name, "out", heads * head_dim)
    w.dg.union(inner.atoms, w.dg.endpoint(f"{name}.out_proj", "in", heads * head_dim).atoms)
    if heads > 1:
        w.dg.partitions.append(_chunks(inner.atoms, heads))
    out = w.dg.endpoint(f"{name}.out_proj", "out", e_out)
    if nd is None:
        w.dg.block(out.atoms, f"output of `{name}` not tracked")
        return None
    users_ok = all(
        u.op == "call_function" and u.target is operator.getitem and u.args[1] in (0, 1)
        for u in node.users
    )
    if not users_ok:  # the tuple escapes whole: its width must stay
        w.dg.block(out.atoms, f"the output tuple of `{name}` is used whole")
        return None
    _TUPLE_OUT.setdefault(w, {})[node] = Info(nd - 1, out.atoms)
    return None


@register_pruner(nn.MultiheadAttention, PrunableMultiheadAttention)
def prune_mha(m: nn.Module, keeps: dict[str, list[int]]) -> None:
    """Narrow q/k/v (``out``: inner width, ``in``: residual width); ``out_proj`` is sliced as
    a Linear of its own. The attention scale stays the original head width's."""
    if isinstance(m, nn.MultiheadAttention):
        m = PrunableMultiheadAttention.convert_in_place(m)
    assert isinstance(m, PrunableMultiheadAttention)
    inner, inp = keeps.get("out"), keeps.get("in")
    for lin in (m.q_proj, m.k_proj, m.v_proj):
        if inner is not None:
            set_tensor(lin, "weight", take(lin.weight, inner))
            set_tensor(lin, "bias", take(lin.bias, inner))
        if inp is not None:
            set_tensor(lin, "weight", take(lin.weight, inp, 1))
        lin.out_features, lin.in_features = lin.weight.shape
    if inner is not None:
        m.head_dim = len(inner) // m.num_heads


#: timm's ``Attention`` by type name: registering must not import timm (seconds per process).
TIMM_ATTENTION = "timm.layers.attention.Attention"


def timm_attention(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    name = str(node.target)
    src: Any = node.args[0] if node.args else None
    w.block_inputs(node, f"mask of attention `{name}`", keep=src)
    nd = w.ndim(src)
    last = None if nd is None else nd - 1
    qkv, proj = m.qkv, m.proj
    if not hasattr(m, "attn_dim") or not isinstance(qkv, nn.Linear):
        return w.unknown(node)  # an older timm: its forward reshapes with the input's width
    a, heads = int(m.attn_dim), int(m.num_heads)
    ep_in = w.dg.endpoint(f"{name}.qkv", "in", qkv.in_features)
    w.consume(src, ep_in.atoms, last, f"input of attention `{name}`")
    rows = w.dg.endpoint(f"{name}.qkv", "out", 3 * a).atoms
    inner = rows[:a]
    w.dg.union(inner, rows[a : 2 * a])
    w.dg.union(inner, rows[2 * a :])
    w.dg.union(inner, w.dg.endpoint(f"{name}.proj", "in", a).atoms)
    w.dg.union(inner, w.dg.endpoint(name, "norm", a).atoms)
    shared = [getattr(m, n, None) for n in ("q_norm", "k_norm", "norm")]
    if getattr(m, "gate", None) is not None or any(
        s is not None and not isinstance(s, nn.Identity) for s in shared
    ):
        w.dg.block(inner, f"attention `{name}` has a gate or norms shared across heads")
    elif heads > 1:
        w.dg.partitions.append(_chunks(inner, heads))
    out = w.dg.endpoint(f"{name}.proj", "out", proj.out_features)
    return None if last is None else Info(last, out.atoms)


def prune_timm_attention(m: Any, keeps: dict[str, list[int]]) -> None:
    """``qkv`` and ``proj`` are sliced as Linears; the block's own widths follow here.

    timm's fused path scales by ``head_dim ** -0.5`` of the *new* width: the query rows are
    multiplied by ``scale * sqrt(new_head_dim)`` so that the kept dims score exactly as before
    (and ``scale`` follows, so the unfused path agrees). The query block stays the first third
    of ``qkv`` whether or not it has been sliced yet."""
    keep = keeps.get("norm")
    if keep is None:
        return
    new_d = len(keep) // int(m.num_heads)
    factor = float(m.scale) * new_d**0.5
    rows = m.qkv.weight.shape[0] // 3
    with torch.no_grad():
        m.qkv.weight[:rows].mul_(factor)
        if m.qkv.bias is not None:
            m.qkv.bias[:rows].mul_(factor)
    m.head_dim, m.attn_dim, m.scale = new_d, len(keep), new_d**-0.5


register_leaf(PrunableMultiheadAttention, TIMM_ATTENTION)
module_rule(TIMM_ATTENTION)(timm_attention)
PRUNERS_BY_NAME[TIMM_ATTENTION] = prune_timm_attention

__all__ = ["getitem_of_attention", "mha", "prune_mha", "timm_attention"]
