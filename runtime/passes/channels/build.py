"""Build the channel-dependency graph of a model from its fx traces (train and eval mode).

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
>>> g = build(m, torch.randn(1, 3, 8, 8))
>>> [grp.producers for grp in g.prunable_groups()]
[['0']]
"""

from __future__ import annotations

import torch
from torch import nn

from ..trace import example_batch, trace
from . import rules_attention, rules_layers, rules_tensor  # noqa: F401  (register the op rules)
from .graph import DependencyGraph
from .op_rules import target_name
from .shapes import record_shapes
from .walker import GraphWalker


def build(
    model: nn.Module, example_inputs: torch.Tensor, leaf_modules: tuple[str, ...] = ()
) -> DependencyGraph:
    """Trace ``model`` in train and eval mode and build its :class:`DependencyGraph`.

    Both modes are analysed because their graphs can differ (GoogLeNet's auxiliary heads run
    only in training); constraints from both are merged so the pruned model works in either.
    """

    dg = DependencyGraph()
    was_training = model.training
    seen: list[list[tuple[str, str]]] = []
    try:
        for training in (False, True):
            model.train(training)
            gm = trace(model, leaf_modules)
            gm.train(training)
            signature = [(n.op, target_name(n.target)) for n in gm.graph.nodes]
            if signature in seen:
                continue  # same ops in both modes: one walk (and one forward) is enough
            seen.append(signature)
            x = example_batch(example_inputs) if training else example_inputs
            GraphWalker(gm, dg, record_shapes(gm, x), model).run()
    finally:
        model.train(was_training)
    _block_tied_weights(model, dg)
    dg.finalize()
    return dg


def _block_tied_weights(model: nn.Module, dg: DependencyGraph) -> None:
    """Slicing one of two modules that share a parameter would desynchronise the other."""
    owners: dict[int, set[str]] = {}
    for ep in dg.endpoints.values():
        if ep.kind != "param":
            for p in model.get_submodule(ep.target).parameters(recurse=False):
                owners.setdefault(id(p), set()).add(ep.target)
    for names in owners.values():
        if len(names) > 1:
            for ep in dg.endpoints.values():
                if ep.target in names:
                    dg.block(ep.atoms, f"parameters shared by {sorted(names)}")


__all__ = ["build"]
