"""``convnet(width=16, depth=3)``: kdr's own small CNN for small images."""

from __future__ import annotations

from torch import nn

from runtime.models.registry import register_builtin


class ConvNet(nn.Sequential):
    """``depth`` blocks of conv3x3-BN-ReLU-maxpool (widths ``width * 2**i``), global average
    pooling and a linear head. Plain modules, no control flow: fx-traceable and prunable."""

    def __init__(
        self, width: int = 16, depth: int = 3, *, in_channels: int = 3, num_classes: int = 10
    ) -> None:
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got width={width} depth={depth}")
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            if i < depth - 1:
                layers.append(nn.MaxPool2d(2))
            channels = out
        super().__init__(
            nn.Sequential(*layers),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, num_classes),
        )


@register_builtin("convnet")
def convnet(
    width: int = 16, depth: int = 3, *, in_channels: int = 3, num_classes: int = 10
) -> ConvNet:
    """The built-in small CNN family (see :class:`ConvNet`)."""
    return ConvNet(width, depth, in_channels=in_channels, num_classes=num_classes)
