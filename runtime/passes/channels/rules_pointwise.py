"""Op rules for more element-wise ops: ``addcmul``/``addcdiv``, ``pad``, ``roll``, ``norm``,
``normalize``, ``new_empty``.

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

from .attr_dims import backed_view
from .op_rules import METHOD_RULES, Info, NodeRule, arg, function_rule, method_rule, module_rule
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
    # Pair k pads dim ``nd - 1 - k``; sizes computed in Python (Swin pads H and W up to its
    # window by ``(ws - H % ws) % ws``) are fine on any dim but the channel one.
    padded = {nd - 1 - k // 2 for k, p in enumerate(widths) if not (isinstance(p, int) and p == 0)}
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


@method_rule("roll")
@function_rule(torch.roll)
def roll(w: GraphWalker, node: fx.Node) -> Info | None:
    """``torch.roll(x, shifts, dims)`` (Swin's cyclic shift) moves entries along ``dims``: the
    channels stay unless the channel dim is rolled (or no dims: the flattened tensor is)."""
    src, dims = arg(node, 0, "input"), arg(node, 2, "dims")
    i, nd = w.get(src), w.ndim(src)
    w.block_inputs(node, f"extra input of `{node.name}`", keep=src)
    if i is None or nd is None:
        return None
    dl = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    if not dl or not all(isinstance(d, int) for d in dl) or i.dim in {d % nd for d in dl}:
        return w.unknown(node)
    return Info(i.dim, i.atoms)


@method_rule("new_empty", "new_zeros", "new_ones", "new_full")
def new_tensor(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.new_empty(shape)`` (timm's ``drop_path`` noise) reads only ``x``'s dtype and device:
    a fresh tensor with no channels of ``x``. A shape holding a channel count stays checked
    where it is read, and the result, if of channel size, where it meets tracked channels."""
    return None


@method_rule("norm")
@function_rule(torch.norm)
def norm(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.norm(p, dim, keepdim)``: a reduction (an L-p norm over every dim is not one here)."""
    return reduce_dims(w, node, arg(node, 2, "dim"), bool(arg(node, 3, "keepdim")))


@function_rule(F.normalize)
def normalize(w: GraphWalker, node: fx.Node) -> Info | None:
    """``F.normalize(x, dim=d)`` divides by a norm over ``d``: channel-wise unless ``d`` is the
    channel dim (that norm sums over the channels, so it would change with their count)."""
    src, dim = arg(node, 0, "input"), arg(node, 2, "dim", 1)
    i, nd = w.get(src), w.ndim(src)
    w.block_inputs(node, f"extra input of `{node.name}`", keep=src)
    if i is None or nd is None:
        return None
    if not isinstance(dim, int) or dim % nd == i.dim or arg(node, 4, "out") is not None:
        return w.unknown(node)
    return Info(i.dim, i.atoms)


@function_rule(torch.linalg.vector_norm)
def vector_norm(w: GraphWalker, node: fx.Node) -> Info | None:
    return reduce_dims(w, node, arg(node, 2, "dim"), bool(arg(node, 3, "keepdim")))


def _view_by_attribute(rule: NodeRule) -> NodeRule:
    """Wrap the ``view``/``reshape`` rule: a parameter with one non-1 dim viewed by its
    module's own shape attribute (:data:`.attr_dims.ATTR_VIEWS`, MetaFormer's
    ``self.scale.view(self.shape)``) becomes a view of that parameter, as a ``-1`` view would
    (arithmetic then slices it); the family's fixup rewrites the attribute after surgery."""

    def view(w: GraphWalker, node: fx.Node) -> Info | None:
        args: Any = node.args
        src, sout = args[0], w.shapes.get(node)
        shape = list(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
        owner = w.modules.get(str(node.meta.get("kdr_module")))
        param = w.param_of(src) if w.get(src) is None else None
        if param is None or sout is None or not backed_view(owner, shape):
            return rule(w, node)
        big_in = [k for k, n in enumerate(param[1]) if n != 1]
        big_out = [k for k, n in enumerate(sout) if n != 1]
        if len(big_in) != 1 or len(big_out) != 1 or param[1][big_in[0]] != sout[big_out[0]]:
            return rule(w, node)
        w.handled.add(src)
        w.param_views[node] = (param[0], big_out[0], big_in[0] if param[3] == -1 else param[3])
        return None

    return view


for _name in ("view", "reshape"):
    METHOD_RULES[_name] = _view_by_attribute(METHOD_RULES[_name])


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


__all__ = ["addcmul", "einsum", "new_tensor", "norm", "normalize", "pad", "roll", "vector_norm"]
