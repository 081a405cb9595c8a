"""Model measurements for the per-stage report: size, compute, latency, accuracy, sparsity.

MACs are counted from shapes by forward hooks on convolutions and linear layers, including
their fused (``torch.ao.nn.intrinsic``), QAT and quantized (``torch.ao.nn.quantized``)
variants: a convolution costs ``C_out * H_out * W_out * (C_in / groups) * kH * kW``
multiply-accumulates per sample, a linear layer ``out_features * in_features`` per row. Work
done through functional calls (``F.linear`` inside attention, for example) is not counted.

>>> from torch import nn
>>> count_macs(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3)), (1, 4, 4))
96
"""

from __future__ import annotations

import io
from typing import Any

import torch
import torch.ao.nn.quantized as nnq
from torch import nn

from runtime.latency import DEFAULT_THREADS, LATENCY_KEYS, latency_fields, time_batches

CONV_TYPES: tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nnq.Conv1d, nnq.Conv2d, nnq.Conv3d)
LINEAR_TYPES: tuple[type, ...] = (nn.Linear, nnq.Linear)


def _weight(module: nn.Module) -> torch.Tensor | None:
    """A layer's weight as a float tensor; quantized modules expose it as ``.weight()``."""
    weight: Any = getattr(module, "weight", None)
    if callable(weight) and not isinstance(weight, torch.Tensor):
        weight = weight()
    if not isinstance(weight, torch.Tensor):
        return None
    return weight.dequantize() if weight.is_quantized else weight.detach()


def count_params(model: nn.Module) -> int:
    """Parameters, counting the packed weights and biases of quantized layers too."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, (*CONV_TYPES, *LINEAR_TYPES)) and not any(
            True for _ in module.parameters(recurse=False)
        ):
            weight = _weight(module)
            bias: Any = getattr(module, "bias", None)
            bias = bias() if callable(bias) and not isinstance(bias, torch.Tensor) else bias
            total += weight.numel() if weight is not None else 0
            total += bias.numel() if isinstance(bias, torch.Tensor) else 0
    return total


def _input(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    device = next((t.device for t in model.parameters()), torch.device("cpu"))
    return torch.randn(*shape, device=device)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates for one sample of ``input_shape`` ((C, H, W) or (N, C, H, W))."""
    shape = tuple(input_shape)
    batch = shape[0] if len(shape) == 4 else 1
    shape = shape if len(shape) == 4 else (1, *shape)
    total = 0

    def conv_hook(module: Any, _inputs: Any, output: Any) -> None:
        nonlocal total
        kernel = 1
        for k in module.kernel_size:
            kernel *= int(k)
        per_out = (module.in_channels // module.groups) * kernel
        total += int(output.numel()) * per_out

    def linear_hook(module: Any, _inputs: Any, output: Any) -> None:
        nonlocal total
        total += int(output.numel()) * int(module.in_features)

    handles = []
    for module in model.modules():
        if isinstance(module, CONV_TYPES):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, LINEAR_TYPES):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(_input(model, shape))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total // batch


def serialized_size(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the model's size on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def latency_ms(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch: int = 1,
    warmup: int = 3,
    repeats: int = 10,
) -> float:
    """Median CPU wall time of one forward pass on a batch of ``batch``, in milliseconds
    (timed as the report times it: see ``runtime.latency``)."""
    return time_batches(model, input_shape, (batch,), warmup=warmup, repeats=repeats)[batch].median


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all convolution and linear layers."""
    zeros = total = 0
    for module in model.modules():
        if isinstance(module, (*CONV_TYPES, *LINEAR_TYPES)):
            weight = _weight(module)
            if weight is not None:
                zeros += int((weight == 0).sum())
                total += weight.numel()
    return zeros / total if total else 0.0


#: Every field ``measure`` returns, in order.
MEASURED_KEYS = ("accuracy", "params", "macs", "size_bytes", *LATENCY_KEYS, "sparsity")


def measure(
    model: nn.Module,
    data: Any,
    *,
    accuracy: bool = True,
    warmup: int = 2,
    repeats: int | None = None,
    threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """The report's per-stage figures, ``MEASURED_KEYS``: ``accuracy`` (None if not asked),
    ``params``, ``macs``, ``size_bytes``, the latency figures of ``runtime.latency`` (median,
    min and spread at batch 1 and 32, threads, load average, ``noisy``) and ``sparsity``.
    ``repeats`` None scales the latency rounds to the model's cost (a fraction of a second for
    a small model)."""
    from runtime.engine import evaluate

    shape = (data.in_channels, data.image_size, data.image_size)
    out: dict[str, Any] = {
        "accuracy": evaluate(model, data) if accuracy else None,
        "params": count_params(model),
        "macs": count_macs(model, shape),
        "size_bytes": serialized_size(model),
    }
    out.update(latency_fields(model, shape, warmup=warmup, repeats=repeats, threads=threads))
    out["sparsity"] = sparsity(model)
    return out
