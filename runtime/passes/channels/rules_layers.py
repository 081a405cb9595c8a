"""Op rules for layers: convolutions, linear layers, norms, PReLU, and ``F.layer_norm``.

A layer is where channels end up as weights: each gets endpoints (``in``/``out`` for conv and
linear, ``norm`` for norms) whose atoms are coupled with the tensor it reads. A depthwise or
grouped conv with ``in == out`` ties its input to its output channels (grouped: equal keep per
group, a *partition*); a grouped conv with ``in != out`` keeps input and output apart, each with
its own partition (every group keeps as many inputs, and as many outputs, as the others).
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn
from torch.nn import functional as F

from ..trace import register_leaf
from .op_rules import Info, arg, function_rule, module_rule
from .rules_tensor import passthrough
from .walker import GraphWalker

CONVS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Norms over dim 1 with ``num_features`` (BatchNorm, InstanceNorm).
NORMS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
)  # fmt: skip


def _chunks(atoms: list[int], n: int) -> list[list[int]]:
    size = len(atoms) // n
    return [atoms[k * size : (k + 1) * size] for k in range(n)]


#: timm's ``Conv2dSame`` pads by arithmetic on the input size, which fx cannot trace: as a leaf
#: it is a Conv2d for channels (padding never touches them), pruned by Conv2d's pruner (MRO).
CONV_SAME = "timm.layers.conv2d_same.Conv2dSame"
register_leaf(CONV_SAME)


@module_rule(*CONVS, CONV_SAME)
def conv_module(w: GraphWalker, node: fx.Node, m: nn.modules.conv._ConvNd) -> Info | None:
    return conv(w, node, m)


def conv(
    w: GraphWalker, node: fx.Node, m: nn.modules.conv._ConvNd, name: str | None = None
) -> Info:
    """``name``: the conv's qualified name when ``node`` is a functional call on its weights."""
    src: Any = node.args[0] if node.args else None
    name = name or str(node.target)
    ep_in = w.dg.endpoint(name, "in", m.in_channels)
    ep_out = w.dg.endpoint(name, "out", m.out_channels)
    w.consume(src, ep_in.atoms, 1, f"input of conv `{name}` not tracked")
    if m.groups > 1 and m.in_channels == m.out_channels:
        w.dg.union(ep_in.atoms, ep_out.atoms)
        if m.groups != m.in_channels:  # grouped, not depthwise: equal keep per group
            w.dg.partitions.append(_chunks(ep_out.atoms, m.groups))
    elif m.groups > 1:  # in != out: group k reads input chunk k only; equal keep per chunk
        w.dg.partitions.append(_chunks(ep_in.atoms, m.groups))
        w.dg.partitions.append(_chunks(ep_out.atoms, m.groups))
    w.block_inputs(node, f"extra input of `{name}`", keep=src)
    return Info(1, ep_out.atoms)


#: timm's ECA: a gate per channel from a Conv1d sliding *along* the channels of the pooled
#: input. Its weights (one kernel, no per-channel entry) fit any channel count, so the module
#: runs unchanged on the kept channels. Traced whole: the conv's length axis is the channel
#: axis, which no layer rule could follow. Pruning is an approximation here (as every prune
#: is): a kept channel's gate afterwards reads its nearest *kept* neighbours, not the removed
#: ones it read before, so the pruned model is not the dense one with channels zeroed.
ECA = "timm.layers.eca.EcaModule"
register_leaf(ECA)


@module_rule(ECA)
def eca(w: GraphWalker, node: fx.Node, m: nn.Module) -> Info | None:
    """``x * gate(conv1d(mean(x)))``: the output carries the input's channels."""
    return passthrough(w, node)


@module_rule(nn.Linear)
def linear_module(w: GraphWalker, node: fx.Node, m: nn.Linear) -> Info | None:
    return linear(w, node, m)


