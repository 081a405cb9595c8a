"""Channel counts that a model keeps as an attribute and passes as a constant to a reshape.

A reshape whose size at the channel position is a constant would be stale once channels are
removed, so the reshape rule blocks it, unless the constant is a known attribute of the model
that surgery updates with the pruned count. torchvision's ``VisionTransformer`` reshapes its
patch embedding with ``x.reshape(n, self.hidden_dim, n_h * n_w)``: its ``hidden_dim`` is
``conv_proj.out_channels``: the reshaped channels are coupled with that layer's outputs (so the
constant stays true to them), and the attribute is reset after every cut and replay
(:func:`fix_attributes`). Keyed by type name, so nothing here imports the libraries.

>>> import torchvision
>>> vit = torchvision.models.VisionTransformer(32, 8, 1, 2, 16, 32, num_classes=3)
>>> backed_constant(vit, 16), backed_constant(vit, 17)
('conv_proj', None)
"""

from __future__ import annotations

from torch import nn

from ..trace import type_name

#: type name -> (attribute, the submodule whose output channels it counts).
ATTR_DIMS: dict[str, tuple[str, str]] = {
    "torchvision.models.vision_transformer.VisionTransformer": ("hidden_dim", "conv_proj"),
}


def backed_constant(root: nn.Module, value: object) -> str | None:
    """The layer whose output count ``value`` is, when ``value`` is the model's own
    channel-count attribute (which surgery keeps up to date), else None."""
    entry = ATTR_DIMS.get(type_name(type(root)))
    if entry is None or not isinstance(value, int) or getattr(root, entry[0], None) != value:
        return None
    return entry[1]


def _out_count(layer: nn.Module) -> int:
    return int(getattr(layer, "out_channels", getattr(layer, "out_features", 0)))


def fix_attributes(model: nn.Module) -> None:
    """After surgery: reset every registered channel-count attribute from the pruned layers."""
    for m in model.modules():
        entry = ATTR_DIMS.get(type_name(type(m)))
        if entry is not None:
            setattr(m, entry[0], _out_count(m.get_submodule(entry[1])))


__all__ = ["ATTR_DIMS", "backed_constant", "fix_attributes"]
