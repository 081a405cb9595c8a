"""Op rules for element-wise and shape ops: activations, pools, arithmetic, reductions, views.

``cat`` concatenates atom lists (DenseNet's offsets come for free) and ``flatten`` repeats them
(one conv channel -> ``H*W`` Linear features); broadcasting arithmetic couples the channels of
both operands (residual adds, squeeze-excitation scales) and turns a ``get_attr`` operand of
channel size, or a ``-1`` view of one (``gamma.reshape(1, -1, 1, 1)``), into a ``param``
endpoint (layer-scale). Splits and indexing are in :mod:`.rules_split`, ``addcmul``/``pad``/
``norm``/``einsum`` in :mod:`.rules_pointwise`, ``view``/``reshape`` in :mod:`.rules_reshape`,
arithmetic on channel counts read in Python in :mod:`.rules_symbolic`. Every list of op names
exists once, here, as the keys it registers.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from .op_rules import (
    Info,
    arg,
    function_rule,
    method_rule,
    module_rule,
    predicate_rule,
    target_name,
)
from .rules_reshape import prod as _prod
from .rules_reshape import rest as _rest
from .rules_symbolic import sym_arith
from .walker import GraphWalker

#: Modules that act on each channel independently and keep the channel dim where it is.
PASS_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
    nn.LeakyReLU, nn.ELU, nn.SELU, nn.Mish, nn.Hardtanh, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d,
)  # fmt: skip
PASS_FUNCS: tuple[Any, ...] = (
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.leaky_relu,
    F.elu, F.selu, F.mish, F.hardtanh, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d,
    F.alpha_dropout, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.interpolate, torch.relu, torch.sigmoid,
    torch.tanh, torch.clone, operator.neg,
)  # fmt: skip
PASS_METHODS = ("relu", "relu_", "sigmoid", "sigmoid_", "tanh", "contiguous", "clone", "float",
                "to", "detach", "neg")  # fmt: skip
BINARY_FUNCS: tuple[Any, ...] = (
    operator.add, operator.iadd, operator.mul, operator.imul, operator.sub, operator.isub,
    operator.truediv, operator.itruediv, torch.add, torch.mul, torch.sub, torch.div,
)  # fmt: skip
BINARY_METHODS = ("add", "add_", "mul", "mul_", "sub", "sub_", "div", "div_")
REDUCE_METHODS = ("mean", "sum", "amax", "amin")
REDUCE_FUNCS: tuple[Any, ...] = (torch.mean, torch.sum, torch.amax, torch.amin)
#: ``x.ndim``, ``x.dtype``...: attribute reads that say nothing about channels.
META_ATTRS = frozenset({"ndim", "dtype", "device", "is_cuda", "requires_grad", "layout"})


# -- shape reads --------------------------------------------------------------------------------
@method_rule("size")
def size_method(w: GraphWalker, node: fx.Node) -> Info | None:
    return w.size_read(node, node.args[0], arg(node, 1, "dim"))


@method_rule("dim")
def dim_method(w: GraphWalker, node: fx.Node) -> Info | None:
    return None


@function_rule(getattr)
def getattr_rule(w: GraphWalker, node: fx.Node) -> Info | None:
    if node.args[1] == "shape":
        return w.size_read(node, node.args[0], None)
    if node.args[1] in META_ATTRS:  # a weight's device or dtype stays what it was: not opaque
        if isinstance(node.args[0], fx.Node):
            w.handled.add(node.args[0])
        return None
    return w.unknown(node)


# -- element-wise -------------------------------------------------------------------------------
def _is_stochastic_depth(target: Any) -> bool:
    """torchvision's fx-wrapped ``stochastic_depth``: per-sample noise, channel-independent."""
    return target_name(target) == "stochastic_depth" and str(
        getattr(target, "__module__", "")
    ).startswith("torchvision")


@predicate_rule(_is_stochastic_depth)
@method_rule(*PASS_METHODS)
@function_rule(*PASS_FUNCS)
def passthrough(w: GraphWalker, node: fx.Node) -> Info | None:
    src: Any = node.args[0]
    w.block_inputs(node, f"extra input of `{node.name}`", keep=src)
    i, nd = w.get(src), w.ndim(src)
    if i is None or nd != w.ndim(node):
        return w.unknown(node) if i is not None else None
    return Info(i.dim, i.atoms)


@module_rule(*PASS_MODULES)
def passthrough_module(w: GraphWalker, node: fx.Node, m: nn.Module) -> Info | None:
    return passthrough(w, node)


