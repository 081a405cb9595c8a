"""Channel counts that a model keeps as an attribute and passes as a constant to a reshape.

A reshape whose size at the channel position is a constant would be stale once channels are
removed, so the reshape rule blocks it, unless the constant is a known attribute of the model
that surgery updates with the pruned count. torchvision's ``VisionTransformer`` reshapes its
patch embedding with ``x.reshape(n, self.hidden_dim, n_h * n_w)``: its ``hidden_dim`` is
``conv_proj.out_channels``: the reshaped channels are coupled with that layer's outputs (so the
constant stays true to them), and the attribute is reset after every cut and replay
(:func:`fix_attributes`). Keyed by type name, so nothing here imports the libraries.

The same holds for splits: res2net's ``torch.split(out, self.width, 1)``, CSPNet's
``x.split(self.expand_chs // 2, dim=1)`` and MixNet's ``torch.split(x, self.splits, 1)`` pass
an attribute of the module running the split (``node.meta["kdr_module"]``, recorded by the
tracer). A family in :data:`ATTR_SPLITS` (its ``forward`` reviewed by hand: the attribute has
no other use there) splits into equal pieces; the split rule then couples the pieces position
by position (each keeps the same count) and the family's fixup rewrites the attribute from its
pruned layers, after the cut and on replay. Unequal pieces stay blocked. Channel slices at an
attribute work the same way (:data:`ATTR_SLICES`: ReXNet's ``x[:, 0:self.in_channels]``), as
do views of a per-channel parameter by a shape attribute (:data:`ATTR_VIEWS`: MetaFormer's
layer scale ``self.scale.view(self.shape)``).

>>> import torchvision
>>> vit = torchvision.models.VisionTransformer(32, 8, 1, 2, 16, 32, num_classes=3)
>>> backed_constant(vit, 16), backed_constant(vit, 17)
('conv_proj', None)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..trace import type_name

#: type name -> (attribute, the submodule whose output channels it counts).
ATTR_DIMS: dict[str, tuple[str, str]] = {
    "torchvision.models.vision_transformer.VisionTransformer": ("hidden_dim", "conv_proj"),
}


def backed_constant(owner: nn.Module | None, value: object) -> str | None:
    """The layer (a path under ``owner``) whose output count ``value`` is, when ``value`` is
    ``owner``'s own channel-count attribute (which surgery keeps up to date), else None."""
    entry = ATTR_DIMS.get(type_name(type(owner)))
    if entry is None or not isinstance(value, int) or getattr(owner, entry[0], None) != value:
        return None
    return entry[1]


def _out_count(layer: nn.Module) -> int:
    return int(getattr(layer, "out_channels", getattr(layer, "out_features", 0)))


@dataclass(frozen=True)
class AttrSplit:
    """A family whose ``forward`` splits channels into equal pieces by its own attribute.

    ``size``: the split argument the forward passes, read from the module's attributes;
    ``fix``: resets those attributes from the (pruned) layers; idempotent on an unpruned module.
    ``count``: for a slice whose prefix no layer counts alone (DPN's residual channels share
    every layer with its dense ones), the attribute holding the prefix's size: the walker
    gives the module an ``in`` endpoint over the prefix, so the record carries its kept
    positions, and :func:`count_pruner` sets the attribute from them.
    """

    size: Callable[[Any], object]  # the module (typed Any: its attributes are the family's)
    fix: Callable[[Any], None]
    count: str | None = None


def _fix_res2net(m: Any) -> None:
    m.width = int(m.convs[0].in_channels)  # piece i feeds convs[i] (the last one: conv3)


def _fix_csp(m: Any) -> None:
    m.expand_chs = _out_count(m.conv_exp.conv)  # conv_exp's outputs split in halves


def _fix_mixed_conv(m: Any) -> None:
    convs = list(m.values())  # an nn.ModuleDict: conv i reads piece i
    m.splits = [int(c.in_channels) for c in convs]
    m.in_channels = sum(m.splits)
    m.out_channels = sum(int(c.out_channels) for c in convs)


