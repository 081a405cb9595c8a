"""Grouped convolutions with one input channel per group and more outputs (a depthwise
*multiplier*, ``groups == in_channels < out_channels``): FastViT's ``PatchEmbed``
(``ReparamLargeKernelConv(in, 2 * in, groups=in)``) and its ``final_conv``.

The generic grouped-conv rule (:func:`.rules_layers.conv`) keeps the inputs and outputs of a
grouped conv apart, each with a balanced partition (every group keeps as many inputs as the
others). With one input per group, that partition allows only "keep all" or "keep none": the
channels feeding such a conv (FastViT's whole residual stream, stage by stage) formed groups
that were "prunable" yet never lost a channel.

Here input ``g`` is the same channel as the ``k`` outputs of group ``g`` (they are computed from
it alone): pruning it removes the whole group, every kept group keeps its ``k`` outputs, so the
conv stays balanced without a partition (surgery drops the emptied groups and lowers
``groups``). The price: the output channels move in blocks of ``k`` with the input stream,
and a stream blocked later in the walk blocks them too (the generic rule would have cut them
with an equal keep per group); a stream already blocked or untracked when the conv is reached
(the model input) keeps the generic rule. The rule wraps the registered conv rule (extending it, not
replacing it), which every other conv still gets.
"""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from . import rules_layers  # noqa: F401  (first: its conv rule is the one wrapped)
from .op_rules import MODULE_RULES, Info, ModuleRule
from .walker import GraphWalker


def multiplier(m: Any) -> int:
    """``k`` when ``m`` is a conv with one input per group and ``k > 1`` outputs each, else 0."""
    g, cin, cout = int(m.groups), int(m.in_channels), int(m.out_channels)
    if g > 1 and cin == g and cout > cin and cout % g == 0:
        return cout // g
    return 0


def depthwise_multiplier(w: GraphWalker, node: fx.Node, m: Any, k: int) -> Info:
    """Input ``g`` coupled with outputs ``g * k .. g * k + k - 1`` (see module doc)."""
    src: Any = node.args[0] if node.args else None
    name = str(node.target)
    ep_in = w.dg.endpoint(name, "in", int(m.in_channels))
    ep_out = w.dg.endpoint(name, "out", int(m.out_channels))
    w.consume(src, ep_in.atoms, 1, f"input of conv `{name}` not tracked")
    for g, a in enumerate(ep_in.atoms):
        for j in range(k):
            w.dg.union([a], [ep_out.atoms[g * k + j]])
    w.block_inputs(node, f"extra input of `{name}`", keep=src)
    return Info(1, ep_out.atoms)


def stream_blocked(w: GraphWalker, src: Any) -> bool:
    """Whether the channels ``src`` carries are untracked or already blocked (so far in the
    walk): coupling them would only block the conv's outputs too."""
    i = w.get(src)
    if i is None:
        return True
    blocked = {w.dg.find(a) for a in w.dg.blocked}
    return any(w.dg.find(a) in blocked for a in i.atoms)


def wrap(base: ModuleRule) -> ModuleRule:
    def rule(w: GraphWalker, node: fx.Node, m: Any) -> Info | None:
        k = multiplier(m)
        if not k or stream_blocked(w, node.args[0] if node.args else None):
            return base(w, node, m)
        return depthwise_multiplier(w, node, m, k)

    rule.__doc__ = f"Depthwise multipliers here, else {getattr(base, '__name__', base)}."
    return rule


for _t in (nn.Conv1d, nn.Conv2d, nn.Conv3d, "timm.layers.conv2d_same.Conv2dSame"):
    _base = MODULE_RULES.get(_t)
    if _base is not None:
        MODULE_RULES[_t] = wrap(_base)

__all__ = ["depthwise_multiplier", "multiplier", "stream_blocked", "wrap"]