@function_rule(*BINARY_FUNCS)
def binary_function(w: GraphWalker, node: fx.Node) -> Info | None:
    return binary(w, node, arg(node, 0, "input"), arg(node, 1, "other"))


@method_rule(*BINARY_METHODS)
def binary_method(w: GraphWalker, node: fx.Node) -> Info | None:
    args: Any = node.args
    return binary(w, node, args[0], args[1] if len(args) > 1 else node.kwargs.get("other"))


def binary(w: GraphWalker, node: fx.Node, a: Any, b: Any) -> Info | None:
    if (w.sym(a) is not None or w.sym(b) is not None) and w.get(a) is w.get(b) is None:
        return sym_arith(w, node, a, b)  # ``C * 2``: Python ints (``x * C`` lets ``C`` escape)
    return elementwise(w, node, [a, b])


def elementwise(w: GraphWalker, node: fx.Node, operands: list[Any]) -> Info | None:
    """Element-wise op with broadcasting: residual adds, SE scales, layer-scale params.

    Tracked operands are coupled; a parameter (or a view of one, ``gamma.reshape(1, -1, 1,
    1)``) of channel size becomes a ``param`` endpoint; a size-1 or missing channel axis
    broadcasts; any other untracked tensor of channel size blocks (it could not shrink).
    """
    nd = w.ndim(node)
    if nd is None:
        return w.unknown(node)
    carriers: list[tuple[int, Info]] = []
    for x in operands:
        i, xd = w.get(x), w.ndim(x)
        if i is not None and xd is not None:
            carriers.append((i.dim + nd - xd, i))
    if not carriers:
        return None
    dims = {d for d, _ in carriers}
    atoms = carriers[0][1].atoms
    if len(dims) != 1 or any(len(i.atoms) != len(atoms) for _, i in carriers):
        return w.unknown(node)
    d, size = dims.pop(), len(atoms)
    for _, i in carriers[1:]:
        w.dg.union(atoms, i.atoms)
    for x in operands:
        if not isinstance(x, fx.Node) or w.get(x) is not None:
            continue
        param = w.param_of(x)
        shape = param[1] if param is not None else w.shapes.get(x)
        if shape is None:
            continue  # a Python number
        xdim = d - (nd - len(shape))
        if xdim < 0 or shape[xdim] == 1 or size == 1:
            w.handled.add(x)
        elif shape[xdim] == size and param is not None and param[2] in (-1, xdim):
            w.handled.add(x)
            pdim = xdim if param[3] == -1 else param[3]
            w.dg.union(atoms, w.dg.endpoint(param[0], "param", size, pdim).atoms)
        else:
            w.dg.block(atoms, f"`{node.name}` mixes channels with an untracked tensor")
    return Info(d, atoms)


@method_rule(*REDUCE_METHODS)
@function_rule(*REDUCE_FUNCS)
def reduce(w: GraphWalker, node: fx.Node) -> Info | None:
    return reduce_dims(w, node, arg(node, 1, "dim"), bool(arg(node, 2, "keepdim")))


