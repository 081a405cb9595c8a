"""Budget search: find the channel ratio whose pruned model fits, without training.

``prune to 2.5M params`` / ``prune to 40% macs`` compile to ``prune.channels`` with
``budget=Budget(unit="params"|"macs", value=2_500_000)`` or ``Budget(unit="macs",
fraction=0.4)`` (the share of the model *as it enters the pass* that may remain). The same op
serves both forms on purpose: the search only picks ``ratio``, so the record, the replay and
every diagnostic stay those of plain channel pruning. We bisect the ratio on dry runs (deep
copies pruned with the real criterion and measured); params and MACs fall monotonically with
the ratio up to rounding, and the dependency graph is built once and shared by every trial.
If even a 99% prune misses the budget: KDR502.

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
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compiler.ops import Budget
from recipe_lang.diagnostics import KdrError, Note, error

from ..scopes import Scope
from .build import build
from .graph import DependencyGraph
from .importance import Batches
from .prune import count_params, prune_model

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


def measure(model: nn.Module, unit: str, x: torch.Tensor) -> int:
    """The model's size in the budget's unit."""
    return count_params(model) if unit == "params" else count_macs(model, x)


def budget_target(budget: Budget, current: int) -> float:
    """The absolute target: ``value``, or ``fraction`` of ``current`` (the size entering)."""
    if budget.fraction is not None:
        return current * budget.fraction
    assert budget.value is not None  # Budget's validator: exactly one of the two
    return float(budget.value)


@dataclass
class Trial:
    """How to prune one dry-run copy: the pass's own settings, the graph built once."""

    criterion: str = "l1"
    ranking: str = "local"
    scope: Scope = field(default_factory=Scope)
    batches: Batches | None = None
    seed: int = 0


def search_ratio(
    module: nn.Module, x: torch.Tensor, budget: Budget, how: Trial | None = None
) -> tuple[float, dict[str, Any], DependencyGraph]:
    """Smallest ratio (within 1/2**STEPS) whose pruned copy meets ``budget``."""
    how = how or Trial()
    unit = budget.unit
    current = measure(module, unit, x)
    target = budget_target(budget, current)
    dg = build(module, x, tuple(how.scope.exclude))
    info: dict[str, Any] = {"budget_kind": unit, "budget_target": target, "budget_before": current}

    def trial(ratio: float) -> int:
        m = copy.deepcopy(module)
        prune_model(
            m, x, ratio, how.criterion, how.ranking, how.scope, how.batches, how.seed, dg=dg
        )
        return measure(m, unit, x)

    if current <= target:
        info.update(budget_ratio=0.0, budget_after=current)
        return 0.0, info, dg
    best = trial(MAX_RATIO)
    if best > target:
        raise KdrError(
            error(
                "KDR502",
                f"the budget of {target:,.0f} {unit} cannot be met: pruning {MAX_RATIO:.0%} of "
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


__all__ = ["MAX_RATIO", "Trial", "budget_target", "count_macs", "measure", "search_ratio"]
