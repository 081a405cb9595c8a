"""Build the channel-dependency graph of a model from its fx traces (train and eval mode).

A module torch.fx cannot trace is kept whole (a leaf, :func:`..trace.trace_with_leaves`): with
no op rule for it, the walker blocks the channels flowing in and out of it, and the rest of the
model stays prunable. Both modes are traced with the same leaves, and the graph records them
(``dg.kept_whole``) with fx's reason, for the pass's info and the dry run's notes.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
>>> g = build(m, torch.randn(1, 3, 8, 8))
>>> [grp.producers for grp in g.prunable_groups()]
[['0']]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from ..concrete_trace import ConcreteTracer
from ..trace import example_batch, trace_with_leaves
from . import (  # noqa: F401  (register the op rules)
    rules_attention,
    rules_bottleneck,
    rules_functional,
    rules_heads,
    rules_layers,
    rules_pointwise,
    rules_split,
    rules_tensor,
)
from .graph import DependencyGraph
from .op_rules import MODULE_RULES, target_name
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
        graphs, kept = _traces(model, example_inputs, leaf_modules)
        for training, gm in graphs:
            signature = [(n.op, target_name(n.target)) for n in gm.graph.nodes]
            if signature in seen:
                continue  # same ops in both modes: one walk (and one forward) is enough
            seen.append(signature)
            model.train(training)
            gm.train(training)
            x = example_batch(example_inputs) if training else example_inputs
            walker = GraphWalker(gm, dg, record_shapes(gm, x), model)
            walker.run()
            _name_kept_whole(walker, kept)
    finally:
        model.train(was_training)
    dg.kept_whole = kept
    _block_tied_weights(model, dg)
    dg.finalize()
    return dg


def _traces(
    model: nn.Module, x: torch.Tensor, leaf_modules: tuple[str, ...]
) -> tuple[list[tuple[bool, fx.GraphModule]], list[dict[str, str]]]:
    """The eval- and train-mode graphs, traced with the same modules kept whole.

    Shape-dependent control flow is resolved with the example's shapes (:class:`ConcreteTracer`:
    the graph only needs to describe the example's forward). A block untraceable in one mode
    only is kept whole in both: its traced mode would show one branch of control flow the other
    mode does not take."""
    kept: dict[str, dict[str, str]] = {}
    graphs: dict[bool, fx.GraphModule] = {}
    while True:  # ends: the kept set only grows (one module a trace), or a nested one goes
        start = set(kept)
        for training in (False, True):
            model.train(training)
            example = example_batch(x) if training else x
            gm, found = trace_with_leaves(model, leaf_modules, kept, _concrete(example))
            graphs[training] = gm
            kept = {e["module"]: e if e["reason"] else kept[e["module"]] for e in found}
        if set(kept) == start:
            return sorted(graphs.items()), [kept[k] for k in sorted(kept)]


def _concrete(x: torch.Tensor) -> Callable[[tuple[str, ...], dict[str, Any]], ConcreteTracer]:
    """A tracer factory for :func:`trace_with_leaves` answering control flow from ``x``."""
    return lambda globs, kept: ConcreteTracer(x, globs, kept)


def _name_kept_whole(walker: GraphWalker, kept: list[dict[str, str]]) -> None:
    """Name the real reason on the channels a kept-whole block blocked (no op rule for it)."""
    names = {e["module"]: e for e in kept}
    for node in walker.gm.graph.nodes:
        entry = names.get(str(node.target)) if node.op == "call_module" else None
        if entry is None or type(walker.modules[entry["module"]]) in MODULE_RULES:
            continue
        why = f"`{entry['module']}` ({entry['type']}) is kept whole: torch.fx cannot trace it"
        for inp in node.all_input_nodes:
            info = walker.info.get(inp)
            for a in info.atoms if info is not None else ():
                walker.dg.blocked[a] = why


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
