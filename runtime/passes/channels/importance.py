"""Channel importance per coupled group: ``l1``, ``l2``, ``random`` (seeded), ``taylor``, ``fpgm``.

A channel of a group is one class of coupled slices (a conv's output row, the next conv's
input column, the BatchNorm gammas, a layer-scale entry...). Its importance is the *sum* over
every slice in the class, so a channel that matters to any coupled layer is kept; this is
Torch-Pruning's ``GroupMagnitudeImportance`` with ``p=1`` (``l1``) or ``p=2`` (``l2``) and
sum reduction. ``taylor`` replaces ``|w|`` by ``|w * dL/dw|`` from one labelled batch
(first-order estimate of the loss change when the slice is zeroed).

``fpgm`` (He et al. 2019, "Filter Pruning via Geometric Median") scores redundancy, not size:
a filter's score is the sum of the Euclidean distances from its flattened weights to every
other filter of its layer, so the filters nearest the layer's geometric median (the ones the
others can best stand in for) go first. Only the ``out`` endpoints of a group (the layers that
produce its channels) have filters; their scores are summed per channel class. A group with no
``out`` endpoint holding a weight falls back to ``l2``.

>>> import torch
>>> from torch import nn
>>> from runtime.passes.channels.build import build
>>> m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 2, 1))
>>> dg = build(m, torch.randn(1, 3, 4, 4))
>>> scores = group_importance(dg, m, dg.prunable_groups(), "l1")
>>> scores[0].shape
torch.Size([4])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from compiler.vocab import CRITERIA
from runtime.passes.ranking import Batches, taylor_gradients

from .graph import DependencyGraph, Endpoint, Group


def _tensor(model: nn.Module, name: str) -> torch.Tensor:
    try:
        return model.get_parameter(name)
    except AttributeError:
        return model.get_buffer(name)


Reducer = Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]
#: Layers with more weight entries than this are compared in float32 by ``fpgm``.
FPGM_FLOAT64_LIMIT = 1 << 24


def _per_slice(
    ep: Endpoint,
    model: nn.Module,
    reduce: Reducer,
    source: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
) -> torch.Tensor | None:
    """Importance of each position of ``ep`` (None when it holds no weights).

    ``source`` maps a weight to the tensor actually scored (``|w * grad|`` for taylor).
    """
    if ep.kind == "param":
        t = source(_tensor(model, ep.target))
        return reduce(t.movedim(ep.dim, 0).reshape(t.shape[ep.dim], -1), (1,))
    m = model.get_submodule(ep.target)
    w = getattr(m, "weight", None)
    if not isinstance(w, torch.Tensor):
        return None
    w = source(w)
    if ep.kind == "norm":
        return reduce(w.reshape(-1, 1), (1,))
    if ep.kind == "out":
        return reduce(w.reshape(w.shape[0], -1), (1,))
    if isinstance(m, nn.Linear):
        return reduce(w, (0,))
    groups = int(getattr(m, "groups", 1))  # conv weight: [out, in / groups, *kernel]
    out_ch, in_pg = w.shape[0], w.shape[1]
    return reduce(w.reshape(groups, out_ch // groups, in_pg, -1), (1, 3)).reshape(-1)


def _fpgm(ep: Endpoint, model: nn.Module) -> torch.Tensor | None:
    """Sum of Euclidean distances from each output filter of ``ep``'s layer to all the others
    (None unless ``ep`` is a layer's output with a weight)."""
    if ep.kind != "out":
        return None
    w = getattr(model.get_submodule(ep.target), "weight", None)
    if not isinstance(w, torch.Tensor):
        return None
    rows = w.detach().reshape(w.shape[0], -1)
    # float64 for exact small cases; float32 (cdist's matmul path) for very large layers
    rows = rows.double() if rows.numel() <= FPGM_FLOAT64_LIMIT else rows.float()
    return torch.cdist(rows[None], rows[None])[0].sum(1, dtype=torch.float64)


def group_importance(
    dg: DependencyGraph,
    model: nn.Module,
    groups: list[Group],
    criterion: str,
    batches: Batches | None = None,
    seed: int = 0,
) -> dict[int, torch.Tensor]:
    """Importance of each class of each group, keyed by ``Group.index``, in class order."""
    if criterion == "random":
        gen = torch.Generator().manual_seed(seed)
        return {g.index: torch.rand(g.size, generator=gen, dtype=torch.float64) for g in groups}
    if criterion == "taylor":
        taylor_gradients(model, batches)

    grads: dict[int, torch.Tensor] = {}
    if criterion == "taylor":  # |w * grad| as one tensor per parameter, viewed like w below
        grads = {
            id(p): (p.detach() * p.grad).abs() if p.grad is not None else torch.zeros_like(p)
            for p in model.parameters()
        }

    def reduce(t: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        # vector_norm reduces without materialising |w| (VGG's 100M-entry fc weights).
        if criterion == "l2":
            return torch.linalg.vector_norm(t.detach(), 2, dims, dtype=torch.float64).pow(2)
        if criterion == "taylor":
            return t.sum(dims, dtype=torch.float64)  # already |w * grad|
        return torch.linalg.vector_norm(t.detach(), 1, dims, dtype=torch.float64)

    where: dict[int, tuple[int, int]] = {}
    acc: dict[int, list[float]] = {}
    scored: set[int] = set()
    for g in groups:
        acc[g.index] = [0.0] * g.size
        for pos, root in enumerate(g.classes):
            where[root] = (g.index, pos)
    wanted = {k for g in groups for k in g.members}
    try:
        for key in sorted(wanted):
            ep = dg.endpoints[key]
            with torch.no_grad():
                if criterion == "fpgm":
                    imp = _fpgm(ep, model)
                else:
                    imp = _per_slice(ep, model, reduce, lambda t: grads.get(id(t), t))
            if imp is None:
                continue
            for a, value in zip(ep.atoms, imp.tolist(), strict=True):
                hit = where.get(dg.roots[a])
                if hit is not None:
                    acc[hit[0]][hit[1]] += value
                    scored.add(hit[0])
    finally:
        if criterion == "taylor":
            model.zero_grad(set_to_none=True)
    out = {k: torch.tensor(v, dtype=torch.float64) for k, v in acc.items()}
    unscored = [g for g in groups if g.index not in scored]
    if criterion == "fpgm" and unscored:  # no filter to compare: rank by size
        out.update(group_importance(dg, model, unscored, "l2"))
    return out


__all__ = ["CRITERIA", "Batches", "group_importance"]
