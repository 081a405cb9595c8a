"""The channels side of a gradual prune: cut channels physically, and let the optimizer follow.

Each update calls the ``prune.channels`` machinery (:func:`~runtime.passes.channels.prune
.prune_model`) with the sizes every group had when the stage began, so ``level`` is the share
of those channels gone after the cut and the cuts of a ramp add up to exactly what one cut at
the target removes. The surgery replaces the sliced parameters by smaller ones; the optimizer's
per-parameter state (momentum, Adam's moments) is sliced the same way (:func:`follow`), so
training goes on as if the removed channels had never been there.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
>>> m(torch.randn(2, 4)).sum().backward(); opt.step()
>>> shadow = shadow_of(m, opt)
>>> from runtime.passes.channels.surgery import apply_record
>>> record = {"layers": {"0": {"out": [0, 2]}, "2": {"in": [0, 2]}}}
>>> before = opt.state[m[0].weight]["momentum_buffer"].clone()
>>> _ = apply_record(m, record)
>>> follow(opt, m, shadow, record)
>>> torch.equal(opt.state[m[0].weight]["momentum_buffer"], before[[0, 2]])
True
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import torch
from torch import nn

from compiler.ops import PruneChannelsParams
from runtime.passes.channels.importance import Batches
from runtime.passes.channels.op import SEED
from runtime.passes.channels.prune import group_sizes, prune_model
from runtime.passes.channels.surgery import apply_record
from runtime.passes.scopes import Scope


class ChannelRamp:
    """The groups in scope and their sizes when the stage began."""

    def __init__(self, model: nn.Module, example: torch.Tensor, cut: PruneChannelsParams):
        self.cut, self.example, self.scope = cut, example, Scope.of(cut)
        self.base = group_sizes(model, example, self.scope)

    def apply(
        self,
        model: nn.Module,
        level: float,
        optimizer: torch.optim.Optimizer,
        batches: Batches | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Cut ``model`` in place to ``level``; returns the pass record and info."""
        shadow = shadow_of(model, optimizer)
        device = next(model.parameters()).device
        record, info = prune_model(
            model,
            self.example.to(device),
            level,
            self.cut.criterion,
            self.cut.ranking,
            self.scope,
            batches,
            SEED,
            base=self.base,
        )
        if shadow is not None and (record["layers"] or record["params"]):
            follow(optimizer, model, shadow, record)
        return record, info

    def state_dict(self) -> dict[str, Any]:
        return {"base": dict(self.base)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base = {str(k): int(v) for k, v in state["base"].items()}


class Shadow:
    """Before a cut: the model's parameters by name, and a copy whose every parameter holds
    its own flat positions (so the surgery's slicing can be read back as indices)."""

    def __init__(self, model: nn.Module):
        self.params = dict(model.named_parameters())
        self.positions = copy.deepcopy(model)
        with torch.no_grad():
            for _, p in self.positions.named_parameters():
                p.data = torch.arange(p.numel(), dtype=torch.float64, device=p.device).view(p.shape)


def shadow_of(model: nn.Module, optimizer: torch.optim.Optimizer) -> Shadow | None:
    """A :class:`Shadow` when the optimizer holds per-parameter state to carry over."""
    return Shadow(model) if optimizer.state else None


@torch.no_grad()
def follow(
    optimizer: torch.optim.Optimizer, model: nn.Module, shadow: Shadow, record: dict[str, Any]
) -> None:
    """Point ``optimizer`` at ``model``'s new parameters and slice their state like the cut.

    Parameters the cut left alone keep their tensors and state; a replaced one gets the old
    state at the kept positions (read from the shadow, which went through the same surgery).
    Scalar state (Adam's step count) is carried as it is.
    """
    apply_record(shadow.positions, record)
    kept = dict(shadow.positions.named_parameters())
    renamed: dict[int, nn.Parameter] = {}
    state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
    for name, new in model.named_parameters():
        old = shadow.params.get(name)
        if old is None:
            continue
        entry = optimizer.state.get(old, {})
        if new is not old:
            renamed[id(old)] = new
            index = kept[name].detach().reshape(-1).long()
            entry = {
                k: v.reshape(-1)[index].view(new.shape).clone()
                if isinstance(v, torch.Tensor) and v.shape == old.shape
                else v
                for k, v in entry.items()
            }
        if entry:
            state[new] = entry
    for group in optimizer.param_groups:
        group["params"] = [renamed.get(id(p), p) for p in group["params"]]
    optimizer.state = state


__all__ = ["ChannelRamp", "follow", "shadow_of"]
