"""The weights side of a gradual prune: which entries to zero at each level of the ramp.

Levels are shares of the entries that were non-zero when the stage began (so on a model already
pruned, ``prune 90% weights gradually`` removes 90% of what remained, like the one-shot form),
counted per layer (``local``) or over every layer in scope (``global``). Entries already zero
stay zero and count first; among the others the lowest scores go: ``|w|`` for ``l1``/``l2``,
seeded noise for ``random``, and for ``movement`` (Sanh et al. 2020) the score
``S = -sum_t w_t * dL/dw_t`` accumulated over every step of the stage so far: weights that
training pushes toward zero score low. The first cut of a movement ramp, at step 0 (only when
``from X%`` is above zero), has no gradients yet and ranks by magnitude.

>>> import torch
>>> from torch import nn
>>> from compiler.ops import PruneWeightsParams
>>> m = nn.Linear(4, 1, bias=False)
>>> with torch.no_grad():
...     _ = m.weight.copy_(torch.tensor([[0.1, -0.4, 0.3, -0.2]]))
>>> ramp = WeightRamp(m, PruneWeightsParams(ratio=0.5), seed=0)
>>> ramp.apply(m, 0.5)
>>> m.weight.tolist()
[[0.0, -0.4000000059604645, 0.30000001192092896, 0.0]]
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from compiler.ops import PruneWeightsParams
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.passes.prune_weights import entry_scores
from runtime.passes.scopes import Scope
from runtime.sparsity import prunable_weights


def _count(level: float, n: int) -> int:
    """``level`` of ``n``, rounded half up, at most ``n``."""
    return min(math.floor(level * n + 0.5), n)


class WeightRamp:
    """The layers in scope, what was alive in each when the stage began, movement scores."""

    def __init__(self, model: nn.Module, cut: PruneWeightsParams, seed: int):
        scope = Scope.of(cut)
        self.cut = cut
        weights = [(n, w) for n, w in prunable_weights(model) if scope.selects(n)]
        if not weights:
            raise KdrError(
                error(
                    "KDR502",
                    "nothing to prune: no Conv/Linear weight is in scope",
                    None,
                    Note(kind="help", message="check the `in` / `except` scopes of this prune"),
                )
            )
        self.names = [n for n, _ in weights]
        self.alive = {n: int((w != 0).sum()) for n, w in weights}
        self.generator = torch.Generator().manual_seed(seed)
        self.movement: dict[str, torch.Tensor] | None = None
        self.steps_scored = 0
        if cut.criterion == "movement":
            self.movement = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights}

    def _weights(self, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
        found = dict(prunable_weights(model))
        return [(n, found[n]) for n in self.names]

    @torch.no_grad()
    def accumulate(self, model: nn.Module) -> None:
        """Add ``-w * dL/dw`` of this step to the movement scores (after backward)."""
        if self.movement is None:
            return
        for n, w in self._weights(model):
            if w.grad is not None:
                self.movement[n].sub_((w.detach() * w.grad).float().cpu())
        self.steps_scored += 1

    def _scores(self, name: str, w: torch.Tensor) -> torch.Tensor:
        if self.movement is not None and self.steps_scored:
            scores = self.movement[name].to(w.device).clone()
        else:
            criterion = "l1" if self.cut.criterion == "movement" else self.cut.criterion
            scores = entry_scores(w, criterion, self.generator)
        return torch.where(w == 0, torch.full_like(scores, -math.inf), scores)

    @torch.no_grad()
    def apply(self, model: nn.Module, level: float) -> None:
        """Zero the lowest-scoring entries until ``level`` of the stage's alive ones are zero."""
        weights = self._weights(model)
        scored = [(n, w, self._scores(n, w).reshape(-1)) for n, w in weights]
        if self.cut.ranking == "global":
            flat = torch.cat([s for _, _, s in scored])
            alive = sum(self.alive.values())
            dead = flat.numel() - alive
            _zero_lowest(flat, dead + _count(level, alive), [w for _, w, _ in scored])
        else:
            for n, w, s in scored:
                dead = w.numel() - self.alive[n]
                _zero_lowest(s, dead + _count(level, self.alive[n]), [w])

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "movement": copy.deepcopy(self.movement),
            "steps_scored": self.steps_scored,
            "alive": dict(self.alive),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.movement = state["movement"]
        self.steps_scored = int(state["steps_scored"])
        self.alive = {str(k): int(v) for k, v in state["alive"].items()}


def _zero_lowest(scores: torch.Tensor, k: int, weights: list[torch.Tensor]) -> None:
    """Zero the ``k`` lowest of ``scores`` (the concatenated flat scores of ``weights``)."""
    zeros = int(torch.isinf(scores).sum())
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[torch.argsort(scores, stable=True)[: max(k, zeros)]] = False
    offset = 0
    for w in weights:
        n = w.numel()
        w.masked_fill_(~keep[offset : offset + n].reshape(w.shape), 0.0)
        offset += n


__all__ = ["WeightRamp"]
