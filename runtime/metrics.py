"""Model measurements for the per-stage report: size, compute, latency, accuracy, sparsity.

MACs are counted from shapes by forward hooks on convolutions and linear layers, including
their fused (``torch.ao.nn.intrinsic``), QAT and quantized (``torch.ao.nn.quantized``)
variants: a convolution costs ``C_out * H_out * W_out * (C_in / groups) * kH * kW``
multiply-accumulates per sample, a linear layer ``out_features * in_features`` per row.
Attention blocks add what those hooks miss (:mod:`runtime.attention_macs`: the functional
projections of ``nn.MultiheadAttention`` and the attention matmuls); other functional work is
not counted.

>>> from torch import nn
>>> count_macs(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3)), (1, 4, 4))
96
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from runtime.attention_macs import attention_macs, counts_attention
from runtime.latency import DEFAULT_THREADS, LATENCY_KEYS, latency_fields, time_batches
from runtime.weight_stats import (
    COMPRESSED_SIZE_METHOD,
    CONV_TYPES,
    LINEAR_TYPES,
    layer_weight,
    nm_conformance,
    serialized_sizes,
    state_bytes,
    zero_share,
)

if TYPE_CHECKING:
    from compiler.ops import PassBase, PruneWeightsParams


def count_params(model: nn.Module) -> int:
    """Parameters, counting the packed weights and biases of quantized layers too."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        if isinstance(module, (*CONV_TYPES, *LINEAR_TYPES)) and not any(
            True for _ in module.parameters(recurse=False)
        ):
            weight = layer_weight(module)
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

    def attention_hook(module: Any, inputs: Any, kwargs: Any, _output: Any) -> None:
        nonlocal total
        total += attention_macs(module, inputs, kwargs)

    handles = []
    for module in model.modules():
        if counts_attention(module):
            handles.append(module.register_forward_hook(attention_hook, with_kwargs=True))
        elif isinstance(module, CONV_TYPES):
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
    return len(state_bytes(model))


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
    """Fraction of exactly-zero weights over all convolution and linear layers (quantized
    ones included)."""
    return zero_share(model)


def nm_lineage(
    passes: Sequence[PassBase], model: str, until: str | None = None
) -> PruneWeightsParams | None:
    """The N:M prune in ``model``'s history: the last ``prune.weights`` with a ``pattern`` among
    ``passes`` (plan order, up to and including the pass ``until``) that acted on ``model`` or
    on the model it was snapshotted from; None if there is none."""
    from compiler.ops import PruneWeightsParams

    held: dict[str, PruneWeightsParams] = {}
    for p in passes:
        params = p.params
        if isinstance(params, PruneWeightsParams) and params.pattern is not None:
            held[p.subject] = params
        elif p.result_model != p.subject and p.subject in held:  # a snapshot inherits it
            held[p.result_model] = held[p.subject]
        if p.id == until:
            break
    return held.get(model)


#: Every field ``measure`` returns, in order (``nm_*``: None unless an N:M prune is in the
#: model's history).
MEASURED_KEYS = (
    "accuracy",
    "params",
    "macs",
    "size_bytes",
    *LATENCY_KEYS,
    "sparsity",
    "dense_size_bytes",
    "compressed_size_bytes",
    "nm_pattern",
    "nm_conformance",
)


def sparsity_fields(model: nn.Module, nm: PruneWeightsParams | None = None) -> dict[str, Any]:
    """``sparsity``, ``dense_size_bytes``, ``compressed_size_bytes`` (see
    ``runtime.weight_stats``), and with an N:M prune ``nm`` in the model's history its
    ``nm_pattern`` and ``nm_conformance`` (share of the groups of the layers in its scope that
    still hold the pattern: 1.0 while it holds)."""
    dense, compressed = serialized_sizes(model)
    out: dict[str, Any] = {
        "sparsity": zero_share(model),
        "dense_size_bytes": dense,
        "compressed_size_bytes": compressed,
        "nm_pattern": None,
        "nm_conformance": None,
    }
    if nm is not None and nm.pattern is not None:
        from runtime.passes.scopes import Scope

        held = nm_conformance(model, nm.pattern.n, nm.pattern.m, Scope.of(nm).selects)
        out["nm_pattern"], out["nm_conformance"] = held["pattern"], held["conformance"]
    return out


def measure(
    model: nn.Module,
    data: Any,
    *,
    accuracy: bool = True,
    warmup: int = 2,
    repeats: int | None = None,
    threads: int = DEFAULT_THREADS,
    nm: PruneWeightsParams | None = None,
) -> dict[str, Any]:
    """The report's per-stage figures, ``MEASURED_KEYS``: ``accuracy`` (None if not asked),
    ``params``, ``macs``, ``size_bytes``, the latency figures of ``runtime.latency`` (median,
    min and spread at batch 1 and 32, threads, load average, ``noisy``) and the sparsity
    fields of ``sparsity_fields`` (``nm``: the N:M prune of the model's history, see
    ``nm_lineage``). ``repeats`` None scales the latency rounds to the model's cost (a
    fraction of a second for a small model)."""
    from runtime.engine import evaluate

    shape = (data.in_channels, data.image_size, data.image_size)
    weights = sparsity_fields(model, nm)
    out: dict[str, Any] = {
        "accuracy": evaluate(model, data) if accuracy else None,
        "params": count_params(model),
        "macs": count_macs(model, shape),
        "size_bytes": weights["dense_size_bytes"],
    }
    out.update(latency_fields(model, shape, warmup=warmup, repeats=repeats, threads=threads))
    out.update(weights)
    return out


__all__ = [
    "COMPRESSED_SIZE_METHOD",
    "CONV_TYPES",
    "LINEAR_TYPES",
    "MEASURED_KEYS",
    "count_macs",
    "count_params",
    "latency_ms",
    "measure",
    "nm_lineage",
    "serialized_size",
    "sparsity",
    "sparsity_fields",
]
