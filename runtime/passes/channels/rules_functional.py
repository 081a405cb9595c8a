"""Op rules for functional layers: ``F.batch_norm``/``group_norm``/``linear``/``conv*d`` on the
parameters of one owner module.

fx traces *into* every module that is not defined in ``torch.nn`` (timm's ``BatchNormAct2d``,
``GroupNormAct``, ``Linear``, ``Conv2dSame``, ``ScaledStdConv2d``): what reaches the graph is the
functional call, with the module's weights as ``get_attr`` nodes. When those all belong to one
module of a type with a pruner (a BatchNorm/GroupNorm/Linear/Conv subclass) the rule puts the
endpoints on that *owner*, exactly as if it had been called as a leaf, so the pruner sliced by
MRO also updates ``num_features``/``out_channels``, which the owner's own forward reads back.
Other per-channel tensors of a batch/group norm (owned by modules without a pruner) become
``param`` endpoints. Anything else (a computed weight, a foreign owner) blocks, with its reason.

Weight standardization (timm's ``StdConv2d``/``ScaledStdConv2d``: ``F.batch_norm`` over
``weight.reshape(1, out, -1)``, optionally with a per-filter ``gain``, then ``F.conv2d``) is
recognised: each output filter is standardized on its own, so output channels slice exactly;
pruning *input* channels re-standardizes each kept filter over fewer weights (a change of the
kept filters' scale that fine-tuning absorbs, like any pruned LayerNorm's statistics).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from .op_rules import Info, arg, function_rule, method_rule
from .rules_layers import conv, linear
from .rules_reshape import reshape
from .walker import GraphWalker

NORM_ATTRS = frozenset({"weight", "bias", "running_mean", "running_var"})
MUL_FUNCS: tuple[Any, ...] = (operator.mul, torch.mul)


def owner_of(w: GraphWalker, tensors: list[Any]) -> tuple[str, nn.Module] | None:
    """The one module whose direct attributes all the ``get_attr`` nodes in ``tensors`` read
    (``None`` entries are absent arguments), or None."""
    nodes = [t for t in tensors if t is not None]
    if not nodes or not all(isinstance(t, fx.Node) and t.op == "get_attr" for t in nodes):
        return None
    owners = {str(t.target).rpartition(".")[0] for t in nodes}
    if len(owners) != 1:
        return None
    name = owners.pop()
    mod = w.modules.get(name)
    return None if mod is None else (name, mod)


def _norm_owner(w: GraphWalker, tensors: list[Any], size: int) -> str | None:
    """A norm-layer owner of ``tensors`` with ``size`` channels, whose pruner slices them all."""
    found = owner_of(w, tensors)
    if found is None:
        return None
    name, mod = found
    attrs = {str(t.target).rpartition(".")[2] for t in tensors if t is not None}
    feats = getattr(mod, "num_channels" if isinstance(mod, nn.GroupNorm) else "num_features", None)
    is_norm = isinstance(mod, (nn.modules.batchnorm._NormBase, nn.GroupNorm))
    return name if is_norm and attrs <= NORM_ATTRS and feats == size else None


def per_channel_norm(w: GraphWalker, node: fx.Node, tensors: list[Any]) -> Info | None:
    """A norm over dim 1 whose per-channel tensors are ``tensors``: couple them with the input."""
    src: Any = arg(node, 0, "input")
    i = w.get(src)
    if i is None:
        return None
    if i.dim != 1:
        return w.unknown(node)
    size = len(i.atoms)
    owner = _norm_owner(w, tensors, size)
    if owner is not None:
        w.dg.union(i.atoms, w.dg.endpoint(owner, "norm", size).atoms)
        w.handled |= {t for t in tensors if t is not None}
        return Info(1, i.atoms)
    for t in tensors:
        if t is None:
            continue
        shape = w.attr_shape(t) if isinstance(t, fx.Node) and t.op == "get_attr" else None
        if shape is None or tuple(shape) != (size,):
            w.dg.block(i.atoms, f"`{node.name}` normalises with a computed per-channel tensor")
            continue
        w.handled.add(t)
        w.dg.union(i.atoms, w.dg.endpoint(str(t.target), "param", size, 0).atoms)
    return Info(1, i.atoms)


@function_rule(F.batch_norm)
def functional_batch_norm(w: GraphWalker, node: fx.Node) -> Info | None:
    """``F.batch_norm`` (timm's ``BatchNormAct2d``), or the standardization of a conv weight."""
    # A standardized conv weight's batch_norm reads no tracked tensor: None, until its conv
    # claims the pattern (std_conv_weight); unclaimed, its parameters stay opaque.
    names = ("running_mean", "running_var", "weight", "bias")
    return per_channel_norm(w, node, [arg(node, k + 1, n) for k, n in enumerate(names)])


@function_rule(F.group_norm)
def functional_group_norm(w: GraphWalker, node: fx.Node) -> Info | None:
    """``F.group_norm`` (timm's ``GroupNormAct``): equal keep per group, as ``nn.GroupNorm``."""
    i, groups = w.get(arg(node, 0, "input")), arg(node, 1, "num_groups")
    tensors = [arg(node, 2, "weight"), arg(node, 3, "bias")]
    if i is None or not isinstance(groups, int):
        return None if i is None else w.unknown(node)
    size = len(i.atoms)
    if groups == size and not isinstance(
        (owner_of(w, tensors) or ("", None))[1], nn.GroupNorm
    ):  # one channel per group: the group count would have to follow the pruning
        return w.unknown(node)
    out = per_channel_norm(w, node, tensors)
    if out is not None and 1 < groups < size:
        size_pg = size // groups
        w.dg.partitions.append([out.atoms[k * size_pg : (k + 1) * size_pg] for k in range(groups)])
    return out


@function_rule(F.linear)
def functional_linear(w: GraphWalker, node: fx.Node) -> Info | None:
    """``F.linear`` on an ``nn.Linear`` subclass's own weights (timm's ``Linear``)."""
    found = owner_of(w, [arg(node, 1, "weight"), arg(node, 2, "bias")])
    if found is None or not isinstance(found[1], nn.Linear):
        return w.unknown(node)
    w.handled |= set(node.all_input_nodes) - {node.args[0]}
    return linear(w, node, found[1], found[0])


@function_rule(F.conv1d, F.conv2d, F.conv3d)
def functional_conv(w: GraphWalker, node: fx.Node) -> Info | None:
    """``F.conv*d`` on a conv subclass's weights (``Conv2dSame``, weight-standardized convs)."""
    weight, bias = arg(node, 1, "weight"), arg(node, 2, "bias")
    found = owner_of(w, [weight, bias])
    extra: list[fx.Node] = []
    if found is None and isinstance(weight, fx.Node):
        std = std_conv_weight(w, weight)
        if std is not None:
            found = owner_of(w, [std[0], bias])
            weight, extra = std
    m = found[1] if found is not None else None
    if not isinstance(m, nn.modules.conv._ConvNd) or arg(node, 6, "groups", 1) != m.groups:
        return w.unknown(node)  # another module's weights, or grouped unlike its owner
    assert found is not None
    out = conv(w, node, m, found[0])
    for gain in extra:  # per-filter gains of a standardized weight
        size = len(out.atoms)
        w.dg.union(out.atoms, w.dg.endpoint(str(gain.target), "param", size, 0).atoms)
    for t in [*extra, *(n for n in (weight, bias) if isinstance(n, fx.Node))]:
        w.dg.opaque.discard(str(t.target))
        w.handled.add(t)
    return out


def std_conv_weight(w: GraphWalker, node: fx.Node) -> tuple[fx.Node, list[fx.Node]] | None:
    """``F.batch_norm(W.reshape(1, out, -1), None, None, weight=(gain * s).view(-1),
    training=True).reshape_as(W)``: the weight ``W`` and the gains, or None if not that shape.

    Every node of the pattern must be used only inside it, so nothing else sees the
    standardized weight at its old size.
    """
    if not (node.op == "call_method" and node.target in ("reshape_as", "view_as")):
        return None
    bn, weight = node.args[0], node.args[1]
    if not (isinstance(bn, fx.Node) and bn.target is F.batch_norm and len(bn.users) == 1):
        return None
    src = arg(bn, 0, "input")
    if not (
        isinstance(weight, fx.Node)
        and weight.op == "get_attr"
        and isinstance(src, fx.Node)
        and src.target in ("reshape", "view")
        and src.args[0] is weight
        and len(src.users) == 1
        and all(arg(bn, k, n) is None for k, n in ((1, "running_mean"), (2, "running_var")))
        and arg(bn, 4, "bias") is None
        and arg(bn, 5, "training") is True
    ):
        return None
    shape, wshape = w.shapes.get(src), w.attr_shape(weight)
    if shape is None or wshape is None or tuple(shape[:2]) != (1, wshape[0]) or len(shape) != 3:
        return None
    gains: list[fx.Node] = []
    g = arg(bn, 3, "weight")
    if g is not None:
        gain = _gain(w, g, int(wshape[0]))
        if gain is None:
            return None
        gains.append(gain)
    if not set(weight.users) <= {src, node} or len(node.users) != 1:
        return None  # the raw weight is read elsewhere too
    return weight, gains


def _gain(w: GraphWalker, g: Any, out: int) -> fx.Node | None:
    """``(gain * scale).view(-1)`` / ``gain.view(-1)`` with ``gain`` a ``(out, 1, ...)`` param."""
    if not (isinstance(g, fx.Node) and g.target in ("view", "reshape") and len(g.users) == 1):
        return None
    inner = g.args[0]
    if isinstance(inner, fx.Node) and inner.op != "get_attr":
        if len(inner.users) != 1 or inner.target not in ("mul", *MUL_FUNCS):
            return None
        params = [a for a in inner.args if isinstance(a, fx.Node)]
        if len(params) != 1 or not all(isinstance(a, (int, float, fx.Node)) for a in inner.args):
            return None
        inner = params[0]
    if not (isinstance(inner, fx.Node) and inner.op == "get_attr"):
        return None
    shape = w.attr_shape(inner)
    if shape is None or shape[0] != out or shape.numel() != out:
        return None
    return inner


@method_rule("reshape_as", "view_as")
def reshape_as(w: GraphWalker, node: fx.Node) -> Info | None:
    """``x.reshape_as(y)``: a reshape to ``y``'s shape with ``-1`` at ``y``'s channel dim.

    LeViT's ``LinearNorm`` runs ``bn(x.flatten(0, 1)).reshape_as(x)``: the channels come back
    where ``y`` has them, so they are coupled with ``y``'s (the sizes must agree after the cut).
    An untracked side facing a tracked one would keep a stale size: both block. The
    standardized conv weight (``std_conv_weight``) is claimed by its conv later.
    """
    src: Any = node.args[0]
    other: Any = node.args[1]
    if isinstance(src, fx.Node) and src.target is F.batch_norm and w.get(src) is None:
        return None
    i, o, shape = w.get(src), w.get(other), w.shapes.get(other)
    if i is None and o is None:
        return None
    if i is None or o is None or shape is None:
        return w.unknown(node)
    sizes: list[Any] = [int(s) for s in shape]
    sizes[o.dim] = -1
    out = reshape(w, node, sizes)
    if out is None or out.dim != o.dim or len(out.atoms) != len(o.atoms):
        w.block_inputs(node, f"`{node.name}` reshapes channels unlike its model tensor")
        return None
    w.dg.union(out.atoms, o.atoms)
    return out


__all__ = [
    "functional_batch_norm",
    "functional_conv",
    "functional_group_norm",
    "functional_linear",
    "owner_of",
    "reshape_as",
    "std_conv_weight",
]
