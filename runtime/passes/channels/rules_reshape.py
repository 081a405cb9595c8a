"""Op rules for ``view`` / ``reshape`` / ``squeeze``: where the channel dim goes, and what sizes it.

The channel dim is kept (possibly merged with the dims right after it, as ``flatten`` does),
split into heads or merged with them (:mod:`.rules_heads`). The size requested at the channel
position must stay true once channels are removed:

- ``-1``: torch recomputes it;
- a model attribute that surgery keeps up to date (:func:`.attr_dims.backed_constant`);
- a channel count read in Python, a :class:`~.walker.Sym` (``x.view(B, H, W, C)``,
  ``q.reshape(B, N, heads, C // heads)``): the walker *ties* it to the dim it sizes
  (:meth:`~.walker.GraphWalker.tie`), so both keep the same count. ``C`` read from the tensor
  itself (Swin's window partition, PVT-v2's ``x.transpose(1, 2).view(B, C, H, W)``) ties
  nothing new; read from another tensor (CaiT's class attention sizes ``q`` by the residual
  stream's ``C``) it couples the two by index.

Any other constant or computed count would go stale: the reshape is not understood (blocked).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import fx

from .attr_dims import backed_constant
from .op_rules import Info, arg, function_rule, method_rule
from .rules_heads import split_or_merge
from .walker import GraphWalker


def prod(xs: Any) -> int:
    return int(math.prod(int(x) for x in xs))


def rest(node: fx.Node) -> list[Any]:
    """``x.view(a, b)`` and ``x.view((a, b))`` alike: the sizes after ``self``."""
    args: Any = node.args
    return list(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])


@method_rule("view", "reshape")
def reshape_method(w: GraphWalker, node: fx.Node) -> Info | None:
    return reshape(w, node, rest(node))


@function_rule(torch.reshape)
def reshape_function(w: GraphWalker, node: fx.Node) -> Info | None:
    return reshape(w, node, list(arg(node, 1, "shape")))


@method_rule("squeeze", "unsqueeze")
@function_rule(torch.squeeze, torch.unsqueeze)
def squeeze(w: GraphWalker, node: fx.Node) -> Info | None:
    return reshape(w, node, None)


def reshape(w: GraphWalker, node: fx.Node, shape_args: list[Any] | None) -> Info | None:
    """view/reshape/squeeze: channel dim kept, or merged with the dims right after it, or
    split / merged with heads; sized by ``-1``, a backed attribute or a tied symbol."""
    src: Any = node.args[0]
    i, sout = w.get(src), w.shapes.get(node)
    if i is None and sout is not None:
        param_view(w, node, src, sout, shape_args)
        return None
    sin = w.shapes.get(src) if isinstance(src, fx.Node) else None
    if i is None or sin is None or sout is None:
        return None
    d, size = i.dim, len(i.atoms)
    full = shape_args is not None and len(shape_args) == len(sout)
    for j in range(len(sout)):
        if prod(sout[:j]) != prod(sin[:d]):
            continue
        piece = shape_args[j] if shape_args is not None and full else None
        sym = w.sym(piece)
        layer = None
        if full and piece != -1 and sym is None:
            path = str(node.meta.get("kdr_module", ""))  # the module whose forward reshapes
            layer = backed_constant(w.modules.get(path), piece)
            layer = f"{path}.{layer}" if path and layer else layer
        constant = shape_args is not None and (not full or piece != -1)
        if constant and layer is None and sym is None:
            continue  # a constant or computed channel count may be stale after pruning
        for k in range(d + 1, len(sin) + 1):
            inner = prod(sin[d + 1 : k])
            if sout[j] != size * inner:
                continue
            out = [a for a in i.atoms for _ in range(inner)]
            if layer is not None:  # the model's attribute: tied to that layer's outputs
                if inner != 1 or f"{layer}:out" not in w.dg.endpoints:
                    break
                w.dg.union(i.atoms, w.dg.endpoints[f"{layer}:out"].atoms)
            elif sym is not None and not w.tie(piece, out):
                break
            return Info(j, out)
    owner = w.modules.get(str(node.meta.get("kdr_module", "")))
    return split_or_merge(w, i, sin, sout, shape_args, owner) or w.unknown(node)


@method_rule("repeat")
def repeat(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.repeat(B, 1, 1, 1)`` (XCiT's positional encoding, tiled over the batch): the
    channels stay where they are when their dim is repeated once (a literal ``1``) and no
    dim is added; repeating the channels themselves is not understood."""
    src: Any = node.args[0]
    i, sizes = w.get(src), rest(node)
    if i is None:
        return None
    if len(sizes) != w.ndim(src) or sizes[i.dim] != 1 or isinstance(sizes[i.dim], bool):
        return w.unknown(node)
    return Info(i.dim, i.atoms)


def param_view(
    w: GraphWalker, node: fx.Node, src: Any, sout: Any, shape_args: list[Any] | None
) -> None:
    """A parameter (or view of one) with one non-1 dim, viewed with one non-1 dim: record
    where the parameter's channels sit, so arithmetic can slice the parameter. As for
    tensors, the requested size there must be ``-1`` (``view(dim, 1, 1)`` would go stale)."""
    param = w.param_of(src)
    if param is None:
        return
    big_in = [k for k, n in enumerate(param[1]) if n != 1]
    big_out = [k for k, n in enumerate(sout) if n != 1]
    if len(big_in) != 1 or len(big_out) != 1 or param[1][big_in[0]] != sout[big_out[0]]:
        return
    if shape_args is not None and (len(shape_args) != len(sout) or shape_args[big_out[0]] != -1):
        return
    w.handled.add(src)
    w.param_views[node] = (param[0], big_out[0], big_in[0] if param[3] == -1 else param[3])


__all__ = ["param_view", "prod", "repeat", "reshape", "rest"]
