"""Sparsity that holds: the zeros of weight-pruned layers stay zero through later training.

``prune ... weights`` writes zeros into Conv/Linear weights (no parametrization, no mask
buffer: checkpoints carry plain tensors). Every later training of that model (train, distill,
recovery, QAT, DDP) keeps them: :class:`WeightMasks` takes each prunable weight's zero pattern
when training starts and re-applies it after every optimizer step, so neither the gradient nor
momentum, Adam's moments or weight decay can regrow a pruned entry. The masks are derived from
the zeros themselves, so resume and replay (which load the zeros from a checkpoint) restore
the same masks, and names that change under QAT's module swaps do not matter.

>>> import torch
>>> from torch import nn
>>> m = nn.Linear(4, 2)
>>> with torch.no_grad():
...     m.weight[0, :2] = 0
>>> masks = WeightMasks.of(m)
>>> with torch.no_grad():
...     _ = m.weight.add_(1.0)
>>> masks.apply()
>>> int((m.weight == 0).sum())
2
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

PRUNABLE: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_weights(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(qualified name, weight) of every float Conv/Linear layer, QAT's fake-quant ones too."""
    out = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, PRUNABLE) and isinstance(weight, torch.Tensor):
            out.append((name, weight))
    return out


@dataclass
class WeightMasks:
    """The zero patterns to keep, per weight tensor (only tensors that have zeros)."""

    masks: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @classmethod
    @torch.no_grad()
    def of(cls, model: nn.Module) -> WeightMasks:
        out = cls()
        for _, weight in prunable_weights(model):
            keep = weight != 0
            if not bool(keep.all()):
                out.masks.append((weight, keep.to(weight.dtype)))
        return out

    def __bool__(self) -> bool:
        return bool(self.masks)

    @torch.no_grad()
    def apply(self) -> None:
        for weight, keep in self.masks:
            weight.mul_(keep)
