"""ONNX for dynamic int8 models: torch's exporter cannot trace dynamic quantized ``Linear``
(their packed-parameter state is a ``Tuple[Tensor, NoneType, bool]``), so kdr writes the same
model through ONNX Runtime's own dynamic quantization instead.

Each dynamic int8 ``Linear`` (and fused ``LinearReLU``) is replaced, in a copy, by a float
``Linear`` holding its *dequantized* int8 weights, so the float graph carries exactly the values
the int8 model computes with; that graph is exported, then
``onnxruntime.quantization.quantize_dynamic`` stores its MatMul weights as int8 again (the same
int8 grid: re-quantizing dequantized int8 values per channel or per tensor recovers them) and
quantizes activations at run time, as torch's dynamic kernels do. ``kdr``'s export check then
compares the ONNX model's outputs with the int8 PyTorch model's.

>>> from torch import nn
>>> has_dynamic_linear(nn.Sequential(nn.Linear(2, 2)))
False
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn


def _dynamic_types() -> tuple[type[nn.Module], ...]:
    from torch.ao.nn.intrinsic.quantized import dynamic as fused
    from torch.ao.nn.quantized import dynamic

    return (dynamic.Linear, fused.LinearReLU)


def _weight(m: nn.Module) -> torch.Tensor:
    """A dynamic int8 Linear's packed weight (a method there, not a parameter)."""
    return m.weight()  # type: ignore[operator]


def has_dynamic_linear(model: nn.Module) -> bool:
    kinds = _dynamic_types()
    return any(isinstance(m, kinds) for m in model.modules())


def _per_channel(model: nn.Module) -> bool:
    kinds = _dynamic_types()
    return any(
        _weight(m).qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        for m in model.modules()
        if isinstance(m, kinds)
    )


def dequantized_copy(model: nn.Module) -> nn.Module:
    """A float copy: every dynamic int8 Linear becomes a float Linear (+ ReLU when fused) with
    its dequantized weights."""
    _, fused = _dynamic_types()
    out = copy.deepcopy(model)
    kinds = _dynamic_types()
    for name, m in list(out.named_modules()):
        if not name or not isinstance(m, kinds):
            continue
        w, b = _weight(m).dequantize(), m.bias()  # type: ignore[operator]
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if b is not None:
                lin.bias.copy_(b)
        new: nn.Module = nn.Sequential(lin, nn.ReLU()) if isinstance(m, fused) else lin
        parent, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, attr, new)
    if isinstance(out, torch.fx.GraphModule):
        out.recompile()
    return out


def bind_default_inputs(model: nn.Module) -> nn.Module:
    """A torch.fx graph of a model whose ``forward`` takes optional arguments (timm's
    ``attn_mask=None, is_causal=False``) keeps them as inputs with defaults, which torch's ONNX
    exporter turns into tensors (``is_causal must be bool, not Tensor``): fold every input but
    the first into its default value, in a copy."""
    if not isinstance(model, torch.fx.GraphModule):
        return model
    gm = copy.deepcopy(model)
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    for node in inputs[1:]:
        if not node.args:  # no default: a real input, leave the graph alone
            return model
        default = node.args[0]
        for user in list(node.users):
            user.args = tuple(default if a is node else a for a in user.args)
            user.kwargs = {k: default if v is node else v for k, v in user.kwargs.items()}
        if not node.users:
            gm.graph.erase_node(node)
    gm.recompile()
    return gm


def onnx_dynamic_int8(
    model: nn.Module, path: Path, example: torch.Tensor, export: Callable[..., None]
) -> None:
    """Export ``model`` (dynamic int8) to ``path`` through a float graph + ORT quantization."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_path = path.with_name(f"{path.stem}.float{path.suffix}")
    root = logging.getLogger()
    level = root.level
    try:
        export(dequantized_copy(model), float_path, example)
        root.setLevel(logging.ERROR)  # ORT's advice to pre-process, printed on every call
        quantize_dynamic(
            str(float_path),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=_per_channel(model),
        )
    finally:
        root.setLevel(level)
        float_path.unlink(missing_ok=True)


__all__ = ["bind_default_inputs", "dequantized_copy", "has_dynamic_linear", "onnx_dynamic_int8"]