def linear(w: GraphWalker, node: fx.Node, m: nn.Linear, name: str | None = None) -> Info | None:
    src: Any = node.args[0] if node.args else None
    name = name or str(node.target)
    nd = w.ndim(src)
    ep_in = w.dg.endpoint(name, "in", m.in_features)
    ep_out = w.dg.endpoint(name, "out", m.out_features)
    last = None if nd is None else nd - 1
    i = w.get(src)
    mixes_tokens = i is not None and last is not None and i.dim != last
    if mixes_tokens and src.op != "placeholder":  # ResMLP, MLP-Mixer (an input's dim 1 is a guess)
        w.dg.block(ep_in.atoms + ep_out.atoms, f"linear `{name}` acts on a non-channel dim")
        return Info(i.dim, i.atoms) if i is not None else None  # each channel on its own
    w.consume(src, ep_in.atoms, last, f"input of linear `{name}` not channel-last")
    return None if last is None else Info(last, ep_out.atoms)


@module_rule(*NORMS, nn.GroupNorm)
def norm(w: GraphWalker, node: fx.Node, m: nn.Module) -> Info | None:
    src: Any = node.args[0] if node.args else None
    name = str(node.target)
    feats: Any = m.num_channels if isinstance(m, nn.GroupNorm) else m.num_features
    num = int(feats)
    ep = w.dg.endpoint(name, "norm", num)
    w.consume(src, ep.atoms, 1, f"input of norm `{name}` not tracked")
    if isinstance(m, nn.GroupNorm) and 1 < m.num_groups < num:
        w.dg.partitions.append(_chunks(ep.atoms, m.num_groups))
    return Info(1, ep.atoms)


@module_rule(nn.LayerNorm)
def layer_norm_module(w: GraphWalker, node: fx.Node, m: nn.LayerNorm) -> Info | None:
    src: Any = node.args[0] if node.args else None
    owner = str(node.target) if m.elementwise_affine else None
    return layer_norm(w, node, src, tuple(m.normalized_shape), owner)


@module_rule(nn.PReLU)
def prelu(w: GraphWalker, node: fx.Node, m: nn.PReLU) -> Info | None:
    """One shared slope is channel-independent; one slope per channel is not understood."""
    return passthrough(w, node) if m.num_parameters == 1 else w.unknown(node)


def layer_norm(
    w: GraphWalker, node: fx.Node, src: Any, normalized: tuple[int, ...], owner: str | None
) -> Info | None:
    i, nd = w.get(src), w.ndim(src)
    if i is None or nd is None:
        return None
    if i.dim < nd - len(normalized):
        return Info(i.dim, i.atoms)  # normalises other dims only
    if owner is not None and len(normalized) == 1 and i.dim == nd - 1:
        ep = w.dg.endpoint(owner, "norm", normalized[0])
        w.dg.union(i.atoms, ep.atoms)
        return Info(i.dim, ep.atoms)
    return w.unknown(node)


@function_rule(F.layer_norm)
def functional_layer_norm(w: GraphWalker, node: fx.Node) -> Info | None:
    """``F.layer_norm`` with a LayerNorm subclass's own parameters (ConvNeXt's LayerNorm2d)."""
    weight, bias = arg(node, 2, "weight"), arg(node, 3, "bias")
    normalized = tuple(arg(node, 1, "normalized_shape"))
    owner = None
    if isinstance(weight, fx.Node) and weight.op == "get_attr":
        cand = str(weight.target).rpartition(".")[0]
        mod = w.modules.get(cand)
        bias_ok = bias is None or (isinstance(bias, fx.Node) and str(bias.target) == f"{cand}.bias")
        if isinstance(mod, nn.LayerNorm) and str(weight.target) == f"{cand}.weight" and bias_ok:
            owner = cand
            w.handled |= {weight} | ({bias} if isinstance(bias, fx.Node) else set())
    return layer_norm(w, node, node.args[0], normalized, owner)
