"""Op rules for more element-wise ops: ``addcmul``/``addcdiv``, ``pad``, ``norm``.

``addcmul(beta, alpha, x)`` (ResMLP's affine layer, GRN) is element-wise over three operands:
they are coupled like a binary op's, parameters of channel size becoming ``param`` endpoints.
``pad`` keeps the channels where they are unless it pads the channel dim itself (then the
padded count is a constant of the code: blocked). ``norm`` over dims that exclude the channel
dim (GRN's spatial L2 norm) keeps one value per channel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx
from torch.nn import functional as F

from .op_rules import Info, arg, function_rule, method_rule
from .rules_tensor import elementwise, reduce_dims
from .walker import GraphWalker


@method_rule("addcmul", "addcdiv")
@function_rule(torch.addcmul, torch.addcdiv)
def addcmul(w: GraphWalker, node: fx.Node) -> Info | None:
    operands = [arg(node, 0, "input"), arg(node, 1, "tensor1"), arg(node, 2, "tensor2")]
    if isinstance(node.kwargs.get("value"), fx.Node):
        return w.unknown(node)
    return elementwise(w, node, operands)


@function_rule(F.pad)
def pad(w: GraphWalker, node: fx.Node) -> Info | None:
    src: Any = arg(node, 0, "input")
    i, nd, widths = w.get(src), w.ndim(src), arg(node, 1, "pad")
    w.block_inputs(node, f"extra input of `{node.name}`", keep=src)
    if i is None or nd is None:
        return None
    if not isinstance(widths, (list, tuple)) or not all(isinstance(p, int) for p in widths):
        return w.unknown(node)
    padded = {nd - 1 - k // 2 for k, p in enumerate(widths) if p}
    return w.unknown(node) if i.dim in padded else Info(i.dim, i.atoms)


@method_rule("norm")
@function_rule(torch.norm)
def norm(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.norm(p, dim, keepdim)``: a reduction (an L-p norm over every dim is not one here)."""
    return reduce_dims(w, node, arg(node, 2, "dim"), bool(arg(node, 3, "keepdim")))


@function_rule(torch.linalg.vector_norm)
def vector_norm(w: GraphWalker, node: fx.Node) -> Info | None:
    return reduce_dims(w, node, arg(node, 2, "dim"), bool(arg(node, 3, "keepdim")))


__all__ = ["addcmul", "norm", "pad", "vector_norm"]
