"""BatchNorm folding: ``fuse.bn`` folds Conv+BatchNorm and Linear+BatchNorm1d pairs.

In eval mode a BatchNorm is an affine map per channel, so it folds into the weights and bias
of the convolution or linear layer that feeds it: one kernel instead of two, same outputs.
The pass traces the model with torch.fx, finds ``call_module`` pairs whose first output feeds
only the BatchNorm, swaps the first module for the fused one and erases the BatchNorm node.
It is registered with ``preserves_function=True``, so :func:`runtime.passes.base.run_pass`
checks the outputs are allclose before and after.

The copy is traced in eval mode: a module's ``self.training`` is read while tracing and baked
into the graph (timm's classifier calls ``F.dropout(x, p, training=self.training)``), so a
train-mode trace would keep dropout on for good and the fused model would differ from the
model it replaces in eval mode, the mode folding is exact in. Modules torch.fx cannot trace are
kept whole (:func:`runtime.passes.trace.trace_with_leaves`): the pairs inside them stay unfused.

Eval-mode semantics: folding uses the running statistics. Training the fused model afterwards
is allowed but is training without BatchNorm. BatchNorms without running statistics
(``track_running_stats=False``) are left alone, as are pairs whose first output is also used
elsewhere (folding would change that other use).

>>> import torch
>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
>>> out = fuse_bn(net)
>>> out.record["fused"], len(list(out.module.modules()))
([['0', '1']], 2)
"""

from __future__ import annotations

import copy
from typing import Any

from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from compiler.ops import FuseParams
from runtime.passes.base import PassContext, PassResult, register_pass
from runtime.passes.trace import trace_with_leaves

#: (first module, BatchNorm) pairs that fold; the first entry of each pair is kept, fused.
PATTERNS: tuple[tuple[type[nn.Module], type[nn.Module]], ...] = (
    (nn.Conv1d, nn.BatchNorm1d),
    (nn.Conv2d, nn.BatchNorm2d),
    (nn.Conv3d, nn.BatchNorm3d),
    (nn.Linear, nn.BatchNorm1d),
)


def _parent(root: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, attr = name.rpartition(".")
    return (root.get_submodule(parent_name) if parent_name else root), attr


def _fold(first: nn.Module, bn: nn.Module) -> nn.Module:
    # fuse_*_bn_eval assert eval mode; the fused module is put back in the caller's mode.
    first_training, bn_training = first.training, bn.training
    first.eval()
    bn.eval()
    try:
        if isinstance(first, nn.Linear):
            assert isinstance(bn, nn.BatchNorm1d)
            fused: nn.Module = fuse_linear_bn_eval(first, bn)
        else:
            assert isinstance(first, nn.modules.conv._ConvNd)
            assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
            fused = fuse_conv_bn_eval(first, bn)
    finally:
        first.train(first_training)
        bn.train(bn_training)
    return fused.train(first_training)


def _matching_pairs(gm: fx.GraphModule) -> list[tuple[fx.Node, fx.Node]]:
    modules = dict(gm.named_modules())
    pairs = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not node.args:
            continue
        src = node.args[0]
        if not isinstance(src, fx.Node) or src.op != "call_module" or len(src.users) > 1:
            continue
        first, bn = modules[str(src.target)], modules[str(node.target)]
        if not any(type(first) is a and type(bn) is b for a, b in PATTERNS):
            continue
        assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
        if not bn.track_running_stats or bn.running_mean is None:
            continue
        pairs.append((src, node))
    return pairs


def fuse_bn(module: nn.Module) -> PassResult:
    """Fold every eligible BatchNorm into the layer before it (in a copy traced in eval mode,
    returned in ``module``'s mode). Raises KDR500 when the model's own forward is untraceable."""
    was_training = module.training
    gm, kept_whole = trace_with_leaves(copy.deepcopy(module).eval())
    fused: list[list[str]] = []
    for src, bn_node in _matching_pairs(gm):
        first_name, bn_name = str(src.target), str(bn_node.target)
        parent, attr = _parent(gm, first_name)
        setattr(parent, attr, _fold(gm.get_submodule(first_name), gm.get_submodule(bn_name)))
        bn_node.replace_all_uses_with(src)
        gm.graph.erase_node(bn_node)
        fused.append([first_name, bn_name])
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.train(was_training)
    info: dict[str, Any] = {"batchnorms_folded": len(fused)}
    if kept_whole:
        info["kept_whole"] = kept_whole
    return PassResult(module=gm, modified=bool(fused), record={"fused": fused}, info=info)


def replay_fuse_bn(module: nn.Module, record: dict[str, Any]) -> nn.Module:
    """The fused structure is a function of the model alone, so replay re-runs the fusion;
    the values it folds are replaced by the checkpoint's state dict afterwards."""
    return fuse_bn(module).module


@register_pass("fuse.bn", replay=replay_fuse_bn, preserves_function=True)
def fuse_bn_pass(module: nn.Module, params: FuseParams, ctx: PassContext) -> PassResult:
    """Plan op ``fuse.bn`` (no parameters)."""
    del params, ctx
    return fuse_bn(module)


def count_nodes(module: nn.Module) -> dict[Any, int]:
    """How many graph nodes call each module type or function (like torchao's
    ``checkGraphModuleNodes``): ``{nn.BatchNorm2d: 20, operator.add: 8, ...}``; a module that
    is not a GraphModule yet is traced first."""
    gm = module if isinstance(module, fx.GraphModule) else fx.symbolic_trace(module)
    modules = dict(gm.named_modules())
    counts: dict[Any, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            key: Any = type(modules[str(node.target)])
        elif node.op in ("call_function", "call_method"):
            key = node.target
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    return counts


__all__ = ["PATTERNS", "count_nodes", "fuse_bn", "replay_fuse_bn"]
