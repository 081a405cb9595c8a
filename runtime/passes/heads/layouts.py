"""Where the heads of each attention module live: one small registered layout per module kind.

A :class:`Layout` lists the *parts* of an attention module that carry its heads: a tensor, the
dim its heads run along, and the positions of every head along it (a head's query, key and
value rows, its columns of the output projection, a gate's rows, a scale-norm's entries...).
Pruning takes the kept heads' positions out of every part and then updates the module's own
counts (``num_heads``, ``attn_dim``, ``all_head_size``...) through ``finish``. Scoring reads the
``scored`` parts only: a head's importance is the norm of its q/k/v and output weights.

A *unit* is what is removed whole: a head, or for grouped-query attention (Llama) a key/value
head together with the query heads that share it.

Layouts are found by :func:`layout_for`, which tries each builder of :data:`LAYOUTS` in turn;
``nn.MultiheadAttention`` (packed ``in_proj_weight``) is first converted to
:class:`.mha.PrunableMultiheadAttention` (:func:`prunable`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .mha import PrunableMultiheadAttention


@dataclass
class Part:
    """Heads along ``dim`` of ``owner.<name>``: ``blocks[u]`` are unit ``u``'s positions."""

    owner: nn.Module
    name: str
    dim: int
    blocks: list[list[int]]
    scored: bool = True


@dataclass
class Layout:
    units: int
    parts: list[Part]
    #: Updates the module's counts once its parts hold ``kept`` units only.
    finish: Callable[[int], None] = lambda kept: None
    #: Modules whose ``in``/``out`` sizes follow their sliced weights.
    layers: list[nn.Module] = field(default_factory=list)


#: ``(root, path, module) -> Layout | None``: None when the module is not of this kind.
Builder = Callable[[nn.Module, str, nn.Module], "Layout | None"]
LAYOUTS: list[Builder] = []


def layout(fn: Builder) -> Builder:
    LAYOUTS.append(fn)
    return fn


def blocks(units: int, width: int, offsets: tuple[int, ...] = (0,)) -> list[list[int]]:
    """Positions of ``units`` blocks of ``width``, repeated at each offset (fused q/k/v)."""
    return [[o + u * width + i for o in offsets for i in range(width)] for u in range(units)]


def linear_parts(
    layer: nn.Linear, dim: int, positions: list[list[int]], scored: bool = True
) -> list[Part]:
    """The weight (and bias, for output rows) of ``layer`` along ``dim`` (0: out, 1: in)."""
    parts = [Part(layer, "weight", dim, positions, scored)]
    if dim == 0 and layer.bias is not None:
        parts.append(Part(layer, "bias", 0, positions, False))
    return parts


def prunable(parent: nn.Module, name: str, m: nn.Module) -> nn.Module:
    """``m``, or its head-prunable stand-in installed in ``parent`` (``nn.MultiheadAttention``)."""
    if (
        isinstance(m, nn.MultiheadAttention)
        and m.num_heads > 1  # a converted module is always pruned, so always in the record
        and PrunableMultiheadAttention.supports(m)
    ):
        new = PrunableMultiheadAttention.from_mha(m)
        setattr(parent, name, new)
        return new
    return m


def layout_for(root: nn.Module, path: str, m: nn.Module) -> Layout | None:
    return next((lay for b in LAYOUTS if (lay := b(root, path, m)) is not None), None)


@layout
def mha_layout(root: nn.Module, path: str, m: nn.Module) -> Layout | None:
    if not isinstance(m, PrunableMultiheadAttention):
        return None
    h, d = m.num_heads, m.head_dim
    rows = blocks(h, d)
    parts = [p for lin in (m.q_proj, m.k_proj, m.v_proj) for p in linear_parts(lin, 0, rows)]
    parts += linear_parts(m.out_proj, 1, rows)

    def finish(kept: int) -> None:
        m.num_heads = kept

    return Layout(h, parts, finish, [m.q_proj, m.k_proj, m.v_proj, m.out_proj])


def _timm_attention() -> type[nn.Module] | None:
    try:
        from timm.layers import Attention
    except ImportError:  # timm is optional
        return None
    return Attention


@layout
def timm_layout(root: nn.Module, path: str, module: nn.Module) -> Layout | None:
    """timm's ``Attention`` (ViT, DeiT...): one fused ``qkv`` laid out ``[3, heads, head_dim]``.

    Its forward reshapes with ``self.num_heads`` and ``self.attn_dim``, not the input's width,
    so updating both is enough for the pruned module to run."""
    cls = _timm_attention()
    if cls is None or type(module) is not cls:
        return None
    m: Any = module
    h, d = int(m.num_heads), int(m.head_dim)
    a = h * d
    qkv, proj = m.qkv, m.proj
    if not (isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear)):
        return None
    rows = blocks(h, d)
    parts = linear_parts(qkv, 0, blocks(h, d, (0, a, 2 * a)))
    layers: list[nn.Module] = [qkv, proj]
    gate = getattr(m, "gate", None)
    if isinstance(gate, nn.Linear):
        parts += linear_parts(gate, 0, rows, scored=False)
        layers.append(gate)
    norm = getattr(m, "norm", None)
    if isinstance(norm, nn.LayerNorm) and norm.elementwise_affine:
        parts += [
            Part(norm, n, 0, rows, False)
            for n in ("weight", "bias")
            if getattr(norm, n) is not None
        ]
        layers.append(norm)
    parts += linear_parts(proj, 1, rows)

    def finish(kept: int) -> None:
        m.num_heads = kept
        if hasattr(m, "attn_dim"):
            m.attn_dim = kept * d

    return Layout(h, parts, finish, layers)


