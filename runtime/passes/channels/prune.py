"""Structured pruning of a model's channel groups: select, score, choose, record, slice.

:func:`prune_model` builds the channel :class:`~.graph.DependencyGraph` (or reuses one), scores
every prunable group in scope (:mod:`.importance`), picks the channels to drop (``local``: the
same ratio in every group; ``global``: one threshold over importance normalised by each group's
mean, keeping at least one channel per group), and rewrites the layers in place
(:mod:`.surgery`). Everything that can fail (scopes, ratio, empty layers) is decided on the
plan *before* the model is touched.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
>>> record, info = prune_model(m, torch.randn(1, 3, 8, 8), ratio=0.5)
>>> m[0].out_channels, m[1].num_features, m[3].in_channels
(4, 4, 4)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from compiler.vocab import CRITERIA, RANKINGS

from ..ranking import Batches, kdr502, n_prune
from ..scopes import Scope
from .build import build
from .graph import DependencyGraph, Group
from .importance import group_importance
from .shortfall import block_summary, group_key, removed_fraction, scope_groups
from .surgery import apply_record


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def select_groups(dg: DependencyGraph, scope: Scope) -> list[Group]:
    """Prunable groups in scope: a producer selected, no member protected by ``except``."""
    return [g for g in scope_groups(dg, scope) if g.blocked is None]


def group_sizes(model: nn.Module, example_inputs: torch.Tensor, scope: Scope) -> dict[str, int]:
    """Channels of every prunable group in scope, by :func:`group_key` (KDR502 if none)."""
    dg = build(model, example_inputs, tuple(scope.exclude))
    return {group_key(g): g.size for g in _in_scope(dg, scope)}


def _lowest(scores: torch.Tensor, positions: list[int], k: int) -> list[int]:
    if k <= 0:
        return []
    sub = scores[positions]
    order = torch.argsort(sub, stable=True)[:k].tolist()
    return [positions[i] for i in order]


def choose_pruned(
    groups: list[Group],
    scores: dict[int, torch.Tensor],
    ratio: float,
    ranking: str,
    base: dict[str, int] | None = None,
) -> set[int]:
    """Class roots to remove. Balanced chunks (grouped convs) lose the same count each.

    With ``base`` (group sizes by :func:`group_key` when a gradual prune began), ``ratio`` is
    the share of those channels gone once this cut is done, so the cuts of a ramp add up to
    exactly what one cut at the final ratio removes."""
    counts: dict[int, int] = {}
    if ranking == "local":
        for g in groups:
            k = len(g.chunks) if g.chunks else 1
            per = g.size // k
            was = (base or {}).get(group_key(g), g.size) // k
            counts[g.index] = min(max(n_prune(ratio, was) - (was - per), 0), per - 1) * k
    else:
        flat: list[tuple[float, int]] = []
        for g in groups:
            s = scores[g.index]
            mean = float(s.mean()) if g.size else 0.0
            norm = s / mean if mean > 0 else torch.zeros_like(s)
            flat += [(float(v), g.index) for v in norm]
        flat.sort(key=lambda t: t[0])
        was = sum((base or {}).get(group_key(g), g.size) for g in groups)
        total = max(math.floor(ratio * was + 0.5) - (was - len(flat)), 0)
        for _, gi in flat[:total]:
            counts[gi] = counts.get(gi, 0) + 1
        for g in groups:
            k = len(g.chunks) if g.chunks else 1
            per = g.size // k
            counts[g.index] = min(counts.get(g.index, 0) // k, per - 1) * k
    pruned: set[int] = set()
    for g in groups:
        s, n = scores[g.index], counts.get(g.index, 0)
        chunks = g.chunks or [list(range(g.size))]
        for chunk in chunks:
            pruned |= {g.classes[p] for p in _lowest(s, chunk, n // len(chunks))}
    return pruned


def make_record(dg: DependencyGraph, pruned: set[int]) -> dict[str, Any]:
    """JSON-able kept indices per layer / parameter; KDR502 if any layer would be emptied."""
    record: dict[str, Any] = {"layers": {}, "params": {}}
    for key, keep in sorted(dg.keep_indices(pruned).items()):
        ep = dg.endpoints[key]
        if not keep:
            raise kdr502(
                f"pruning would remove every channel of `{ep.target}`",
                "lower the ratio, or scope the layer out with `except`",
            )
        if ep.kind == "param":
            record["params"][ep.target] = {"dim": ep.dim, "keep": keep}
        else:
            record["layers"].setdefault(ep.target, {})[ep.kind] = keep
    return record


def _in_scope(dg: DependencyGraph, scope: Scope) -> list[Group]:
    groups = select_groups(dg, scope)
    if not groups:
        reasons = sorted({g.blocked for g in dg.groups if g.blocked})[:3]
        raise kdr502(
            "nothing to prune: no channel group is both prunable and in scope",
            "check `in` / `except`; blocked because: " + ("; ".join(reasons) or "no layers"),
        )
    return groups


def _check(ratio: Any, criterion: Any, ranking: Any) -> float:
    """Direct callers pass plain values; the plan's are validated by its params model."""
    if not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) < 1.0:
        raise kdr502(
            f"pruning ratio must be in [0, 1), got {ratio!r}",
            "write e.g. `prune 50% channels`; 100% would empty every layer",
        )
    if criterion not in CRITERIA:
        raise kdr502(f"unknown importance `{criterion}`", f"use one of {', '.join(CRITERIA)}")
    if ranking not in RANKINGS:
        raise kdr502(f"unknown ranking `{ranking}`", f"use one of {', '.join(RANKINGS)}")
    return float(ratio)


def prune_model(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ratio: float,
    criterion: str = "l1",
    ranking: str = "local",
    scope: Scope | None = None,
    batches: Batches | None = None,
    seed: int = 0,
    dg: DependencyGraph | None = None,
    base: dict[str, int] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Prune ``model`` in place; return ``(record, info)``. Raises KDR500 / KDR502.

    ``base``: see :func:`choose_pruned` (the cuts of a gradual prune). ``info`` says how much
    was done against what was asked (``removed_fraction``, ``asked_fraction``: shares of the
    channels in scope), the main reasons the rest is blocked (``blocked``, see
    :mod:`.shortfall`) and the blocks torch.fx could not trace (``kept_whole``)."""
    ratio = _check(ratio, criterion, ranking)
    scope = scope or Scope()
    dg = dg or build(model, example_inputs, tuple(scope.exclude))
    groups = _in_scope(dg, scope)
    before = count_params(model)
    scores = group_importance(dg, model, groups, criterion, batches, seed)
    pruned = choose_pruned(groups, scores, ratio, ranking, base)
    record = make_record(dg, pruned)
    apply_record(model, record)
    info = {
        "ratio": ratio,
        "criterion": criterion,
        "ranking": ranking,
        "params_before": before,
        "params_after": count_params(model),
        "channels_removed": len(pruned),
        "groups_pruned": len(groups),
        "groups_unprunable": {
            ", ".join(g.producers[:2]): g.blocked for g in dg.groups if g.blocked
        },
        "asked_fraction": ratio,
        "removed_fraction": removed_fraction(dg, scope, len(pruned), base),
        "blocked": block_summary(dg, 3, scope),
        "kept_whole": dg.kept_whole,
    }
    return record, info


__all__ = [
    "choose_pruned",
    "count_params",
    "group_key",
    "group_sizes",
    "make_record",
    "prune_model",
    "select_groups",
]