def _fix_selective_kernel(m: Any) -> None:
    convs = [p.conv for p in m.paths]  # ConvNormAct paths; with split_input, path i reads piece i
    m.in_channels = (
        sum(int(c.in_channels) for c in convs) if m.split_input else convs[0].in_channels
    )
    m.out_channels = int(convs[0].out_channels)


#: type name -> how its forward splits by an attribute, and how to rewrite that attribute.
ATTR_SPLITS: dict[str, AttrSplit] = {
    "timm.models.res2net.Bottle2neck": AttrSplit(lambda m: m.width, _fix_res2net),
    "timm.models.cspnet.CrossStage": AttrSplit(lambda m: m.expand_chs // 2, _fix_csp),
    "timm.models.cspnet.CrossStage3": AttrSplit(lambda m: m.expand_chs // 2, _fix_csp),
    "timm.layers.mixed_conv2d.MixedConv2d": AttrSplit(lambda m: m.splits, _fix_mixed_conv),
    "timm.layers.selective_kernel.SelectiveKernel": AttrSplit(
        lambda m: m.in_channels // m.num_paths, _fix_selective_kernel
    ),
}


def _fix_rexnet(m: Any) -> None:
    first = m.conv_exp if m.conv_exp is not None else m.conv_dw
    m.in_channels = int(first.conv.in_channels)  # the prefix is added to the block's input


#: type name -> the bound of its forward's channel slices ``x[:, :k]`` / ``x[:, k:]``, whose
#: prefix it couples to a tensor the fixup can count (ReXNet adds it to the shortcut).
ATTR_SLICES: dict[str, AttrSplit] = {
    "timm.models.rexnet.LinearBottleneck": AttrSplit(lambda m: m.in_channels, _fix_rexnet),
    # x_s[:, :num_1x1_c] (residual path) and x_s[:, num_1x1_c:] (dense path), same for the
    # block's output; the residual prefix is counted by the record (``count``).
    "timm.models.dpn.DualPathBlock": AttrSplit(lambda m: m.num_1x1_c, lambda m: None, "num_1x1_c"),
}


def slice_count(module: nn.Module | None) -> tuple[str, int] | None:
    """``(attribute, prefix size)`` when ``module``'s family counts its slice prefix through
    the record (:attr:`AttrSplit.count`)."""
    entry = ATTR_SLICES.get(type_name(type(module))) if module is not None else None
    if entry is None or entry.count is None:
        return None
    k = entry.size(module)
    return (entry.count, k) if isinstance(k, int) else None


def count_pruner(module: nn.Module) -> Callable[[Any, dict[str, list[int]]], None] | None:
    """The surgery of a module whose prefix count the record carries (its ``in`` keep)."""
    counted = slice_count(module)
    if counted is None:
        return None
    attr = counted[0]

    def set_count(m: Any, keeps: dict[str, list[int]]) -> None:
        if "in" in keeps:
            setattr(m, attr, len(keeps["in"]))

    return set_count


def _fix_scale(m: Any) -> None:
    n = int(m.scale.numel())  # the (pruned) per-channel scale
    m.shape = (n, 1, 1) if len(m.shape) == 3 else (n,)


#: type name -> the shape its forward views a per-channel parameter with (MetaFormer's layer
#: scale ``self.scale.view(self.shape)``, ``shape = (dim, 1, 1)``), rewritten after surgery.
ATTR_VIEWS: dict[str, AttrSplit] = {
    "timm.models.metaformer.Scale": AttrSplit(lambda m: m.shape, _fix_scale),
}


def backed_view(module: nn.Module | None, shape: list[Any]) -> bool:
    """Whether a view to ``shape``, run by ``module``'s forward, is the family's view by its
    own shape attribute (which its fixup rewrites from the parameter's pruned size)."""
    entry = ATTR_VIEWS.get(type_name(type(module))) if module is not None else None
    if entry is None:
        return False
    expected = entry.size(module)
    return isinstance(expected, (list, tuple)) and list(expected) == list(shape)


def backed_slice(module: nn.Module | None, s: slice, size: int) -> bool:
    """Whether ``x[:, s]`` over ``size`` channels, run by ``module``'s forward, is the family's
    prefix ``[:k]`` or tail ``[k:]`` at its attribute ``k`` (which its fixup rewrites)."""
    entry = ATTR_SLICES.get(type_name(type(module))) if module is not None else None
    if entry is None or s.step not in (None, 1):
        return False
    k = entry.size(module)
    if not isinstance(k, int) or not 0 < k < size:
        return False
    prefix = s.start in (None, 0) and s.stop == k
    return prefix or (s.start == k and s.stop is None)


def backed_split(module: nn.Module | None, split: object, sizes: list[int]) -> bool:
    """Whether a split into ``sizes`` by the constant ``split``, run by ``module``'s forward,
    is the family's own attribute-backed split into equal pieces (which its fixup rewrites)."""
    entry = ATTR_SPLITS.get(type_name(type(module))) if module is not None else None
    if entry is None or len(sizes) < 2 or len(set(sizes)) != 1:
        return False
    expected = entry.size(module)
    as_list = list(expected) if isinstance(expected, (list, tuple)) else expected
    given = list(split) if isinstance(split, (list, tuple)) else split
    return as_list == given


def _fix_bottleneck_attn(m: Any) -> None:
    """BoTNet's attention (:mod:`.rules_bottleneck`): head widths from the pruned qkv conv and
    position tables (sliced along the q/k head width)."""
    heads, dq = int(m.num_heads), int(m.pos_embed.height_rel.shape[1])
    m.dim_head_qk = m.pos_embed.dim_head = dq
    m.dim_out_qk = heads * dq
    m.dim_out_v = int(m.qkv.out_channels) - 2 * heads * dq
    m.dim_head_v = m.dim_out_v // heads


#: type name -> resets a module's channel attributes after surgery (modules handled whole).
ATTR_FIXES: dict[str, Callable[[Any], None]] = {
    "timm.layers.bottleneck_attn.BottleneckAttn": _fix_bottleneck_attn,
}


def _fix_pvt_v2(m: Any) -> None:
    m.head_dim = int(m.q.out_features) // int(m.num_heads)  # q's heads are cut like kv's


#: type name -> the head width its forward passes as a reshape's last size, kept as an
#: attribute (PVT-v2's ``kv.reshape(B, -1, 2, self.num_heads, self.head_dim)``; ``forward``
#: read by hand: no other use). :func:`.rules_heads.split_heads` then splits heads at it as at
#: a ``-1``, and the fixup rewrites it from the pruned layers after every cut and replay.
ATTR_HEAD_DIMS: dict[str, AttrSplit] = {
    "timm.models.pvt_v2.Attention": AttrSplit(lambda m: m.head_dim, _fix_pvt_v2),
}


def backed_head_dim(module: nn.Module | None, value: object) -> bool:
    """Whether ``value``, the last size of a reshape run by ``module``'s forward, is the
    family's head-width attribute (:data:`ATTR_HEAD_DIMS`, kept true after surgery)."""
    entry = ATTR_HEAD_DIMS.get(type_name(type(module))) if module is not None else None
    return entry is not None and isinstance(value, int) and entry.size(module) == value


def fix_attributes(model: nn.Module) -> None:
    """After surgery: reset every registered channel-count attribute from the pruned layers."""
    for m in model.modules():
        entry = ATTR_DIMS.get(type_name(type(m)))
        if entry is not None:
            setattr(m, entry[0], _out_count(m.get_submodule(entry[1])))
        fix = ATTR_FIXES.get(type_name(type(m)))
        if fix is not None:
            fix(m)
        for table in (ATTR_SPLITS, ATTR_SLICES, ATTR_VIEWS, ATTR_HEAD_DIMS):
            split = table.get(type_name(type(m)))
            if split is not None:
                split.fix(m)


__all__ = [
    "ATTR_DIMS",
    "ATTR_FIXES",
    "ATTR_HEAD_DIMS",
    "ATTR_SLICES",
    "ATTR_SPLITS",
    "ATTR_VIEWS",
    "AttrSplit",
    "backed_constant",
    "backed_head_dim",
    "backed_slice",
    "backed_split",
    "backed_view",
    "count_pruner",
    "fix_attributes",
    "slice_count",
]