def _timm_window_attention() -> type[nn.Module] | None:
    try:
        from timm.models.swin_transformer import WindowAttention
    except ImportError:  # timm is optional
        return None
    return WindowAttention


@layout
def swin_layout(root: nn.Module, path: str, module: nn.Module) -> Layout | None:
    """timm's Swin ``WindowAttention``: fused ``qkv`` as in ViT, plus a relative position bias
    table with one column per head (sliced with the head). Its forward reshapes with
    ``self.num_heads`` and ``-1``, so the head count is all to update."""
    cls = _timm_window_attention()
    if cls is None or type(module) is not cls:
        return None
    m: Any = module
    h = int(m.num_heads)
    qkv, proj, table = m.qkv, m.proj, m.relative_position_bias_table
    if not isinstance(qkv, nn.Linear) or qkv.out_features % (3 * h):
        return None
    d = qkv.out_features // (3 * h)
    a = h * d
    parts = linear_parts(qkv, 0, blocks(h, d, (0, a, 2 * a)))
    parts += linear_parts(proj, 1, blocks(h, d))
    parts.append(Part(m, "relative_position_bias_table", 1, blocks(h, 1), False))

    def finish(kept: int) -> None:
        m.num_heads = kept

    assert table.shape[1] == h
    return Layout(h, parts, finish, [qkv, proj])


def _output_dense(root: nn.Module, path: str, width: int) -> nn.Linear | None:
    """The output projection of a Hugging Face self-attention: its parent's ``output.dense``."""
    parent_path = path.rpartition(".")[0]
    parent = root.get_submodule(parent_path) if parent_path else root
    output = getattr(parent, "output", None)
    dense = getattr(output, "dense", None)
    if isinstance(dense, nn.Linear) and dense.in_features == width:
        return dense
    return None


@layout
def hf_layout(root: nn.Module, path: str, m: Any) -> Layout | None:
    """Hugging Face BERT / ViT / RoBERTa self-attention: ``query``, ``key``, ``value`` layers,
    ``num_attention_heads`` and ``attention_head_size``; the output ``dense`` is a sibling's.
    Their forwards view the projections with ``-1`` heads, so the counts are all to update."""
    lins = [getattr(m, n, None) for n in ("query", "key", "value")]
    h, d = getattr(m, "num_attention_heads", None), getattr(m, "attention_head_size", None)
    if not all(isinstance(x, nn.Linear) for x in lins) or not isinstance(h, int):
        return None
    if not isinstance(d, int) or any(lin.out_features != h * d for lin in lins):  # type: ignore[union-attr]
        return None
    dense = _output_dense(root, path, h * d)
    if dense is None:
        return None
    rows = blocks(h, d)
    parts = [p for lin in lins for p in linear_parts(lin, 0, rows)]  # type: ignore[arg-type]
    parts += linear_parts(dense, 1, rows)

    def finish(kept: int) -> None:
        m.num_attention_heads = kept
        if hasattr(m, "all_head_size"):
            m.all_head_size = kept * d

    return Layout(h, parts, finish, [*lins, dense])  # type: ignore[list-item]


@layout
def gqa_layout(root: nn.Module, path: str, m: Any) -> Layout | None:
    """``q_proj``/``k_proj``/``v_proj``/``o_proj`` with ``head_dim``: Hugging Face ViT (v5) and
    Llama-style grouped-query attention, where a unit is one key/value head with the
    ``num_key_value_groups`` query heads that read it (``repeat_kv`` repeats each kv head for
    consecutive query heads; no groups: one query head per unit). Their forwards view with
    ``-1`` heads; the group size is kept."""
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    q, k, v, o = (getattr(m, n, None) for n in names)
    d, g = getattr(m, "head_dim", None), getattr(m, "num_key_value_groups", 1)
    if not all(isinstance(x, nn.Linear) for x in (q, k, v, o)):
        return None
    if (
        not isinstance(d, int)
        or not isinstance(g, int)
        or isinstance(m, PrunableMultiheadAttention)
    ):
        return None
    assert isinstance(q, nn.Linear) and isinstance(k, nn.Linear)
    assert isinstance(v, nn.Linear) and isinstance(o, nn.Linear)
    kv = k.out_features // d
    if kv * d != k.out_features or q.out_features != kv * g * d or o.in_features != q.out_features:
        return None
    qrows = blocks(kv, g * d)
    kvrows = blocks(kv, d)
    parts = linear_parts(q, 0, qrows) + linear_parts(k, 0, kvrows) + linear_parts(v, 0, kvrows)
    parts += linear_parts(o, 1, qrows)

    def finish(kept: int) -> None:
        if isinstance(getattr(m, "num_attention_heads", None), int):
            m.num_attention_heads = kept * g  # informational (the forward views with -1)

    return Layout(kv, parts, finish, [q, k, v, o])


__all__ = ["LAYOUTS", "Layout", "Part", "blocks", "layout", "layout_for", "prunable"]
