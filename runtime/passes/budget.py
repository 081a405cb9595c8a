"""``prune.channels`` with a budget: find the ratio whose pruned model fits, without training.

``prune to 2.5M params`` / ``prune to 40% macs`` compile to ``prune.channels`` with
``{"budget": {"kind": "params"|"macs", "value": 2.5e6}}`` or ``{"percent": 40}`` (the share of
the *current* model that may remain). The same op serves both forms on purpose: the search only
picks ``ratio``, so the record, the replay and every diagnostic stay those of plain channel
pruning. We bisect the ratio on dry runs (deep copies pruned with the real criterion and
measured); params and MACs fall monotonically with the ratio up to rounding, and the dependency
graph is built once and shared by every trial. If even a 99% prune misses the budget: KDR502.

MACs are multiply-accumulates of Conv and Linear layers for one sample, from the shapes seen by
forward hooks (the usual convention; norms and activations are not counted).

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1))
>>> count_macs(m, torch.randn(1, 3, 5, 5))
2232
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error

from .base import PassContext
from .depgraph import DependencyGraph, build
from .prune_channels import count_params, prune_model
from .scopes import Scope

MAX_RATIO = 0.99
STEPS = 12


def count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Conv/Linear multiply-accumulates for one sample of ``x``'s shape."""
    total = [0]

    def hook(m: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        per_sample = out.numel() // max(out.shape[0], 1) if out.dim() > 1 else out.numel()
        if isinstance(m, nn.modules.conv._ConvNd):
            total[0] += per_sample * (m.in_channels // m.groups) * math.prod(m.kernel_size)
        elif isinstance(m, nn.Linear):
            total[0] += per_sample * m.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total[0]


def _bad_budget(message: str) -> KdrError:
    return KdrError(
        error(
            "KDR502",
            message,
            None,
            Note(kind="help", message="write e.g. `prune to 2.5M params` or `prune to 40% macs`"),
        )
    )


def budget_target(budget: Any, current: int) -> tuple[str, float]:
    """``(kind, absolute target)`` from a budget spec, validated."""
    if not isinstance(budget, dict) or budget.get("kind") not in ("params", "macs"):
        raise _bad_budget(f"a pruning budget needs kind `params` or `macs`, got {budget!r}")
    if "percent" in budget:
        pct = budget["percent"]
        if not isinstance(pct, (int, float)) or not 0 < pct < 100:
            raise _bad_budget(f"a budget percentage must be in (0, 100), got {pct!r}")
        return budget["kind"], current * float(pct) / 100.0
    value = budget.get("value")
    if not isinstance(value, (int, float)) or value <= 0:
        raise _bad_budget(f"a budget needs a positive `value` or a `percent`, got {budget!r}")
    return budget["kind"], float(value)


def search_ratio(
    module: nn.Module,
    ctx: PassContext,
    budget: Any,
    criterion: str = "l1",
    ranking: str = "local",
    scope: Scope | None = None,
    seed: int = 0,
) -> tuple[float, dict[str, Any], DependencyGraph]:
    """Smallest ratio (within 1/2**STEPS) whose pruned copy meets ``budget``."""
    scope = scope or Scope()
    x = ctx.example_inputs

    def measure(m: nn.Module, kind: str) -> int:
        return count_params(m) if kind == "params" else count_macs(m, x)

    kind, target = budget_target(budget, 0)
    current = measure(module, kind)
    kind, target = budget_target(budget, current)
    dg = build(module, x, tuple(scope.exclude))
    info: dict[str, Any] = {"budget_kind": kind, "budget_target": target, "budget_before": current}

    def trial(ratio: float) -> int:
        m = copy.deepcopy(module)
        prune_model(m, x, ratio, criterion, ranking, scope, ctx.batches, seed, dg=dg)
        return measure(m, kind)

    if current <= target:
        info.update(budget_ratio=0.0, budget_after=current)
        return 0.0, info, dg
    best = trial(MAX_RATIO)
    if best > target:
        raise KdrError(
            error(
                "KDR502",
                f"the budget of {target:,.0f} {kind} cannot be met: pruning {MAX_RATIO:.0%} of "
                f"every prunable channel group still leaves {best:,} (from {current:,})",
                None,
                Note(
                    kind="help",
                    message="relax the budget, or widen the scope (`in` / `except`): layers "
                    "outside prunable groups keep all their channels",
                ),
            )
        )
    lo, hi, at_hi = 0.0, MAX_RATIO, best
    for _ in range(STEPS):
        mid = (lo + hi) / 2
        value = trial(mid)
        if value <= target:
            hi, at_hi = mid, value
        else:
            lo = mid
    info.update(budget_ratio=hi, budget_after=at_hi)
    return hi, info, dg
