"""What the weights of a model hold, measured the same way by the passes and the report:
serialized sizes (dense and compressed), the share of zero entries, N:M conformance.

The *compressed* size is the length of the zlib-compressed (level 1) ``torch.save``
serialisation of the state dict: zeros compress, so it is the size unstructured sparsity buys.
N:M groups are the ones ``prune N:M weights`` makes: ``m`` consecutive entries along a layer's
flattened input dimension, i.e. a row of ``weight.reshape(out, -1)`` cut in pieces of ``m``
(layers whose rows do not divide by ``m`` have no such groups and are not checked).

>>> import torch
>>> from torch import nn
>>> m = nn.Linear(8, 2, bias=False)
>>> with torch.no_grad():
...     _ = m.weight.copy_(torch.tensor([[0, 1, 0, 2, 3, 0, 0, 4], [1, 1, 1, 0, 0, 0, 5, 0.0]]))
>>> nm_conformance(m, 2, 4)
{'pattern': '2:4', 'conformance': 0.75, 'groups': 4, 'layers': 1}
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from typing import Any

import torch
import torch.ao.nn.quantized as nnq
from torch import nn

CONV_TYPES: tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nnq.Conv1d, nnq.Conv2d, nnq.Conv3d)
LINEAR_TYPES: tuple[type, ...] = (nn.Linear, nnq.Linear)
#: How ``compressed_size_bytes`` is computed, as the reports say it.
COMPRESSED_SIZE_METHOD = "zlib level 1 of torch.save(state_dict)"


def layer_weight(module: Any) -> torch.Tensor | None:
    """A layer's weight as a float tensor; quantized modules expose it as ``.weight()``."""
    weight: Any = getattr(module, "weight", None)
    if callable(weight) and not isinstance(weight, torch.Tensor):
        weight = weight()
    if not isinstance(weight, torch.Tensor):
        return None
    return weight.dequantize() if weight.is_quantized else weight.detach()


def layer_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(qualified name, float weight) of every convolution and linear layer: float, QAT and
    quantized ones (whose int8 zeros dequantize to exact zeros)."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, (*CONV_TYPES, *LINEAR_TYPES)):
            weight = layer_weight(module)
            if weight is not None:
                out.append((name, weight))
    return out


def zero_share(model: nn.Module) -> float:
    """Share of exactly-zero entries over the weights of every convolution and linear layer."""
    zeros = total = 0
    for _, weight in layer_weights(model):
        zeros += int((weight == 0).sum())
        total += weight.numel()
    return zeros / total if total else 0.0


def state_bytes(model: nn.Module) -> bytes:
    """``torch.save(model.state_dict())``: the model as it is stored."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def serialized_sizes(model: nn.Module) -> tuple[int, int]:
    """(dense, compressed) byte sizes of ``torch.save(model.state_dict())`` (see the module)."""
    data = state_bytes(model)
    return len(data), len(zlib.compress(data, 1))


def nm_rows(weight: torch.Tensor, m: int) -> torch.Tensor | None:
    """``weight`` as ``(out, groups, m)``: its N:M groups; None when a row does not divide."""
    rows = weight.reshape(weight.shape[0], -1)
    if rows.shape[1] % m:
        return None
    return rows.reshape(rows.shape[0], rows.shape[1] // m, m)


def nm_conformance(
    model: nn.Module, n: int, m: int, selects: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """How well ``model`` still holds an N:M pattern: the share of the N:M groups, over the
    layers whose rows divide by ``m`` (and that ``selects`` keeps, default all), with at most
    ``n`` non-zero entries; ``conformance`` is None when no layer has such groups."""
    ok = groups = layers = 0
    for name, weight in layer_weights(model):
        if selects is not None and not selects(name):
            continue
        grouped = nm_rows(weight, m)
        if grouped is None:
            continue
        nonzero = (grouped != 0).sum(dim=-1)
        ok += int((nonzero <= n).sum())
        groups += nonzero.numel()
        layers += 1
    return {
        "pattern": f"{n}:{m}",
        "conformance": ok / groups if groups else None,
        "groups": groups,
        "layers": layers,
    }


__all__ = [
    "COMPRESSED_SIZE_METHOD",
    "CONV_TYPES",
    "LINEAR_TYPES",
    "layer_weight",
    "layer_weights",
    "nm_conformance",
    "nm_rows",
    "serialized_sizes",
    "state_bytes",
    "zero_share",
]
