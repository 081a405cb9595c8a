"""Fit a model's ends to the data: the stem's input channels.

When the data has a different number of channels than the model's stem (the first
``Conv2d``), e.g. 1-channel MNIST into ``resnet18``, that convolution is replaced by one taking
``in_channels`` inputs. With pretrained weights, the new filters are the sum of the old ones
over their input channels, divided by ``in_channels`` and repeated: for a grayscale image
replicated to RGB the output is unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def adapt_input_channels(model: nn.Module, in_channels: int, *, pretrained: bool) -> bool:
    """Replace the stem ``Conv2d`` if it expects other than ``in_channels`` inputs (see the
    module docstring). Returns whether it did."""
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if module.in_channels == in_channels or module.groups != 1:
            return False
        conv: Any = module  # torch types the tuples loosely
        new = nn.Conv2d(
            in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
        )
        if pretrained:
            with torch.no_grad():
                summed = module.weight.sum(dim=1, keepdim=True) / in_channels
                new.weight.copy_(summed.expand(-1, in_channels, -1, -1))
                if module.bias is not None and new.bias is not None:
                    new.bias.copy_(module.bias)
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, new)
        return True
    return False


def replace_head(model: nn.Module, num_classes: int) -> str | None:
    """Give a pretrained classifier ``num_classes`` outputs: its last layer (the last ``Linear``
    or ``Conv2d`` registered, the classifier in every torchvision classification model) is
    replaced by a freshly initialised one of the same shape but its outputs, and every other
    weight is kept. Returns a note for the report, or None when the head already fits."""
    found: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            found = (name, module)
    if found is None:
        return None
    name, head = found
    old = head.out_features if isinstance(head, nn.Linear) else head.out_channels
    if old == num_classes:
        return None
    new: nn.Module
    if isinstance(head, nn.Linear):
        new = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
    else:
        conv: Any = head
        new = nn.Conv2d(
            conv.in_channels,
            num_classes,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            bias=conv.bias is not None,
        )
    weight: Any = head.weight
    model.set_submodule(name, new.to(weight.device))
    return f"classifier `{name}` re-initialised for {num_classes} classes (pretrained on {old})"
