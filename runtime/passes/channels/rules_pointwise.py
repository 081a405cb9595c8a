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
from torch import fx, nn
from torch.nn import functional as F

from .op_rules import Info, arg, function_rule, method_rule, module_rule
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
    return pad_widths(w, node, arg(node, 0, "input"), arg(node, 1, "pad"))


def pad_widths(w: GraphWalker, node: fx.Node, src: Any, widths: Any) -> Info | None:
    i, nd = w.get(src), w.ndim(src)
    w.block_inputs(node, f"extra input of `{node.name}`", keep=src)
    if i is None or nd is None:
        return None
    if not isinstance(widths, (list, tuple)):
        return w.unknown(node)
    # computed widths (Swin's ``(ws - H % ws) % ws``) may pad spatial dims, not the channels
    padded = {nd - 1 - k // 2 for k, p in enumerate(widths) if not isinstance(p, int) or p}
    return w.unknown(node) if i.dim in padded else Info(i.dim, i.atoms)


PAD_MODULES: tuple[type[nn.Module], ...] = (
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d,
    nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d,
    nn.ReplicationPad1d, nn.ReplicationPad2d, nn.ReplicationPad3d, nn.CircularPad1d,
    nn.CircularPad2d, nn.CircularPad3d,
)  # fmt: skip


@module_rule(*PAD_MODULES)
def pad_module(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
    """``nn.ZeroPad2d`` and kin pad the last 1-3 dims by ``m.padding``: as ``F.pad``."""
    return pad_widths(w, node, node.args[0], list(m.padding))


@method_rule("norm")
@function_rule(torch.norm)
def norm(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.norm(p, dim, keepdim)``: a reduction (an L-p norm over every dim is not one here)."""
    return reduce_dims(w, node, arg(node, 2, "dim"), bool(arg(node, 3, "keepdim")))


@function_rule(torch.linalg.vector_norm)
def vector_norm(w: GraphWalker, node: fx.Node) -> Info | None:
    return reduce_dims(w, node, arg(node, 2, "dim"), bool(arg(node, 3, "keepdim")))


@function_rule(torch.einsum)
def einsum(w: GraphWalker, node: fx.Node) -> Info | None:
    """``torch.einsum`` by its subscripts: the tracked channel letter is followed.

    Every operand holding that letter is coupled (a tracked tensor) or sliced along it (a
    parameter: ``"bnc,dc->bnd"`` is a linear layer whose weight loses columns); the output
    carries the channels at the letter's position, or none when the letter is summed away.
    Ellipses, repeated letters and several tracked letters are not understood.
    """
    eq: Any = node.args[0]
    rest: Any = node.args[1:]
    ops = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
    if not isinstance(eq, str) or "..." in eq or "->" not in eq:
        return w.unknown(node)
    lhs, out = eq.replace(" ", "").split("->")
    subs = lhs.split(",")
    if len(subs) != len(ops) or any(len(set(s)) != len(s) for s in subs):
        return w.unknown(node)
    infos = [w.get(x) for x in ops]
    tracked = {(s[i.dim], len(i.atoms)) for s, i in zip(subs, infos, strict=True) if i}
    if len(tracked) != 1:
        return None if not tracked else w.unknown(node)
    letter, size = tracked.pop()
    atoms = next(i.atoms for i in infos if i is not None)
    for s, x, i in zip(subs, ops, infos, strict=True):
        if i is not None:
            w.dg.union(atoms, i.atoms)
            continue
        if letter not in s:
            continue
        param, pdim = w.param_of(x), s.index(letter)
        other_dims = {
            ep.dim for ep in w.dg.endpoints.values() if param and ep.target == param[0]
        } - {pdim}
        if param is not None and param[2] == -1 and param[1][pdim] == size and not other_dims:
            w.handled.add(x)
            w.dg.union(atoms, w.dg.endpoint(param[0], "param", size, pdim).atoms)
        else:
            w.dg.block(atoms, f"`{node.name}` contracts channels with an untracked tensor")
    return Info(out.index(letter), atoms) if letter in out else None


__all__ = ["addcmul", "einsum", "norm", "pad", "vector_norm"]
