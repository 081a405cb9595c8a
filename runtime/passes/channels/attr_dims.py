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
attribute work the same way (:data:`ATTR_SLICES`: ReXNet's ``x[:, 0:self.in_channels]``).

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
from .head_dims import fix_head_dims

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
    """

    size: Callable[[Any], object]  # the module (typed Any: its attributes are the family's)
    fix: Callable[[Any], None]


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
    m.in_channels = sum(int(p.conv.in_channels) for p in m.paths)  # path i reads piece i


#: type name -> how its forward splits by an attribute, and how to rewrite that attribute.
ATTR_SPLITS: dict[str, AttrSplit] = {
    "timm.models.res2net.Bottle2neck": AttrSplit(lambda m: m.width, _fix_res2net),
    "timm.models.cspnet.CrossStage": AttrSplit(lambda m: m.expand_chs // 2, _fix_csp),
    "timm.models.cspnet.CrossStage3": AttrSplit(lambda m: m.expand_chs // 2, _fix_csp),
    "timm.layers.mixed_conv2d.MixedConv2d": AttrSplit(lambda m: m.splits, _fix_mixed_conv),
    "timm.layers.selective_kernel.SelectiveKernel": AttrSplit(
        lambda m: m.in_channels // m.num_paths if m.split_input else None, _fix_selective_kernel
    ),
}


def _fix_rexnet(m: Any) -> None:
    first = m.conv_exp if m.conv_exp is not None else m.conv_dw
    m.in_channels = int(first.conv.in_channels)  # the prefix is added to the block's input


#: type name -> the bound of its forward's channel slices ``x[:, :k]`` / ``x[:, k:]``, whose
#: prefix it couples to a tensor the fixup can count (ReXNet adds it to the shortcut).
ATTR_SLICES: dict[str, AttrSplit] = {
    "timm.models.rexnet.LinearBottleneck": AttrSplit(lambda m: m.in_channels, _fix_rexnet),
}


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


def fix_attributes(model: nn.Module) -> None:
    """After surgery: reset every registered channel-count attribute from the pruned layers."""
    for m in model.modules():
        fix_head_dims(m)
        entry = ATTR_DIMS.get(type_name(type(m)))
        if entry is not None:
            setattr(m, entry[0], _out_count(m.get_submodule(entry[1])))
        for table in (ATTR_SPLITS, ATTR_SLICES):
            split = table.get(type_name(type(m)))
            if split is not None:
                split.fix(m)


__all__ = [
    "ATTR_DIMS",
    "ATTR_SLICES",
    "ATTR_SPLITS",
    "AttrSplit",
    "backed_constant",
    "backed_slice",
    "backed_split",
    "fix_attributes",
]