def reduce_dims(w: GraphWalker, node: fx.Node, dims: Any, keepdim: bool) -> Info | None:
    """A reduction over ``dims``: the channels survive unless the channel dim is reduced.

    A mean, max or min *over* the channels (CBAM's spatial attention, GRN's mean response)
    has no channel axis left and the same value range with fewer channels, like a LayerNorm's
    statistics: the input stays prunable. A sum or norm over them would scale with the count.
    """
    i, nd = w.get(node.args[0]), w.ndim(node.args[0])
    if i is None or nd is None:
        return None
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        return w.unknown(node)
    if not all(isinstance(d, int) for d in (dims if isinstance(dims, (list, tuple)) else [dims])):
        return w.unknown(node)
    dl = [int(d) % nd for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
    if i.dim in dl:
        scale_free = target_name(node.target) in ("mean", "amax", "amin")
        return None if scale_free else w.unknown(node)
    return Info(i.dim if keepdim else i.dim - sum(d < i.dim for d in dl), i.atoms)


# -- views --------------------------------------------------------------------------------------
@method_rule("flatten")
@function_rule(torch.flatten)
def flatten_call(w: GraphWalker, node: fx.Node) -> Info | None:
    return flatten(w, node, arg(node, 1, "start_dim", 0), arg(node, 2, "end_dim", -1))


@module_rule(nn.Flatten)
def flatten_module(w: GraphWalker, node: fx.Node, m: nn.Flatten) -> Info | None:
    return flatten(w, node, m.start_dim, m.end_dim)


def flatten(w: GraphWalker, node: fx.Node, start: int, end: int) -> Info | None:
    src: Any = node.args[0]
    i, shape = w.get(src), w.shapes.get(src)
    if i is None or shape is None:
        return None
    start, end = start % len(shape), end % len(shape)
    if i.dim < start:
        return Info(i.dim, i.atoms)
    if i.dim > end:
        return Info(i.dim - (end - start), i.atoms)
    size, inner = len(i.atoms), _prod(shape[i.dim + 1 : end + 1])
    outer = _prod(shape[start : i.dim])
    return Info(start, [i.atoms[(k // inner) % size] for k in range(outer * size * inner)])


@method_rule("expand")
def expand(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.expand(B, -1, -1)``: a tensor's channels stay where they are (its size there must be
    ``-1``); a parameter with one non-1 dim (ViT's ``cls_token``) becomes a view of it, so a
    ``cat`` with the patch tokens can slice it."""
    src: Any = node.args[0]
    sizes, nd, sout = _rest(node), w.ndim(node), w.shapes.get(node)
    i = w.get(src)
    if i is not None:
        if nd != w.ndim(src) or len(sizes) != nd or sizes[i.dim] != -1:
            return w.unknown(node)
        return Info(i.dim, i.atoms)
    param = w.param_of(src)
    if param is None or sout is None or not len(param[1]) == len(sout) == len(sizes):
        return None
    big = [k for k, n in enumerate(param[1]) if n != 1]
    if len(big) == 1 and sizes[big[0]] == -1:
        w.handled.add(src)
        w.param_views[node] = (param[0], big[0], big[0] if param[3] == -1 else param[3])
    return None


@method_rule("permute")
def permute_method(w: GraphWalker, node: fx.Node) -> Info | None:
    return permute(w, node, _rest(node))


@function_rule(torch.permute)
def permute_function(w: GraphWalker, node: fx.Node) -> Info | None:
    return permute(w, node, list(arg(node, 1, "dims")))


def permute(w: GraphWalker, node: fx.Node, dims: list[int]) -> Info | None:
    i, nd = w.get(node.args[0]), w.ndim(node.args[0])
    if i is None or nd is None:
        return None
    return Info([int(x) % nd for x in dims].index(i.dim), i.atoms)


@method_rule("transpose", "swapaxes")
@function_rule(torch.transpose, torch.swapaxes)
def transpose(w: GraphWalker, node: fx.Node) -> Info | None:
    args: Any = node.args
    d0, d1 = args[1], args[2]
    i, nd = w.get(args[0]), w.ndim(args[0])
    if i is None or nd is None:
        return None
    swap = {d0 % nd: d1 % nd, d1 % nd: d0 % nd}
    return Info(swap.get(i.dim, i.dim), i.atoms)


@function_rule(torch.cat, torch.concat, torch.concatenate)
def cat(w: GraphWalker, node: fx.Node) -> Info | None:
    tensors, dim = arg(node, 0, "tensors"), arg(node, 1, "dim", 0)
    if not isinstance(tensors, (list, tuple)):
        return w.unknown(node)  # a tuple node (``torch.cat(x.split(...))``): pieces blocked
    nd = w.ndim(node)
    infos = [w.get(t) for t in tensors]
    if nd is None or all(i is None for i in infos):
        return None
    dim = dim % nd
    if any(i is not None and i.dim == dim for i in infos):  # concatenating channels
        atoms: list[int] = []
        for t, i in zip(tensors, infos, strict=True):
            if i is not None and i.dim == dim:
                atoms += i.atoms
            else:
                if i is not None:
                    w.dg.block(i.atoms, f"`{node.name}` mixes channel dims")
                shape = w.shapes.get(t)
                n = int(shape[dim]) if shape is not None else 0
                atoms += w.dg.new_atoms(n, f"untracked input of `{node.name}`")
        return Info(dim, atoms)
    known = [i for i in infos if i is not None]
    if len({(i.dim, len(i.atoms)) for i in known}) != 1:
        return w.unknown(node)
    d, atoms = known[0].dim, known[0].atoms
    for t, i in zip(tensors, infos, strict=True):
        if i is None:  # a parameter (ViT's class token) joins the tokens: slice it with them
            param = w.param_of(t)
            if param is None or param[2] != d or param[1][d] != len(atoms):
                return w.unknown(node)
            w.handled.add(t)
            w.dg.union(atoms, w.dg.endpoint(param[0], "param", len(atoms), param[3]).atoms)
    for i in known[1:]:
        w.dg.union(atoms, i.atoms)
    return Info(d, atoms)
