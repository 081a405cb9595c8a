"""A tiny model factory for tests: ``"kdr_test_factory:tiny_net"`` in a recipe."""

from __future__ import annotations

from torch import nn


def tiny_net(hidden: int = 8, *, in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(hidden, num_classes),
    )


def rgb_net(num_classes: int = 10) -> nn.Module:
    """A factory that knows nothing of channels: kdr must adapt its stem."""
    return tiny_net(in_channels=3, num_classes=num_classes)


NOT_CALLABLE = 3


def quantized_convnet() -> tuple[nn.Module, nn.Module]:
    """A float ``convnet(width=8)`` and its int8 version (torch.fx, x86 engine, calibrated)."""
    import copy
    import warnings

    import torch
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from runtime.models import build_model

    torch.backends.quantized.engine = "x86"
    torch.manual_seed(0)
    model = build_model("convnet", [], {"width": 8}, in_channels=1, num_classes=10).eval()
    x = torch.randn(16, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (x,))
        prepared(x)
        return model, convert_fx(prepared)


def helpers() -> object:
    """This module (for tests that import it through a sys.path fixture)."""
    import sys

    return sys.modules[__name__]


def tiny_data(n: int = 40, classes: int = 3) -> tuple[object, object]:
    """A data factory: ``data = "kdr_test_factory:tiny_data"(n=40)``."""
    import torch
    from torch.utils.data import TensorDataset

    class Labelled(TensorDataset):
        num_classes = classes

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 12, 12, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return Labelled(x, y), Labelled(x[:10], y[:10])
